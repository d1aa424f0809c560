"""Deadlines: a watchdog thread that shuts the socket of a call that overran its time.

Socket timeouts alone cannot stop a server that trickles one byte a second.
Every API call therefore runs inside :func:`deadline`: a watchdog thread
shuts down the call's socket when the deadline passes, which wakes any
blocked ``recv``/``send``. Bulk transfers (the upload body, the cart stream)
have that deadline only until their request goes out; then they run without
an overall deadline but fail when the socket stays silent for the read
timeout. The urllib3 connection subclasses below tell the watchdog which
socket a call uses; :class:`WatchedAdapter` mounts them in a session.
"""
from __future__ import annotations

import heapq
import itertools
import math
import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Tuple

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class DeadlineExpired(Exception):
    """Raised inside urllib3 when a call's deadline passed; the transport turns it into RequestTimeout.

    It deliberately derives from none of the exceptions urllib3 catches, so it
    ends the retry loop at once.
    """


class CallState:
    """What the watchdog, the retries and the error messages know about one API call in flight."""

    __slots__ = ('deadline', 'reply_limit', 'connect_only', 'expired', 'connection', 'sock', 'lock',
                 'what', 'started', 'attempts', 'last_failure')

    def __init__(self, deadline: float, reply_limit: Optional[float] = None, connect_only: bool = False,
                 what: str = '') -> None:
        self.deadline = deadline
        #: Seconds the reply may take once the request is sent (bulk calls: armed at getresponse).
        self.reply_limit = reply_limit
        #: The deadline bounds only the time until a connection carries the request (bulk calls).
        self.connect_only = connect_only
        self.expired = False
        self.connection: Optional[HTTPConnection] = None
        #: The socket itself: http.client detaches it from the connection when
        #: the reply says ``Connection: close``, yet the body is still read from it.
        self.sock: Optional[socket.socket] = None
        self.lock = threading.Lock()
        #: ``METHOD url`` (without credentials), for log lines and messages.
        self.what = what
        self.started = time.monotonic()
        #: Attempts that failed so far, and the last failure (an exception, or the reply of a retried status).
        self.attempts = 0
        self.last_failure: Any = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def failed(self, failure: Any) -> None:
        """Count one failed attempt of this call."""
        self.attempts += 1
        self.last_failure = failure

    def tally(self) -> str:
        """``'3 attempts in 1.0 s'``: what the call tried, for its error message."""
        tries = max(self.attempts, 1)
        return '{} attempt{} in {:.1f} s'.format(tries, '' if tries == 1 else 's', time.monotonic() - self.started)

    def carrying(self, sock: Any) -> None:
        """The request is about to go out on ``sock``: a bulk call's connect deadline ends here."""
        with self.lock:
            if sock is not None:
                self.sock = sock
            if self.connect_only:
                self.connect_only = False
                self.deadline = math.inf

    def expire(self) -> None:
        """Mark the call late and break its connection, waking any blocked recv/send."""
        with self.lock:
            self.expired = True
            sock = self.sock or getattr(self.connection, 'sock', None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Watchdog:
    """One daemon thread expiring the calls whose deadline passed."""

    def __init__(self) -> None:
        self._heap: List[Tuple[float, int, CallState]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._pid = 0

    def watch(self, state: CallState) -> None:
        with self._cond:
            if self._thread is None or self._pid != os.getpid():  # new process after fork
                self._heap = []
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name='pacifica-http-watchdog', daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (state.deadline, next(self._counter), state))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, state = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            if state.remaining() > 0:  # the deadline moved (a bulk call connected): a later entry, if any
                continue
            if state.connection is not None or not state.expired:
                state.expire()


_WATCHDOG = _Watchdog()
_CURRENT = threading.local()


def current_call() -> Optional[CallState]:
    return getattr(_CURRENT, 'call', None)


@contextmanager
def deadline(seconds: Optional[float], reply_seconds: Optional[float] = None, connect_seconds: Optional[float] = None,
             what: str = '') -> Iterator[CallState]:
    """Run the body of the ``with`` as one call that must end within ``seconds``.

    ``reply_seconds`` instead bounds only the wait for the reply, from the
    moment the request is sent: an upload body may take hours, its answer not.
    ``connect_seconds`` bounds the time until a connection carries the request
    (with its retries), for calls that have no overall deadline.
    """
    if seconds is not None:
        state = CallState(time.monotonic() + seconds, reply_seconds, what=what)
    elif connect_seconds is not None:
        state = CallState(time.monotonic() + connect_seconds, reply_seconds, connect_only=True, what=what)
    else:
        state = CallState(math.inf, reply_seconds, what=what)
    previous = current_call()
    _CURRENT.call = state
    if state.deadline != math.inf:
        _WATCHDOG.watch(state)
    try:
        yield state
    finally:
        _CURRENT.call = previous
        with state.lock:
            state.connection = None
            state.sock = None
        state.expired = True  # retire it: the watchdog drops it when due


class _WatchedHTTPConnection(HTTPConnection):
    """Registers each request's connection with the call in flight."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        state = current_call()
        if state is not None:
            with state.lock:
                if state.expired or state.remaining() <= 0:
                    raise DeadlineExpired()
                state.connection = self
            if self.sock is not None:  # a kept-alive connection: nothing left to connect
                state.carrying(None)
        return super().request(*args, **kwargs)

    def connect(self) -> None:
        super().connect()
        state = current_call()
        if state is not None:
            state.carrying(self.sock)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        state = current_call()
        if state is not None and state.reply_limit is not None:
            with state.lock:
                state.deadline = min(state.deadline, time.monotonic() + state.reply_limit)
                state.reply_limit = None  # armed once: retries count against the same reply deadline
            _WATCHDOG.watch(state)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """HTTPS, with the watched ``request`` of :class:`_WatchedHTTPConnection`."""


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


WATCHED_POOLS = {'http': _WatchedHTTPConnectionPool, 'https': _WatchedHTTPSConnectionPool}


class WatchedAdapter(HTTPAdapter):
    """HTTPAdapter whose connections report to the deadline watchdog."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager


