"""A real HTTP/1.1 server on loopback whose routes the tests program.

Unit tests talk to it through real sockets instead of mocking requests::

    server.route('GET', '/get_state', lambda req: {'state': 'OK'})
    server.route('POST', '/upload', handler, read_body=False)  # handler reads req.rfile

A handler gets a :class:`Request` and returns one of:

- a ``dict``/``list`` (sent as JSON with status 200),
- ``bytes``/``str`` (status 200),
- a :class:`Reply` (status, headers, body; ``body`` may be an iterator of bytes,
  sent chunked when ``length`` is None and ``chunked`` is true),
- ``RAW``-mode: a callable taking ``(handler)`` that writes to ``handler.wfile``
  itself (for truncated, reset or trickled replies).

Every request is recorded in ``server.requests``.
"""
from __future__ import annotations

import dataclasses
import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    body: bytes
    rfile: Any = None
    content_length: Optional[int] = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: Union[bytes, str, Iterable[bytes], None] = b''
    headers: Dict[str, str] = dataclasses.field(default_factory=dict)
    #: Send iterable bodies with Transfer-Encoding: chunked (else close-delimited).
    chunked: bool = True

    @classmethod
    def json(cls, doc: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> 'Reply':
        merged = {'Content-Type': 'application/json'}
        merged.update(headers or {})
        return cls(status, json.dumps(doc).encode(), merged)


class Raw:
    """Wrap a callable that writes the whole reply itself: ``Raw(lambda h: ...)``."""

    def __init__(self, write: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.write = write


Handler = Callable[[Request], Any]


def reset_connection(handler: BaseHTTPRequestHandler) -> None:
    """Close the handler's socket with RST instead of FIN."""
    sock = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    handler.close_connection = True
    sock.close()


class LoopbackServer:
    """Threaded HTTP server on 127.0.0.1 with an ephemeral port."""

    def __init__(self) -> None:
        self.routes: Dict[Tuple[str, str], Tuple[Handler, bool]] = {}
        self.requests: List[Request] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _dispatch(self) -> None:
                parts = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
                found = server.routes.get((self.command, parts.path)) or server.routes.get((self.command, '*'))
                length_text = self.headers.get('Content-Length')
                length = int(length_text) if length_text is not None else None
                read_body = found[1] if found else True
                body = b''
                if read_body:
                    body = self._read_body(length)
                request = Request(self.command, parts.path, query, dict(self.headers.items()), body,
                                  self.rfile, length)
                with server._lock:
                    server.requests.append(request)
                if found is None:
                    self._send(Reply(404, b'no route'))
                    return
                try:
                    result = found[0](request)
                except Exception as err:  # noqa: BLE001 - report handler bugs as 500
                    result = Reply(500, 'handler error: {!r}'.format(err))
                if isinstance(result, Raw):
                    self.close_connection = True
                    try:
                        result.write(self)
                    except OSError:
                        pass
                    return
                self._send(result)

            def _read_body(self, length: Optional[int]) -> bytes:
                if length is not None:
                    return self.rfile.read(length)
                if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b';')[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b''.join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return b''

            def _send(self, result: Any) -> None:
                if not isinstance(result, Reply):
                    if isinstance(result, (dict, list)):
                        result = Reply.json(result)
                    else:
                        result = Reply(200, result if result is not None else b'')
                body = result.body
                if isinstance(body, str):
                    body = body.encode()
                self.send_response(result.status)
                for key, value in result.headers.items():
                    self.send_header(key, value)
                if body is None or isinstance(body, (bytes, bytearray)):
                    payload = bytes(body or b'')
                    if 'Content-Length' not in result.headers:
                        self.send_header('Content-Length', str(len(payload)))
                    self.end_headers()
                    if self.command != 'HEAD':
                        self.wfile.write(payload)
                    return
                if result.chunked:
                    self.send_header('Transfer-Encoding', 'chunked')
                    self.end_headers()
                    for piece in body:
                        if piece:
                            self.wfile.write(b'%x\r\n%s\r\n' % (len(piece), piece))
                    self.wfile.write(b'0\r\n\r\n')
                else:
                    self.send_header('Connection', 'close')
                    self.end_headers()
                    self.close_connection = True
                    for piece in body:
                        self.wfile.write(piece)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _dispatch

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:{}'.format(self.port)

    def route(self, method: str, path: str, handler: Union[Handler, Any], read_body: bool = True) -> None:
        """Serve ``method path`` with ``handler`` (a callable, or a fixed reply)."""
        if not callable(handler) or isinstance(handler, (Reply, Raw)):
            fixed = handler
            handler = lambda _request: fixed  # noqa: E731
        self.routes[(method.upper(), path)] = (handler, read_body)

    def count(self, method: str, path: str) -> int:
        return sum(1 for req in self.requests if req.method == method and req.path == path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
