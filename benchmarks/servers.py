"""Loopback stand-ins for the ingest and cart services, run in their own process.

The benchmark must measure the client libraries, not a server, so both
stand-ins do the least work the protocol allows:

- ingest: ``POST /upload`` reads the body as fast as the socket delivers it
  (Content-Length, chunked, or until the client half-closes) and throws it
  away, keeping only the byte count and the last 1 KiB so the caller can
  check that a whole tar arrived; ``GET /get_state?job_id=N`` answers a
  finished job plus those two facts.
- cart: ``/<set>/<cart id>`` behaves like cartd for a cart that is already
  staged: POST answers 201, HEAD answers 204 ``ready``, GET streams the
  pre-built tar of that data set with chunked encoding (no Content-Length,
  as cartd does) straight from the page cache with ``os.sendfile``.

Started by ``run.py``; prints one JSON line with its port, then serves until
stdin closes.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

READ_SIZE = 1 << 20
SEND_CHUNK = 4 << 20
TAIL_SIZE = 1024


class _JobBook:
    """What each upload delivered, keyed by job id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        self.jobs: dict[int, dict] = {}

    def add(self, received: int, tail: bytes) -> int:
        with self._lock:
            job_id = self._next_id
            self._next_id += 1
            self.jobs[job_id] = {
                'received_bytes': received,
                'tail_is_tar_end': len(tail) == TAIL_SIZE and not any(tail),
            }
            return job_id


class StandInHandler(BaseHTTPRequestHandler):
    """One handler for both services; the path decides which."""

    protocol_version = 'HTTP/1.1'
    server: StandInServer

    def log_message(self, format: str, *args) -> None:
        """Stay quiet: logging every request would cost time in the measured window."""

    # ---- helpers -------------------------------------------------------
    def _reply(self, code: int, body: bytes = b'', headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if code not in (204, 304) and self.command != 'HEAD':
            self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if body and self.command != 'HEAD':
            self.wfile.write(body)

    def _reply_json(self, code: int, obj: object) -> None:
        self._reply(code, json.dumps(obj).encode(), {'Content-Type': 'application/json'})

    def _drain_body(self) -> tuple:
        """Read and discard the request body; return (byte count, last bytes)."""
        buf = bytearray(READ_SIZE)
        view = memoryview(buf)
        received = 0
        tail = b''
        rfile = self.rfile

        def take(limit: int) -> int:
            nonlocal tail
            got = rfile.readinto(view[:limit])
            if got:
                tail = (tail + bytes(view[max(0, got - TAIL_SIZE):got]))[-TAIL_SIZE:]
            return got or 0

        def take_exactly(count: int, where: str) -> None:
            nonlocal received
            while count:
                got = take(min(count, READ_SIZE))
                if not got:
                    raise ConnectionError(f'client closed {where}')
                count -= got
                received += got

        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            while True:
                size = int(rfile.readline().split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    while rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    break
                take_exactly(size, 'inside a chunk')
                rfile.readline()
        elif self.headers.get('Content-Length') is not None:
            take_exactly(int(self.headers['Content-Length']), 'before Content-Length bytes')
        else:
            # No framing: the body ends when the client shuts down its side.
            self.close_connection = True
            while True:
                got = take(READ_SIZE)
                if not got:
                    break
                received += got
        return received, tail

    # ---- ingest --------------------------------------------------------
    def _ingest_post(self) -> None:
        received, tail = self._drain_body()
        job_id = self.server.jobs.add(received, tail)
        self._reply_json(200, {'job_id': job_id})

    def _ingest_state(self, query: dict) -> None:
        job_id = int(query.get('job_id', ['0'])[0])
        facts = self.server.jobs.jobs.get(job_id)
        if facts is None:
            self._reply_json(404, {'job_id': job_id, 'state': 'FAILED', 'exception': 'unknown job'})
            return
        state = {
            'job_id': job_id, 'state': 'OK', 'task': 'ingest metadata', 'task_percent': '100.0',
            'complete': True, 'exception': '', 'created': '', 'updated': '',
        }
        state.update(facts)
        self._reply_json(200, state)

    # ---- cart ----------------------------------------------------------
    def _cart_tar(self, path: str) -> str:
        parts = [p for p in path.split('/') if p]
        if len(parts) != 2 or parts[0] not in self.server.cart_tars:
            return ''
        return self.server.cart_tars[parts[0]]

    def _cart_get(self, tar_path: str, query: dict) -> None:
        if query.get('filename', ['data'])[0] != 'data':
            self._reply_json(400, {'message': 'this stand-in only serves filename=data'})
            return
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        self.wfile.flush()
        sock = self.connection
        with open(tar_path, 'rb') as tar:
            size = os.fstat(tar.fileno()).st_size
            offset = 0
            while offset < size:
                count = min(SEND_CHUNK, size - offset)
                sock.sendall(b'%x\r\n' % count)
                while count:
                    sent = os.sendfile(sock.fileno(), tar.fileno(), offset, count)
                    if not sent:
                        raise ConnectionError('sendfile sent nothing')
                    offset += sent
                    count -= sent
                sock.sendall(b'\r\n')
        sock.sendall(b'0\r\n\r\n')

    # ---- dispatch ------------------------------------------------------
    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith('/upload'):
            self._ingest_post()
        elif self._cart_tar(url.path):
            self._drain_body()
            self._reply_json(201, {'message': 'Cart Processing has begun'})
        else:
            self._drain_body()
            self._reply_json(404, {'message': 'no such route'})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path.startswith('/get_state'):
            self._ingest_state(query)
        elif self._cart_tar(url.path):
            self._cart_get(self._cart_tar(url.path), query)
        else:
            self._reply_json(404, {'message': 'no such route'})

    def do_HEAD(self) -> None:
        if self._cart_tar(urlsplit(self.path).path):
            self._reply(204, headers={'X-Pacifica-Status': 'ready', 'X-Pacifica-Message': ''})
        else:
            self._reply(404, headers={'X-Pacifica-Status': 'error', 'X-Pacifica-Message': 'no such cart'})

    def do_DELETE(self) -> None:
        self._reply_json(200, {'message': 'deleted'})


class StandInServer(ThreadingHTTPServer):
    """HTTP server holding the job book and the tar of each data set."""

    daemon_threads = True

    def __init__(self, cart_tars: dict[str, str]) -> None:
        super().__init__(('127.0.0.1', 0), StandInHandler)
        self.cart_tars = cart_tars
        self.jobs = _JobBook()


def main() -> None:
    """Serve until the parent closes our stdin."""
    cart_tars = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    server = StandInServer(cart_tars)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({'port': server.server_address[1]}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == '__main__':
    main()
