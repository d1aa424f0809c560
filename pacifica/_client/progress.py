"""The commands' progress display on stderr: a redrawn bar on terminals, plain lines in logs, or nothing."""
from __future__ import annotations

import shutil
import threading
import time
from collections import deque
from typing import Callable, Deque, List, Optional, TextIO, Tuple

from .exceptions import ConfigurationError

#: The ``--progress`` choices (``auto``: a bar on a terminal, lines otherwise).
PROGRESS_MODES = ('auto', 'bar', 'lines', 'off')
_UNITS = ('B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB')
#: What happened to the bytes of each command's transfer, for the line that ends a failed one.
_MOVED = {'upload': 'sent', 'save': 'written', 'download': 'received'}


def human_bytes(count: float) -> str:
    """``1536`` -> ``'1.5 KiB'``: sizes as people read them."""
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return '{:.0f} {}'.format(value, unit) if unit == 'B' else '{:.1f} {}'.format(value, unit)
        value /= 1024
    raise AssertionError('unreachable')  # pragma: no cover


def human_duration(seconds: float) -> str:
    """``75`` -> ``'1:15'``, ``3725`` -> ``'1:02:05'``."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return '{}:{:02d}:{:02d}'.format(hours, minutes, secs)
    return '{}:{:02d}'.format(minutes, secs)


class Progress:
    """Shows how far a transfer is, on stderr.

    ``bar`` mode redraws one line in place (for terminals), ``lines`` mode
    prints a plain line now and then (for logs and pipes), ``off`` shows
    nothing. :meth:`update` may be called from any thread, as often as the
    data moves: output is throttled here.

    Rates count only the time data moves: from the start (the display's
    creation, or a later ``update(0)`` that says the data begins to flow,
    after a cart was staged) to the last update (not the wait for the
    server's answer after the last byte). The running rate covers the last
    :attr:`RATE_WINDOW` seconds, the final one the whole transfer, by the
    same rule, so the two agree; the final line adds the time in all when the
    waits around the transfer took longer.
    """

    #: Seconds of history the rate is computed over.
    RATE_WINDOW = 5.0
    #: Least seconds between two bar redraws.
    BAR_INTERVAL = 0.1

    def __init__(self, label: str, stream: TextIO, mode: str, total: Optional[int] = None, *,
                 line_interval: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        if mode not in ('bar', 'lines', 'off'):
            raise ConfigurationError('progress mode must be bar, lines or off, not {!r}'.format(mode))
        self.label = label
        self.stream = stream
        self.mode = mode
        self.total = total
        self.done = 0
        self.line_interval = line_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        #: (time, bytes done) from the start of the transfer, trimmed to the last RATE_WINDOW seconds.
        self._samples: Deque[Tuple[float, int]] = deque([(self._started, 0)])
        self._begun = self._started
        self._last_update: Optional[float] = None
        self._last_output = float('-inf')
        self._drawn = False
        self._closed = False

    def update(self, done: int, total: Optional[int] = None) -> None:
        """Record that ``done`` bytes (of ``total``, when known) have moved."""
        with self._lock:
            if self._closed:
                return
            if total:
                self.total = total
            now = self._clock()
            if done == 0 and self.done == 0:  # the data begins to flow only now: nothing to show yet
                self._begun = now
                self._samples.clear()
                self._samples.append((now, 0))
                return
            self.done = done
            self._last_update = now
            self._samples.append((now, done))
            while len(self._samples) > 2 and now - self._samples[0][0] > self.RATE_WINDOW:
                self._samples.popleft()
            interval = self.BAR_INTERVAL if self.mode == 'bar' else self.line_interval
            if self.mode != 'off' and now - self._last_output >= interval:
                self._last_output = now
                self._emit(now)

    def close(self, completed: bool = True) -> None:
        """Finish the display: a last line with the totals, or on failure one that says so and how far it got."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.mode == 'off':
                return
            self._write_line(self._summary(self._clock()) if completed else self._failure())

    def _failure(self) -> str:
        """``'upload: failed, 120.0 KiB of 300.0 KiB sent (40%)'``: never mistaken for the end of a transfer.

        The percentage is rounded down, so a transfer short of its last byte
        never reads 100 %.
        """
        moved = _MOVED.get(self.label, 'moved')
        if not self.total:
            return '{}: failed, {} {}'.format(self.label, human_bytes(self.done), moved)
        return '{}: failed, {} of {} {} ({}%)'.format(self.label, human_bytes(self.done), human_bytes(self.total),
                                                      moved, 100 * self.done // self.total)

    def _summary(self, now: float) -> str:
        """``'download: 3.0 MiB in 0:03 (1.0 MiB/s), 0:18 in all'``: the transfer's own time and rate."""
        in_all = now - self._started
        span = (self._last_update if self._last_update is not None else now) - self._begun
        rate = self.done / span if span > 0 else 0.0
        text = '{}: {} in {} ({}/s)'.format(self.label, human_bytes(self.done), human_duration(span), human_bytes(rate))
        if in_all - span >= 1:
            text += ', {} in all'.format(human_duration(in_all))
        return text

    def rate(self) -> Optional[float]:
        """Bytes per second over the last few seconds, or None before there is any history."""
        (first_time, first_done), (last_time, last_done) = self._samples[0], self._samples[-1]
        span = last_time - first_time
        if span <= 0:
            return None
        return (last_done - first_done) / span

    def status_text(self) -> str:
        """``'45% 12.3 MiB of 27.0 MiB, 5.1 MiB/s, ETA 0:03'`` (parts left out when unknown)."""
        rate = self.rate()
        parts: List[str] = []
        if self.total:
            parts.append('{:.0f}% {} of {}'.format(100.0 * self.done / self.total, human_bytes(self.done),
                                                   human_bytes(self.total)))
        else:
            parts.append(human_bytes(self.done))
        if rate is not None:
            parts.append('{}/s'.format(human_bytes(rate)))
            if self.total and rate > 0:
                parts.append('ETA {}'.format(human_duration(max(self.total - self.done, 0) / rate)))
        return ', '.join(parts)

    def _emit(self, now: float) -> None:
        if self.mode == 'lines':
            self._write_line('{}: {}'.format(self.label, self.status_text()))
            return
        width = shutil.get_terminal_size((80, 24)).columns
        text = '{}: {}'.format(self.label, self.status_text())
        bar_width = min(30, width - len(text) - 4)
        if self.total and bar_width >= 10:
            filled = int(bar_width * min(self.done / self.total, 1.0))
            text = '{} [{}{}]'.format(text, '#' * filled, '.' * (bar_width - filled))
        self.stream.write('\r' + text[:width - 1].ljust(width - 1))
        self.stream.flush()
        self._drawn = True

    def _write_line(self, text: str) -> None:
        if self._drawn:
            self.stream.write('\r')
            text = text.ljust(shutil.get_terminal_size((80, 24)).columns - 1)
            self._drawn = False
        self.stream.write(text + '\n')
        self.stream.flush()
