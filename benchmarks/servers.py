"""Loopback stand-ins for the ingest, metadata and cart services, run in their own process.

The benchmark must measure the client libraries, not a server, so the
stand-ins do the least work the protocol allows:

- ingest: ``POST /upload`` reads the body as fast as the socket delivers it
  (Content-Length, chunked, or until the client half-closes) and throws it
  away, keeping only the byte count and the last TAIL_SIZE bytes: of a body
  of known length, all before its last TAIL_SIZE bytes goes to /dev/null by
  ``os.splice`` (:func:`discard`; read into one 1 MiB buffer where splice is
  missing), and those are read into one buffer of their length (a ring of
  1 MiB buffers, joined at the end, cost twice the CPU on a sharded upload's
  10 MB bodies, CPU that shares the client's cores here as a remote server's
  would not); a chunked or close-delimited body goes to the ring whole
  (nothing is copied while reading), and the job id is answered
  then, as ingest answers it before its job runs; ``GET /get_state?job_id=N``
  answers a running job until its transaction is written (below), then a
  finished one, plus the byte count and whether the body ended like a tar.
- metadata: when an upload ends, its ``metadata.txt`` (the tar's last member,
  found in that tail) becomes transaction N (N = the job id), as ingest
  would write it: its ``TransactionKeyValue`` items and its ``Files``
  records. ``GET /keys``, ``/values``, ``/trans_key_value`` and ``/files``
  answer rows filtered by exact query fields, as pacifica-metadata's
  tables do (``metadata_tables.py``); ``/files?transaction=N`` is served
  from an answer built once, when the upload ended. A body whose ``metadata.txt`` is not within the
  tail (or not a tar) still makes a job that ended well, as before, but no
  transaction: its state says why in ``no_transaction``, and a check after
  ingest finds its files missing (start with ``--tail-mib`` larger).
- cart: ``/<set>/<cart id>`` behaves like cartd for a cart that is already
  staged: POST answers 201, HEAD answers 204 ``ready``, GET streams the
  pre-built tar of that data set with chunked encoding (no Content-Length,
  as cartd does) straight from the page cache with ``os.sendfile``.

Started by ``run.py``, ``shards.py`` and ``many_shards.py``::

    python benchmarks/servers.py ['{"<set>": "<cart tar>"}'] [--tail-mib 32] [--no-splice]

prints one JSON line with its port, then serves until stdin closes.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from metadata_tables import METADATA_TABLES, Tables, last_metadata

READ_SIZE = 1 << 20
#: What splice moves at once: the pipe is widened to this where the kernel lets it (64 KiB otherwise).
PIPE_SIZE = 1 << 20
#: How splice says it cannot join these descriptors (the plain read serves instead).
SPLICE_REFUSED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)
SEND_CHUNK = 4 << 20
TAR_END = 1024
#: Bytes kept of each upload's end: its metadata.txt must fit (about 270 bytes a file).
TAIL_SIZE = 32 << 20


class _Ring:
    """The last bytes of a body, read straight into a ring of buffers (nothing copied while reading)."""

    def __init__(self, keep: int) -> None:
        self.slots = [bytearray(READ_SIZE)]
        self.count = max(2, -(-keep // READ_SIZE) + 1)
        self.index = 0
        self.filled = [0]

    def space(self, limit: int) -> memoryview:
        """Where the next read goes: the current buffer's free part, or the oldest one once it is full."""
        if self.filled[self.index] == READ_SIZE:
            self.index = (self.index + 1) % self.count
            if self.index == len(self.slots):
                self.slots.append(bytearray(READ_SIZE))
                self.filled.append(0)
            self.filled[self.index] = 0
        start = self.filled[self.index]
        return memoryview(self.slots[self.index])[start:start + min(limit, READ_SIZE - start)]

    def wrote(self, count: int) -> None:
        self.filled[self.index] += count

    def tail(self) -> bytes:
        """The bytes kept, oldest first."""
        order = list(range(self.index + 1, len(self.slots))) + list(range(self.index + 1))
        return b''.join(memoryview(self.slots[i])[:self.filled[i]] for i in order)


def _read_exactly(rfile, count: int) -> bytearray:
    """The next ``count`` bytes of the body, read straight into one buffer."""
    kept = bytearray(count)
    view = memoryview(kept)
    at = 0
    while at < count:
        got = rfile.readinto(view[at:]) or 0
        if not got:
            raise ConnectionError('client closed before Content-Length bytes')
        at += got
    return kept


def _discard_by_reading(rfile, count: int) -> None:
    """The plain way: the next ``count`` bytes read into one 1 MiB buffer (it stays in the CPU's cache) and dropped."""
    scratch = memoryview(bytearray(min(count, READ_SIZE)))
    while count:
        got = rfile.readinto(scratch[:min(count, READ_SIZE)]) or 0
        if not got:
            raise ConnectionError('client closed before Content-Length bytes')
        count -= got


def _splice_to_null(fd: int, count: int) -> int:
    """The next ``count`` bytes of socket ``fd`` moved through a pipe into /dev/null, never into user space.

    Returns the bytes moved: all of them, or 0 when this Python or kernel
    cannot splice from ``fd`` (the first call fails before moving a byte).
    """
    splice = getattr(os, 'splice', None)
    if splice is None:
        return 0
    read_end, write_end = os.pipe()
    try:
        try:
            import fcntl
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except (AttributeError, OSError):
            pass  # the default pipe (64 KiB) works too, with more calls
        with open(os.devnull, 'wb', buffering=0) as null:
            moved = 0
            while moved < count:
                try:
                    got = splice(fd, write_end, min(count - moved, PIPE_SIZE))
                except OSError as err:
                    if moved == 0 and err.errno in SPLICE_REFUSED:
                        return 0
                    raise
                if not got:
                    raise ConnectionError('client closed before Content-Length bytes')
                moved += got
                while got:
                    got -= splice(read_end, null.fileno(), got)
            return moved
    finally:
        os.close(read_end)
        os.close(write_end)


def discard(rfile, connection: socket.socket, count: int, splice: bool = True) -> int:
    """Drop the next ``count`` bytes of a request body; return how many of them went by ``os.splice``.

    Why: the stand-in shares the client's two cores, as a remote server
    would not, and reading the ``big`` set's 1 GB body into user space only
    to drop it cost it 0.33-0.39 s of CPU (benchmarks/README.md, "Stand-in
    servers"). With ``splice`` (Linux, Python 3.10+) the bytes that the
    handler's buffered ``rfile`` does not hold yet go from the socket into
    /dev/null without a copy; where splice is missing or refused, found by
    trying it, :func:`_discard_by_reading` reads them the plain way.
    """
    if count <= 0:
        return 0
    held = len(rfile.read(min(count, len(rfile.peek(1)))))  # what the buffer holds (peek reads once if empty)
    count -= held
    spliced = _splice_to_null(connection.fileno(), count) if splice and count else 0
    _discard_by_reading(rfile, count - spliced)
    return spliced


class _JobBook:
    """What each upload delivered, keyed by job id, and the transactions they made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        self.jobs: dict[int, dict] = {}
        self.tables = Tables()

    def open(self, received: int, tail: bytes) -> int:
        """A new job for a body received whole: its id, answered before the job runs (:meth:`settle`)."""
        with self._lock:
            job_id = self._next_id
            self._next_id += 1
            self.jobs[job_id] = {
                'received_bytes': received,
                'tail_is_tar_end': len(tail) >= TAR_END and not any(tail[-TAR_END:]),
                'running': True,
            }
            return job_id

    def settle(self, job_id: int, received: int, tail: bytes) -> None:
        """Run the job: its transaction from the body's metadata.txt, then the job has ended."""
        try:
            metadata, problem = last_metadata(tail, received), ''
        except ValueError as err:
            metadata, problem = None, str(err)
        with self._lock:
            del self.jobs[job_id]['running']
            try:
                if metadata is not None:
                    self.tables.add(job_id, metadata)
            except (KeyError, TypeError, ValueError) as err:
                metadata, problem = None, 'a record of metadata.txt lacks {}'.format(err)
            if metadata is None:
                self.jobs[job_id]['no_transaction'] = problem

    def answer(self, table: str, query: dict) -> bytes | None:
        with self._lock:
            return self.tables.answer(table, query)


class StandInHandler(BaseHTTPRequestHandler):
    """One handler for the three services; the path decides which."""

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

    def _drain_body(self, keep: int = TAR_END) -> tuple:
        """Read and discard the request body; return (byte count, its last ``keep`` bytes or more)."""
        ring = _Ring(keep)
        received = 0
        rfile = self.rfile

        def take(limit: int) -> int:
            got = rfile.readinto(ring.space(limit)) or 0
            ring.wrote(got)
            return got

        def take_exactly(count: int, where: str) -> None:
            nonlocal received
            while count:
                got = take(count)
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
            # The length is known: its last ``keep`` bytes are kept in one buffer, the rest dropped (discard).
            length = int(self.headers['Content-Length'])
            discard(rfile, self.connection, length - keep, self.server.splice)
            return length, _read_exactly(rfile, min(length, keep))
        else:
            # No framing: the body ends when the client shuts down its side.
            self.close_connection = True
            while True:
                got = take(READ_SIZE)
                if not got:
                    break
                received += got
        return received, ring.tail()

    # ---- ingest --------------------------------------------------------
    def _ingest_post(self) -> None:
        received, tail = self._drain_body(self.server.tail_size)
        job_id = self.server.jobs.open(received, tail)
        # Ingest answers the job id once it holds the body; the job writes the transaction afterwards.
        self._reply_json(200, {'job_id': job_id})
        self.server.jobs.settle(job_id, received, tail)

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
        if facts.get('running'):
            state.update(task='ingest files', task_percent='0.0', complete=False)
        state.update(facts)
        self._reply_json(200, state)

    # ---- metadata ------------------------------------------------------
    def _metadata_get(self, table: str, query: dict) -> None:
        rows = self.server.jobs.answer(table, {field: values[-1] for field, values in query.items()})
        if rows is None:
            self._reply_json(400, {'message': 'this stand-in answers /files?transaction=N only'})
            return
        self._reply(200, rows, {'Content-Type': 'application/json'})

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
        elif url.path.strip('/') in METADATA_TABLES:
            self._metadata_get(url.path.strip('/'), query)
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

    def __init__(self, cart_tars: dict[str, str], tail_size: int = TAIL_SIZE, splice: bool = True) -> None:
        super().__init__(('127.0.0.1', 0), StandInHandler)
        self.cart_tars = cart_tars
        self.tail_size = tail_size
        self.splice = splice
        self.jobs = _JobBook()

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet about a client that reset its idle keep-alive connection (upstream's downloader does)."""
        if isinstance(sys.exc_info()[1], ConnectionResetError):
            return
        super().handle_error(request, client_address)


def main() -> None:
    """Serve until the parent closes our stdin."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('cart_tars', nargs='?', default='{}', help='JSON: {"<set>": "<path of its cart tar>"}')
    parser.add_argument('--tail-mib', type=int, default=TAIL_SIZE >> 20,
                        help="bytes kept of each upload's end, in MiB: its metadata.txt must fit")
    parser.add_argument('--no-splice', action='store_true',
                        help='read every body into user space (to measure what splice saves)')
    args = parser.parse_args()
    server = StandInServer(json.loads(args.cart_tars), args.tail_mib << 20, not args.no_splice)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({'port': server.server_address[1]}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == '__main__':
    main()
