"""The progress callback: a background thread, fractions in 0..1, 1.0 last, never delaying stream()."""
from __future__ import annotations

import io
import logging
import threading
import time

import pytest

from pacifica._client.exceptions import ConfigurationError, FileChangedError
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.bundler.bundler import MIN_REPORT_INTERVAL

from tests.helpers.bundles import MTIME, bundle_bytes


class SlowSource:
    """Hands out ``step`` bytes per read after a short pause, so a bundle takes a while."""

    def __init__(self, size: int, step: int = 1000, pause: float = 0.01) -> None:
        self._left, self._step, self._pause = size, step, pause

    def read(self, size: int = -1) -> bytes:
        time.sleep(self._pause)
        count = min(self._left, self._step if size < 0 else min(size, self._step))
        self._left -= count
        return b's' * count


def test_callback_reports_fractions_from_another_thread_and_ends_with_one(md):
    seen = []
    threads = set()

    def callback(fraction):
        seen.append(fraction)
        threads.add(threading.get_ident())

    bundler = Bundler(md, [{'name': 'data/slow', 'size': 30000, 'mtime': MTIME, 'fileobj': SlowSource(30000)}])
    bundler.stream(io.BytesIO(), callback=callback, sleeptime=0.02)
    assert seen[-1] == 1.0 and seen.count(1.0) == 1, "1.0 only once the bundle is complete"
    assert len(seen) >= 3, 'intermediate reports while the data flows'
    assert all(isinstance(value, float) and 0.0 <= value <= 1.0 for value in seen)
    assert seen == sorted(seen)
    assert any(0.0 < value < 1.0 for value in seen)
    assert threading.get_ident() not in threads


def test_stream_returns_at_once_with_a_long_sleeptime(md):
    """The notify thread waits on an Event: stream() does not sit out the 60 s."""
    seen = []
    bundler = Bundler(md, [{'name': 'data/a', 'size': 3, 'mtime': MTIME, 'fileobj': io.BytesIO(b'abc')}])
    started = time.monotonic()
    bundler.stream(io.BytesIO(), callback=seen.append, sleeptime=60)
    assert time.monotonic() - started < 5
    assert seen == [1.0], 'the last (here only) report is 1.0, made before stream() returns'


def test_empty_files_report_one_at_the_end(md):
    seen = []
    Bundler(md, [{'name': 'data/e', 'size': 0, 'mtime': MTIME, 'fileobj': io.BytesIO()}]).stream(
        io.BytesIO(), callback=seen.append, sleeptime=60)
    assert seen == [1.0]


def test_a_failed_stream_never_reports_one(md):
    seen = []
    bundler = Bundler(md, [{'name': 'data/short', 'size': 10, 'mtime': MTIME, 'fileobj': io.BytesIO(b'abc')}])
    with pytest.raises(FileChangedError):
        bundler.stream(io.BytesIO(), callback=seen.append, sleeptime=60)
    assert 1.0 not in seen


def test_a_failing_callback_does_not_break_the_bundle(md, caplog):
    def callback(fraction):
        raise RuntimeError('display gone')

    bundler = Bundler(md, [{'name': 'data/a', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'a')}])
    with caplog.at_level(logging.ERROR):
        data = bundle_bytes(bundler, callback=callback, sleeptime=60)
    assert data and 'progress callback failed' in caplog.text


def test_non_callable_callback_is_ignored(md):
    bundler = Bundler(md, [{'name': 'data/a', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'a')}])
    assert bundle_bytes(bundler, callback='not callable', sleeptime=0)


@pytest.mark.parametrize('sleeptime', [-1, 'soon', None, float('nan'), float('-inf')])
def test_a_useless_sleeptime_is_refused(md, sleeptime):
    bundler = Bundler(md, [{'name': 'data/a', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'a')}])
    with pytest.raises(ConfigurationError, match='sleeptime must be a number of seconds >= 0'):
        bundler.stream(io.BytesIO(), callback=lambda fraction: None, sleeptime=sleeptime)


class ReportGate:
    """A source that holds back its last bytes until the progress callback has reported ``reports`` times."""

    def __init__(self, data: bytes, reports: int) -> None:
        self.seen: list = []
        self._data, self._wanted, self._enough = io.BytesIO(data), reports, threading.Event()

    def callback(self, fraction: float) -> None:
        self.seen.append(fraction)
        if len(self.seen) >= self._wanted:
            self._enough.set()

    def read(self, size: int = -1) -> bytes:
        if self._data.tell() == len(self._data.getbuffer()) - 1:
            assert self._enough.wait(30), 'no progress report came'
        return self._data.read(min(size, 1) if size >= 0 else 1)


@pytest.mark.parametrize('sleeptime', [0, 0.0, 1e-9])
def test_sleeptime_zero_reports_as_often_as_useful_without_spinning(md, sleeptime):
    """pacifica-uploader 0.3.1's own test calls stream(fd, callback=cb, sleeptime=0)."""
    gate = ReportGate(b'0123456789', reports=3)
    bundler = Bundler(md, [{'name': 'data/a', 'size': 10, 'mtime': MTIME, 'fileobj': gate}])
    started = time.monotonic()
    bundler.stream(io.BytesIO(), callback=gate.callback, sleeptime=sleeptime)
    elapsed = time.monotonic() - started
    assert gate.seen[-1] == 1.0 and len(gate.seen) >= 4
    assert all(0.0 <= value < 1.0 for value in gate.seen[:-1]), 'reports while the last byte is held back'
    # A spinning thread would report thousands of times; a floor of MIN_REPORT_INTERVAL at most this many.
    assert len(gate.seen) <= elapsed / MIN_REPORT_INTERVAL + 2


def test_infinite_sleeptime_reports_only_the_end(md):
    seen = []
    bundler = Bundler(md, [{'name': 'data/slow', 'size': 3000, 'mtime': MTIME, 'fileobj': SlowSource(3000)}])
    bundler.stream(io.BytesIO(), callback=seen.append, sleeptime=float('inf'))
    assert seen == [1.0]


def test_upstream_text_files_with_sleeptime_zero(md, tmp_path):
    """What 0.3.1's test_bundler_basic_with_cb does: text-mode files, sleeptime=0, into a temporary file."""
    entries = []
    for number in range(3):
        path = tmp_path / '{}.txt'.format(number)
        path.write_bytes('{}: line of text\n'.format(number).encode('utf-8') * (number + 1))
        entries.append({'fileobj': open(path, 'r'), 'name': 'data/data_{0}/{0}.txt'.format(number),
                        'size': path.stat().st_size, 'mtime': path.stat().st_mtime})
    seen = []
    try:
        with open(tmp_path / 'bundle.tar', 'wb') as bundle:
            Bundler(md, entries).stream(bundle, callback=seen.append, sleeptime=0)
    finally:
        for entry in entries:
            entry['fileobj'].close()
    assert seen and seen[-1] == 1.0


def test_setup_notify_thread_helper(md):
    seen = []
    bundler = Bundler(md, [{'name': 'data/a', 'size': 4, 'mtime': MTIME, 'fileobj': io.BytesIO(b'abcd')}])
    bundler._save_total_size()
    bundler._done_size = 2
    thread = bundler._setup_notify_thread(seen.append, sleeptime=0.01)
    assert thread.daemon and thread.is_alive()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen[0] == 0.5
    bundler._notify_stop.set()
    thread.join(5)
    assert not thread.is_alive() and 1.0 not in seen
