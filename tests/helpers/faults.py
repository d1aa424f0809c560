"""A fault-injecting HTTP proxy on loopback, scripted per test.

The proxy sits between a client object and a real loopback server (the
suite's :class:`~tests.helpers.server.LoopbackServer`, the cart stand-in, the
soak stand-ins) and misbehaves on demand::

    proxy = FaultProxy(upstream_url)
    proxy.inject('/get_state', Fault.http_status(503, retry_after=0), times=2)
    proxy.inject('/upload', Fault.reset_response(), method='POST')
    ... client talks to proxy.url ...
    assert proxy.forwarded('POST', '/upload') == 1   # exactly one job reached ingest

Everything is a real socket on 127.0.0.1. Each scripted fault hits the next
``times`` requests to that path, then requests pass through untouched.
``received`` counts what reached the proxy, ``forwarded`` what reached the
upstream server.

Connection refused cannot be scripted per path (a refused connection never
reaches anybody): :meth:`FaultProxy.refuse_for` closes the listening socket
for a while and reopens it on the same port; :func:`closed_port` gives a port
nobody listens on.

Every loop is bounded: sockets carry timeouts, trickles have a finite number
of steps, and the proxy shuts itself down after ``lifetime`` seconds even if a
test forgets to close it.
"""
from __future__ import annotations

import collections
import dataclasses
import random
import socket
import struct
import threading
import time
from typing import Callable, Deque, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

#: Seconds any proxy socket operation may block; keeps every thread finite.
IO_TIMEOUT = 15.0
#: Longest a proxy lives unless closed earlier.
DEFAULT_LIFETIME = 300.0
#: Header lines longer or more numerous than this mean the peer is broken.
MAX_HEAD_BYTES = 64 * 1024

#: Fault kinds.
RESET_REQUEST = 'reset-request'
RESET_RESPONSE = 'reset-response'
STATUS = 'status'
SLOW_HEADERS = 'slow-headers'
TRICKLE_BODY = 'trickle-body'
TRUNCATE_BODY = 'truncate-body'
INVALID_JSON = 'invalid-json'
STALL_REQUEST = 'stall-request'
KINDS = (RESET_REQUEST, RESET_RESPONSE, STATUS, SLOW_HEADERS, TRICKLE_BODY, TRUNCATE_BODY, INVALID_JSON,
         STALL_REQUEST)


@dataclasses.dataclass(frozen=True)
class Fault:
    """One way to misbehave. Build them with the class methods."""

    kind: str
    #: Send the request to the upstream server before misbehaving (so it *did* happen there).
    forward: bool = True
    status: int = 0
    retry_after: Optional[str] = None
    #: Seconds before the first byte of the reply (slow headers).
    delay: float = 0.0
    #: Seconds between two bytes (slow headers, trickling body).
    interval: float = 0.0
    #: Where a reset hits a reply: 'head' (half of the status line and headers) or 'body'.
    phase: str = 'body'
    body: bytes = b''

    def __str__(self) -> str:
        extra = ''
        if self.kind == STATUS:
            extra = ' {}{}'.format(self.status, '' if self.retry_after is None else ' Retry-After: ' + self.retry_after)
        elif self.kind == RESET_RESPONSE:
            extra = ' in ' + self.phase
        return '{}{}{}'.format(self.kind, extra, '' if self.forward else ' (not forwarded)')

    @classmethod
    def reset_request(cls) -> 'Fault':
        """Read the head and part of the body, then reset: the server never sees the request."""
        return cls(RESET_REQUEST, forward=False)

    @classmethod
    def stall_request(cls, seconds: float = 30.0) -> 'Fault':
        """Read the head, then stop reading the body for ``seconds`` (a hung server), then reset."""
        return cls(STALL_REQUEST, forward=False, delay=seconds)

    @classmethod
    def reset_response(cls, phase: str = 'body') -> 'Fault':
        """The server handles the request; the reply is cut by a reset in its head or body."""
        if phase not in ('head', 'body'):
            raise ValueError(phase)
        return cls(RESET_RESPONSE, phase=phase)

    @classmethod
    def http_status(cls, status: int, retry_after: Optional[object] = None, forward: bool = False,
                    body: bytes = b'') -> 'Fault':
        """Answer ``status`` (502/503/504/429...), by default without asking the server."""
        return cls(STATUS, forward=forward, status=status,
                   retry_after=None if retry_after is None else str(retry_after),
                   body=body or 'injected {}'.format(status).encode())

    @classmethod
    def slow_headers(cls, delay: float = 0.0, interval: float = 0.0) -> 'Fault':
        """Wait ``delay`` seconds, then send the reply head one byte every ``interval`` seconds."""
        return cls(SLOW_HEADERS, delay=delay, interval=interval)

    @classmethod
    def trickle_body(cls, interval: float) -> 'Fault':
        """Send the head at once, then the body one byte every ``interval`` seconds."""
        return cls(TRICKLE_BODY, interval=interval)

    @classmethod
    def truncate_body(cls) -> 'Fault':
        """Send the head and half of the body, then close the connection cleanly (FIN)."""
        return cls(TRUNCATE_BODY)

    @classmethod
    def invalid_json(cls, forward: bool = False, body: bytes = b'<html>upstream hiccup</html>') -> 'Fault':
        """Answer 200 with a body that is not JSON."""
        return cls(INVALID_JSON, forward=forward, body=body)


def closed_port() -> int:
    """Return a loopback port on which nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _matches(pattern: str, path: str) -> bool:
    return pattern == path or (pattern.endswith('*') and path.startswith(pattern[:-1]))


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    except OSError:
        pass
    sock.close()


class _Head:
    """A parsed request or reply head: the first line and the header list."""

    def __init__(self, first: bytes, headers: List[Tuple[bytes, bytes]]) -> None:
        self.first = first
        self.headers = headers

    def get(self, name: bytes) -> Optional[bytes]:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def with_header(self, name: bytes, value: bytes) -> '_Head':
        kept = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        return _Head(self.first, kept + [(name, value)])

    def encode(self) -> bytes:
        lines = [self.first] + [k + b': ' + v for k, v in self.headers]
        return b'\r\n'.join(lines) + b'\r\n\r\n'


def _read_head(rfile) -> Optional[_Head]:
    """Read one head from a binary file; None at a clean end of stream."""
    first = rfile.readline(MAX_HEAD_BYTES)
    while first in (b'\r\n', b'\n'):  # tolerate stray blank lines between requests
        first = rfile.readline(MAX_HEAD_BYTES)
    if not first:
        return None
    headers = []
    total = len(first)
    while True:
        line = rfile.readline(MAX_HEAD_BYTES)
        total += len(line)
        if not line or total > MAX_HEAD_BYTES:
            raise ConnectionError('head ended early or is too long')
        if line in (b'\r\n', b'\n'):
            break
        key, _, value = line.rstrip(b'\r\n').partition(b':')
        headers.append((key.strip(), value.strip()))
    return _Head(first.rstrip(b'\r\n'), headers)


def _exactly(rfile, count: int, what: str) -> 'collections.abc.Iterator[bytes]':
    """Yield exactly ``count`` bytes of ``rfile`` in pieces; ConnectionError if it ends first."""
    while count:
        data = rfile.read(min(count, 65536))
        if not data:
            raise ConnectionError('{} ended early'.format(what))
        count -= len(data)
        yield data


def _body_chunks(rfile, head: _Head, until_eof: bool) -> 'collections.abc.Iterator[bytes]':
    """Yield the raw bytes of a message body as framed by ``head`` (chunk framing kept)."""
    if b'chunked' in (head.get(b'Transfer-Encoding') or b'').lower():
        while True:
            size_line = rfile.readline(1024)
            if not size_line:
                raise ConnectionError('chunked body ended early')
            yield size_line
            size = int(size_line.split(b';')[0].strip() or b'0', 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = rfile.readline(MAX_HEAD_BYTES)
                    if not line:
                        raise ConnectionError('chunked body ended early')
                    yield line
                    if line in (b'\r\n', b'\n'):
                        return
            yield from _exactly(rfile, size + 2, 'chunked body')
        return
    length = head.get(b'Content-Length')
    if length is not None:
        yield from _exactly(rfile, int(length), 'body')
        return
    if until_eof:
        while True:
            data = rfile.read1(65536) if hasattr(rfile, 'read1') else rfile.read(65536)
            if not data:
                return
            yield data


@dataclasses.dataclass
class Event:
    """What happened to one request that reached the proxy."""

    method: str
    path: str
    fault: Optional[Fault]
    forwarded: bool = False


class FaultProxy:
    """Threaded HTTP proxy on 127.0.0.1 in front of ``upstream`` (an ``http://host:port`` URL)."""

    def __init__(self, upstream: str, lifetime: float = DEFAULT_LIFETIME) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or '127.0.0.1', parts.port or 80)
        self.events: List[Event] = []
        #: Called for requests without a scripted fault; returns a Fault or None (soak's random faults).
        self.chooser: Optional[Callable[[str, str], Optional[Fault]]] = None
        self._script: Dict[str, Deque[Tuple[Optional[str], Fault]]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._reopen_at = 0.0
        self._refusal: Optional[Tuple[float, threading.Event]] = None
        self._port = 0
        self._open_listener()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._accept_loop, name='fault-proxy', daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- scripting
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:{}'.format(self._port)

    def inject(self, path: str, fault: Fault, times: int = 1, method: Optional[str] = None) -> None:
        """The next ``times`` requests to ``path`` (and ``method``, if given) get ``fault``.

        A ``path`` ending in ``*`` matches every path it starts (carts have random names).
        """
        with self._lock:
            for _ in range(times):
                self._script[path].append((method.upper() if method else None, fault))

    def pending(self) -> int:
        """Scripted faults not yet used."""
        with self._lock:
            return sum(len(queue) for queue in self._script.values())

    def refuse_for(self, seconds: float) -> None:
        """Refuse every connection for ``seconds`` (the listening socket is closed, then reopened).

        Returns once the socket is closed; the accept thread closes it, since
        closing a socket another thread waits on leaves it listening a while.
        """
        closed = threading.Event()
        with self._lock:
            self._refusal = (seconds, closed)
        closed.wait(5)

    def received(self, method: str, path: str) -> int:
        """How many ``method path`` requests reached the proxy (``path`` may end in ``*``)."""
        with self._lock:
            return sum(1 for e in self.events if e.method == method and _matches(path, e.path))

    def forwarded(self, method: str, path: str) -> int:
        """How many ``method path`` requests the proxy passed to the upstream server."""
        with self._lock:
            return sum(1 for e in self.events if e.method == method and _matches(path, e.path) and e.forwarded)

    def faults_used(self) -> Dict[str, int]:
        """Count of faults actually applied, by kind."""
        counts: Dict[str, int] = collections.Counter()
        with self._lock:
            for event in self.events:
                if event.fault is not None:
                    counts[event.fault.kind] += 1
        return dict(counts)

    def reset(self) -> None:
        """Forget the script, the chooser and the counts (a proxy shared by several tests)."""
        with self._lock:
            self._script.clear()
            self.events.clear()
            self.chooser = None

    def close(self) -> None:
        """Stop accepting (the accept thread closes the socket) and wake any trickle."""
        self._closed.set()
        self._thread.join(timeout=2)

    def __enter__(self) -> 'FaultProxy':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals
    def _open_listener(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(('127.0.0.1', self._port))
        sock.listen(64)
        sock.settimeout(0.05)
        self._port = sock.getsockname()[1]
        self._listener = sock

    def _accept_loop(self) -> None:
        while not self._closed.is_set() and time.monotonic() < self._deadline:
            with self._lock:
                refusal, self._refusal = self._refusal, None
                if refusal is not None and self._listener is not None:
                    self._drain_backlog(self._listener)
                    self._listener.close()
                    self._listener = None
                    self._reopen_at = time.monotonic() + refusal[0]
                    refusal[1].set()
                listener = self._listener
                if listener is None and time.monotonic() >= self._reopen_at:
                    self._open_listener()
                    listener = self._listener
            if listener is None:
                time.sleep(0.01)
                continue
            try:
                conn, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            self._start(conn)
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None

    def _drain_backlog(self, listener: socket.socket) -> None:
        """Serve the connections already queued, so closing the listener does not reset them."""
        listener.setblocking(False)
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setblocking(True)
            self._start(conn)

    def _start(self, conn: socket.socket) -> None:
        conn.settimeout(IO_TIMEOUT)
        threading.Thread(target=self._serve, args=(conn,), name='fault-proxy-conn', daemon=True).start()

    def _take(self, method: str, path: str) -> Optional[Fault]:
        with self._lock:
            for pattern, queue in self._script.items():
                if not _matches(pattern, path):
                    continue
                for index, (want, fault) in enumerate(queue):
                    if want is None or want == method:
                        del queue[index]
                        return fault
        chooser = self.chooser
        return chooser(method, path) if chooser is not None else None

    def _serve(self, conn: socket.socket) -> None:
        rfile = conn.makefile('rb')
        try:
            head = _read_head(rfile)
            if head is None:
                return
            method, target = head.first.split(b' ')[:2]
            event = Event(method.decode('latin-1'), urlsplit(target.decode('latin-1')).path, None)
            event.fault = self._take(event.method, event.path)
            with self._lock:
                self.events.append(event)
            self._handle(conn, rfile, head, event)
        except (OSError, ValueError):
            pass  # the client went away or spoke nonsense: nothing more to do on this connection
        finally:
            try:
                rfile.close()
                conn.close()
            except OSError:
                pass

    def _handle(self, conn: socket.socket, rfile, head: _Head, event: Event) -> None:
        fault = event.fault
        if fault is not None and fault.kind == STALL_REQUEST:
            try:
                self._pause(fault.delay)
            finally:
                _reset(conn)
            return
        if fault is not None and fault.kind == RESET_REQUEST:
            for _ in _body_chunks(rfile, head, until_eof=False):
                break  # take a first piece of the body, if any, so the reset hits mid-request
            _reset(conn)
            return
        if fault is not None and not fault.forward:
            for _ in _body_chunks(rfile, head, until_eof=False):
                pass
            conn.sendall(self._local_reply(fault))
            return
        upstream = socket.create_connection(self.upstream, timeout=IO_TIMEOUT)
        try:
            upstream.sendall(head.with_header(b'Connection', b'close').encode())
            for piece in _body_chunks(rfile, head, until_eof=False):
                upstream.sendall(piece)
            event.forwarded = True
            urfile = upstream.makefile('rb')
            reply = _read_head(urfile)
            if reply is None:
                raise ConnectionError('upstream closed without a reply')
            reply_head = reply.with_header(b'Connection', b'close')
            no_body = event.method == 'HEAD' or reply.first.split(b' ')[1:2] in ([b'204'], [b'304'])
            body_iter = iter(()) if no_body else _body_chunks(urfile, reply, until_eof=True)
            if fault is None:
                conn.sendall(reply_head.encode())
                for piece in body_iter:
                    conn.sendall(piece)
                return
            body = b''.join(body_iter)
            self._misbehave(conn, fault, reply_head, body)
        finally:
            upstream.close()

    @staticmethod
    def _local_reply(fault: Fault) -> bytes:
        if fault.kind == STATUS:
            reason = {429: 'Too Many Requests', 502: 'Bad Gateway', 503: 'Service Unavailable',
                      504: 'Gateway Timeout'}.get(fault.status, 'Injected')
            head = _Head('HTTP/1.1 {} {}'.format(fault.status, reason).encode(),
                         [(b'Content-Type', b'text/plain'), (b'Content-Length', str(len(fault.body)).encode()),
                          (b'Connection', b'close')])
            if fault.retry_after is not None:
                head = head.with_header(b'Retry-After', fault.retry_after.encode())
            return head.encode() + fault.body
        if fault.kind == INVALID_JSON:
            head = _Head(b'HTTP/1.1 200 OK', [(b'Content-Type', b'application/json'),
                                              (b'Content-Length', str(len(fault.body)).encode()),
                                              (b'Connection', b'close')])
            return head.encode() + fault.body
        raise ValueError('fault {} needs the upstream reply'.format(fault))

    def _misbehave(self, conn: socket.socket, fault: Fault, head: _Head, body: bytes) -> None:
        raw_head = head.encode()
        if fault.kind in (STATUS, INVALID_JSON):
            conn.sendall(self._local_reply(fault))
        elif fault.kind == RESET_RESPONSE:
            conn.sendall(raw_head[:len(raw_head) // 2] if fault.phase == 'head' else raw_head + body[:len(body) // 2])
            time.sleep(0.05)  # let the bytes leave before the reset overtakes them
            _reset(conn)
        elif fault.kind == TRUNCATE_BODY:
            conn.sendall(raw_head + body[:len(body) // 2])
            conn.shutdown(socket.SHUT_WR)
        elif fault.kind == SLOW_HEADERS:
            self._pause(fault.delay)
            for index in range(len(raw_head)):
                conn.sendall(raw_head[index:index + 1])
                self._pause(fault.interval)
            conn.sendall(body)
        elif fault.kind == TRICKLE_BODY:
            conn.sendall(raw_head)
            for index in range(len(body)):
                conn.sendall(body[index:index + 1])
                self._pause(fault.interval)
        else:
            raise ValueError('unknown fault {}'.format(fault))

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake up when the proxy closes."""
        if seconds > 0 and self._closed.wait(seconds):
            raise ConnectionError('proxy closed')


def random_chooser(rate: float, faults: List[Fault], seed: int = 0,
                   paths: Optional[List[str]] = None) -> Callable[[str, str], Optional[Fault]]:
    """Return a chooser that gives a random fault from ``faults`` to a ``rate`` share of requests."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def choose(method: str, path: str) -> Optional[Fault]:
        if paths is not None and not any(path.startswith(p) for p in paths):
            return None
        with lock:
            if rng.random() >= rate:
                return None
            return rng.choice(faults)
    return choose
