"""Loopback stand-ins for the ingest, metadata and cart services, run in their own process.

The benchmark must measure the client libraries, not a server, so the
stand-ins do the least work the protocol allows:

- ingest: ``POST /upload`` reads the body as fast as the socket delivers it
  (Content-Length, chunked, or until the client half-closes) and throws it
  away, keeping only the byte count and the last TAIL_SIZE bytes: a body of
  known length is read into one 1 MiB buffer until its last TAIL_SIZE bytes,
  which are read into one buffer of their length (a ring of 1 MiB buffers,
  joined at the end, cost twice the CPU on a sharded upload's 10 MB bodies,
  CPU that shares the client's cores here as a remote server's would not);
  a chunked or close-delimited body goes to the ring whole (nothing is copied
  while reading), and the job id is answered
  then, as ingest answers it before its job runs; ``GET /get_state?job_id=N``
  answers a running job until its transaction is written (below), then a
  finished one, plus the byte count and whether the body ended like a tar.
- metadata: when an upload ends, its ``metadata.txt`` (the tar's last member,
  found in that tail) becomes transaction N (N = the job id), as ingest
  would write it: its ``TransactionKeyValue`` items and its ``Files``
  records. ``GET /keys``, ``/values``, ``/trans_key_value`` and ``/files``
  answer rows filtered by exact query fields, as pacifica-metadata's
  tables do; ``/files?transaction=N`` is served from an answer built once,
  when the upload ended. A body whose ``metadata.txt`` is not within the
  tail (or not a tar) still makes a job that ended well, as before, but no
  transaction: its state says why in ``no_transaction``, and a check after
  ingest finds its files missing (start with ``--tail-mib`` larger).
- cart: ``/<set>/<cart id>`` behaves like cartd for a cart that is already
  staged: POST answers 201, HEAD answers 204 ``ready``, GET streams the
  pre-built tar of that data set with chunked encoding (no Content-Length,
  as cartd does) straight from the page cache with ``os.sendfile``.

Started by ``run.py``, ``shards.py`` and ``many_shards.py``::

    python benchmarks/servers.py ['{"<set>": "<cart tar>"}'] [--tail-mib 32]

prints one JSON line with its port, then serves until stdin closes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

READ_SIZE = 1 << 20
SEND_CHUNK = 4 << 20
TAR_END = 1024
BLOCK = 512
METADATA_MEMBER = b'metadata.txt'
#: Bytes kept of each upload's end: its metadata.txt must fit (about 270 bytes a file).
TAIL_SIZE = 32 << 20
METADATA_TABLES = ('keys', 'values', 'trans_key_value', 'files')


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


def last_metadata(tail: bytes | bytearray, received: int) -> list:
    """The decoded ``metadata.txt`` of a tar whose last ``len(tail)`` bytes are ``tail`` (of ``received``)."""
    start = received - len(tail)
    at = len(tail)
    while True:
        at = tail.rfind(METADATA_MEMBER + b'\0', 0, at)
        if at < 0:
            raise ValueError('metadata.txt is not in the last {} bytes of the body'.format(len(tail)))
        if (start + at) % BLOCK == 0 and tail[at + 257:at + 262] == b'ustar':
            size = int(tail[at + 124:at + 136].strip(b'\0 ') or b'0', 8)
            return json.loads(tail[at + BLOCK:at + BLOCK + size])


class _Tables:
    """Transactions as pacifica-metadata's REST tables show them; the keys, values and links are few."""

    def __init__(self) -> None:
        self.ids: dict[tuple, int] = {}
        self.rows: dict[str, list] = {'keys': [], 'values': [], 'trans_key_value': []}
        self.files: dict[int, bytes] = {}
        self._next_file_id = 1

    def _id_of(self, table: str, field: str, text: str) -> int:
        if (table, text) not in self.ids:
            self.ids[table, text] = len(self.ids) + 1
            self.rows[table].append({'_id': self.ids[table, text], field: text})
        return self.ids[table, text]

    def add(self, transaction_id: int, metadata: list) -> None:
        """Transaction ``transaction_id`` as ingest writes it from a bundle's decoded metadata.txt.

        KeyError, TypeError or ValueError for a record without its fields, before any row is added.
        """
        items = [item for item in metadata if isinstance(item, dict)]
        pairs = [(str(item['key']), str(item['value'])) for item in items
                 if item.get('destinationTable') == 'TransactionKeyValue']
        files = [{'_id': self._next_file_id + number, 'transaction': transaction_id, 'name': item['name'],
                  'subdir': item.get('subdir', ''), 'size': int(item['size']), 'hashtype': item.get('hashtype', ''),
                  'hashsum': item.get('hashsum', ''), 'mimetype': item.get('mimetype', '')}
                 for number, item in enumerate(item for item in items if item.get('destinationTable') == 'Files')]
        for key, value in pairs:
            self.rows['trans_key_value'].append({'transaction': transaction_id, 'key': self._id_of('keys', 'key', key),
                                                 'value': self._id_of('values', 'value', value)})
        self._next_file_id += len(files)
        self.files[transaction_id] = json.dumps(files).encode()

    def answer(self, table: str, query: dict) -> bytes | None:
        """The JSON rows of ``table`` whose fields equal ``query``'s; None for a question not answered here."""
        if table == 'files':
            if set(query) != {'transaction'} or not query['transaction'].isdigit():
                return None
            return self.files.get(int(query['transaction']), b'[]')
        return json.dumps([row for row in self.rows[table]
                           if all(str(row.get(field)) == wanted for field, wanted in query.items())]).encode()


class _JobBook:
    """What each upload delivered, keyed by job id, and the transactions they made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        self.jobs: dict[int, dict] = {}
        self.tables = _Tables()

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

        scratch = memoryview(bytearray(READ_SIZE))

        def take(limit: int, kept: bool = True) -> int:
            got = rfile.readinto(ring.space(limit) if kept else scratch[:min(limit, READ_SIZE)]) or 0
            if kept:
                ring.wrote(got)
            return got

        def take_exactly(count: int, where: str, kept: bool = True) -> None:
            nonlocal received
            while count:
                got = take(count, kept)
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
            # The length is known: its last ``keep`` bytes are kept in one buffer, the rest read into one
            # buffer that stays in the CPU's cache.
            length = int(self.headers['Content-Length'])
            take_exactly(max(0, length - keep), 'before Content-Length bytes', kept=False)
            tail = _read_exactly(rfile, min(length, keep))
            return received + len(tail), tail
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

    def __init__(self, cart_tars: dict[str, str], tail_size: int = TAIL_SIZE) -> None:
        super().__init__(('127.0.0.1', 0), StandInHandler)
        self.cart_tars = cart_tars
        self.tail_size = tail_size
        self.jobs = _JobBook()


def main() -> None:
    """Serve until the parent closes our stdin."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('cart_tars', nargs='?', default='{}', help='JSON: {"<set>": "<path of its cart tar>"}')
    parser.add_argument('--tail-mib', type=int, default=TAIL_SIZE >> 20,
                        help="bytes kept of each upload's end, in MiB: its metadata.txt must fit")
    args = parser.parse_args()
    server = StandInServer(json.loads(args.cart_tars), args.tail_mib << 20)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({'port': server.server_address[1]}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == '__main__':
    main()
