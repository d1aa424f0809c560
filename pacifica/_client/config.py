"""Every tunable knob of the library, with its default, in one immutable object.

Pass a :class:`TransferConfig` as ``config=`` to :class:`~pacifica.uploader.Uploader`,
:class:`~pacifica.uploader.metadata.PolicyQuery` or
:class:`~pacifica.downloader.cartapi.CartAPI`; the ``timeout=`` keyword those
classes also take is a shortcut that replaces only the two timeouts.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple, Union

from .exceptions import ConfigurationError
from .rules import seconds, seconds_or_none

#: Seconds to wait for a TCP (and TLS) connection.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Seconds a socket may stay silent while a reply is awaited or read.
DEFAULT_READ_TIMEOUT = 60.0
#: Attempts after the first one for a request that is safe to repeat.
DEFAULT_RETRIES = 5
#: Backoff before retry n (n >= 2) is ``backoff_factor * 2 ** (n - 1)`` seconds.
DEFAULT_BACKOFF_FACTOR = 0.5
#: No backoff sleep is longer than this.
DEFAULT_BACKOFF_MAX = 30.0
#: A server's ``Retry-After`` is obeyed up to this many seconds.
DEFAULT_RETRY_AFTER_MAX = 60.0
#: Buffer size of the data paths: reads, sends and hashing (files are written 128 KiB per call, see fileio).
DEFAULT_CHUNK_SIZE = 1024 * 1024
#: Seconds between two status polls (ingest job, cart).
DEFAULT_POLL_INTERVAL = 1.0
#: Whether the Bundler reads small files in a second process: None decides by their number.
DEFAULT_READ_AHEAD: Optional[bool] = None

TimeoutArg = Union[None, float, int, Tuple[float, float]]


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Timeouts, retry policy, buffer sizes and the bundler's read-ahead, shared by every client object.

    ``call_deadline`` bounds a whole API call (all its retries and backoff
    sleeps included); by default it is ``connect_timeout + read_timeout``.
    Bulk transfers (the upload body, the cart download) have no overall
    deadline: there a socket that stays silent for ``read_timeout`` fails.
    ``read_ahead`` lets a Bundler read and hash small files in a second
    process (see :mod:`pacifica.uploader.bundler.readahead`): None (the
    default) when a bundle has 2,000 small files or more, True whenever it
    has some, False never.
    """

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    call_deadline: Optional[float] = None
    retries: int = DEFAULT_RETRIES
    backoff_factor: float = DEFAULT_BACKOFF_FACTOR
    backoff_max: float = DEFAULT_BACKOFF_MAX
    retry_after_max: float = DEFAULT_RETRY_AFTER_MAX
    chunk_size: int = DEFAULT_CHUNK_SIZE
    poll_interval: float = DEFAULT_POLL_INTERVAL
    read_ahead: Optional[bool] = DEFAULT_READ_AHEAD

    def __post_init__(self) -> None:
        """Validate every field, so a bad value fails here and not mid-transfer."""
        # A socket timeout or poll interval of 0 would busy-loop, infinity would hang: both refused.
        for name in ('connect_timeout', 'read_timeout', 'poll_interval'):
            object.__setattr__(self, name, seconds(getattr(self, name), name=name))
        object.__setattr__(self, 'call_deadline', seconds_or_none(
            self.call_deadline, name='call_deadline', none_means='connect_timeout + read_timeout'))
        # No backoff (0) is a choice; an endless one is not.
        for name in ('backoff_factor', 'backoff_max', 'retry_after_max'):
            object.__setattr__(self, name, seconds(getattr(self, name), name=name, zero=True))
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigurationError('retries must be an integer >= 0, not {!r}'.format(self.retries))
        if not (self.read_ahead is None or isinstance(self.read_ahead, bool)):
            raise ConfigurationError('read_ahead must be None, True or False, not {!r}'.format(self.read_ahead))
        if not isinstance(self.chunk_size, int) or self.chunk_size < 512:
            raise ConfigurationError('chunk_size must be an integer >= 512, not {!r}'.format(self.chunk_size))

    @property
    def timeout(self) -> Tuple[float, float]:
        """The ``(connect, read)`` pair handed to requests."""
        return (self.connect_timeout, self.read_timeout)

    @property
    def deadline(self) -> float:
        """Seconds one API call may take in all."""
        if self.call_deadline is not None:
            return self.call_deadline
        return self.connect_timeout + self.read_timeout

    def with_timeout(self, timeout: TimeoutArg) -> 'TransferConfig':
        """Return a copy with the timeouts from a ``timeout=`` argument.

        ``timeout`` is seconds for both, or a ``(connect, read)`` pair; None
        keeps this object's values.
        """
        if timeout is None:
            return self
        if isinstance(timeout, (tuple, list)):
            if len(timeout) != 2:
                raise ConfigurationError('timeout must be seconds or a (connect, read) pair, not {!r}'.format(timeout))
            connect, read = timeout
            names = ('timeout[0] (connect)', 'timeout[1] (read)')
        else:
            connect = read = timeout
            names = ('timeout', 'timeout')
        return dataclasses.replace(self, connect_timeout=seconds(connect, name=names[0]),
                                   read_timeout=seconds(read, name=names[1]))
