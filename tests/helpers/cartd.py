"""A loopback stand-in for cartd 0.7, built on :class:`LoopbackServer`.

It behaves like the real service where the client can tell: ``POST /<uid>``
with ``{"fileids": [...]}`` answers 201; ``HEAD /<uid>`` answers 204 with
``X-Pacifica-Status``/``X-Pacifica-Message`` (404 for an unknown cart, 500
for a failed one); ``GET /<uid>?filename=NAME`` answers 202 until ready and
then streams a tar made the way cartd makes it: the requested files are
staged on disk at ``<path minus one leading '/'>`` under a cart directory
and that directory is added with ``tarfile`` under the name
``NAME.replace('.tar', '')`` (chunked, no Content-Length). With
``bundle=True`` in the request (cartd's pre-bundled mode) the tar's top
directory is the cart UUID and it is sent with a Content-Length.
``DELETE /<uid>`` removes the cart.

Faults are programmed per server through :class:`CartBehaviour`::

    cartd = CartServer(server, tmp_path)
    cartd.add_file(103, b'hello')                       # content the archive holds for file id 103
    cartd.behaviour.staging_polls = 3                   # a slow cart
    cartd.behaviour.get_status = 500                    # a failing GET
    cartd.behaviour.tar_bytes = hostile_tar             # serve this tar instead of the real one

Reusable by the reliability and benchmark suites.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import tarfile
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

from tests.helpers.server import LoopbackServer, Raw, Reply, Request

#: Bytes per chunk of the streamed tar (cartd's default transfer_size is 4 MiB).
TRANSFER_SIZE = 4 * 1024 * 1024


@dataclasses.dataclass
class CartBehaviour:
    """Knobs for the faults the server injects (all off by default)."""

    #: HEADs answered ``staging`` before ``ready``.
    staging_polls: int = 0
    #: End every cart in state ``error`` with this message.
    fail_message: Optional[str] = None
    #: Force the HEAD status (e.g. 500, 404) whatever the cart's state.
    head_status: Optional[int] = None
    #: Status of the cart POST (cartd: 201).
    post_status: int = 201
    #: Force the GET status (e.g. 202, 403, 500).
    get_status: Optional[int] = None
    #: Serve these bytes (or the result of this callable of the cart) as the tar.
    tar_bytes: Union[None, bytes, Callable[['Cart'], bytes]] = None
    #: Stop the tar stream after this many bytes (a truncated reply).
    truncate_at: Optional[int] = None
    #: Send the body without chunked framing, ending by closing the connection.
    close_delimited: bool = False


@dataclasses.dataclass
class Cart:
    uid: str
    fileids: List[Dict[str, Any]]
    body: Dict[str, Any]
    directory: str
    heads: int = 0
    deleted: bool = False


class CartServer:
    """cartd's REST surface on a loopback server; the archive's content comes from :meth:`add_file`."""

    def __init__(self, server: LoopbackServer, workdir: Union[str, 'os.PathLike[str]']) -> None:
        self.server = server
        self.workdir = os.fspath(workdir)
        self.contents: Dict[str, bytes] = {}
        self.carts: Dict[str, Cart] = {}
        self.behaviour = CartBehaviour()
        self._lock = threading.Lock()
        for method, handler in (('POST', self._post), ('HEAD', self._head), ('GET', self._get),
                                ('DELETE', self._delete)):
            server.route(method, '*', handler)

    @property
    def url(self) -> str:
        return self.server.url

    def add_file(self, file_id: Any, content: bytes) -> None:
        """What the archive holds for ``file_id``."""
        self.contents[str(file_id)] = content

    @staticmethod
    def _uid(request: Request) -> str:
        return request.path.strip('/').rsplit('/', 1)[-1]

    def _post(self, request: Request) -> Any:
        if self.behaviour.post_status != 201:
            return Reply.json({'message': 'refused'}, status=self.behaviour.post_status)
        body = request.json()
        uid = self._uid(request)
        directory = os.path.join(self.workdir, 'carts', uid)
        os.makedirs(directory)
        for item in body['fileids']:
            path = item['path'][1:] if item['path'].startswith('/') else item['path']  # cartd's fix_absolute_path
            dest = os.path.join(directory, path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, 'wb') as handle:
                handle.write(self.contents.get(str(item['id']), b''))
        with self._lock:
            self.carts[uid] = Cart(uid, body['fileids'], body, directory)
        return Reply.json({'message': 'Cart Processing has begun'}, status=201)

    def _cart(self, request: Request) -> Optional[Cart]:
        cart = self.carts.get(self._uid(request))
        return None if cart is None or cart.deleted else cart

    def _head(self, request: Request) -> Reply:
        cart = self._cart(request)
        if cart is None:
            return Reply(404, b'', {'X-Pacifica-Status': 'error',
                                    'X-Pacifica-Message': 'No cart with uid {} found'.format(self._uid(request))})
        cart.heads += 1
        status, message = 'ready', ''
        if cart.heads <= self.behaviour.staging_polls:
            status = 'staging'
        elif self.behaviour.fail_message is not None:
            status, message = 'error', self.behaviour.fail_message
        code = self.behaviour.head_status or (500 if status == 'error' else 204)
        return Reply(code, b'', {'X-Pacifica-Status': status, 'X-Pacifica-Message': message})

    def _get(self, request: Request) -> Any:
        cart = self._cart(request)
        if self.behaviour.get_status is not None:
            return Reply(self.behaviour.get_status, 'forced status {}'.format(self.behaviour.get_status))
        if cart is None:
            return Reply.json({'status': '404 Not Found', 'message': 'The cart does not exist'}, status=404)
        if cart.heads <= self.behaviour.staging_polls:
            return Reply(202, 'The cart is not ready for download.')
        tar_bytes = self.behaviour.tar_bytes
        if tar_bytes is not None:
            data = tar_bytes(cart) if callable(tar_bytes) else tar_bytes
            return self._send_bytes(data)
        if cart.body.get('bundle'):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode='w') as tar:
                tar.add(cart.directory, arcname=cart.uid)
            return self._send_bytes(buf.getvalue(), with_length=True)
        name = request.query.get('filename', 'data.tar')
        return self._send_stream(stream_directory(cart.directory, name.replace('.tar', '')))

    def _send_bytes(self, data: bytes, with_length: bool = False) -> Any:
        if self.behaviour.truncate_at is not None:
            data = data[:self.behaviour.truncate_at]
        if with_length and self.behaviour.truncate_at is None:
            return Reply(200, data, {'Content-Type': 'application/octet-stream'})
        return self._send_stream(iter([data[i:i + TRANSFER_SIZE] for i in range(0, len(data), TRANSFER_SIZE)]))

    def _send_stream(self, chunks: Iterator[bytes]) -> Any:
        limit = self.behaviour.truncate_at
        if limit is not None or self.behaviour.close_delimited:
            def write(handler: Any) -> None:
                handler.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n'
                                    b'Connection: close\r\n\r\n')
                sent = 0
                for chunk in chunks:
                    if limit is not None:
                        chunk = chunk[:max(limit - sent, 0)]
                    handler.wfile.write(chunk)
                    sent += len(chunk)
                    if limit is not None and sent >= limit:
                        break
                handler.wfile.flush()
            return Raw(write)
        return Reply(200, chunks, {'Content-Type': 'application/octet-stream'})

    def _delete(self, request: Request) -> Any:
        cart = self._cart(request)
        if cart is None:
            return Reply.json({'message': 'Not Found'}, status=404)
        cart.deleted = True
        shutil.rmtree(cart.directory, ignore_errors=True)
        return {'message': 'Cart Deleted Successfully'}


def stream_directory(directory: str, arcname: str) -> Iterator[bytes]:
    """Yield a tar of ``directory`` named ``arcname``, written by tarfile through a pipe as cartd does."""
    rfd, wfd = os.pipe()
    reader, writer = os.fdopen(rfd, 'rb'), os.fdopen(wfd, 'wb')

    def produce() -> None:
        try:
            with tarfile.open(fileobj=writer, mode='w|') as tar:
                tar.add(directory, arcname=arcname)
        finally:
            writer.close()
    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            chunk = reader.read(TRANSFER_SIZE)
            if not chunk:
                break
            yield chunk
    finally:
        reader.close()
        thread.join()


# ---------------------------------------------------------------------------
# Records and tars for tests
# ---------------------------------------------------------------------------
def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def transaction_info(files: Dict[Any, tuple], hashtype: str = 'sha1') -> Dict[str, Any]:
    """A Policy-style transaction info: ``files`` maps id -> (subdir, name, content)."""
    return {'transaction': {'_id': 67}, 'files': {
        str(file_id): {'_id': file_id, 'name': name, 'subdir': subdir, 'size': len(content),
                       'hashtype': hashtype, 'hashsum': hashlib.new(hashtype, content).hexdigest(),
                       'mimetype': 'application/octet-stream'}
        for file_id, (subdir, name, content) in files.items()}}


def cloud_event(files: Dict[Any, tuple], hashtype: str = 'sha1') -> Dict[str, Any]:
    """A Notifications-style cloud event with one ``Files`` object per entry, plus other metadata."""
    data: List[Dict[str, Any]] = [{'destinationTable': 'Transactions._id', 'value': 67}]
    for file_id, (subdir, name, content) in files.items():
        data.append({'destinationTable': 'Files', '_id': file_id, 'name': name, 'subdir': subdir,
                     'size': len(content), 'hashtype': hashtype,
                     'hashsum': hashlib.new(hashtype, content).hexdigest()})
    return {'eventID': 'e-1', 'eventType': 'org.pacifica.metadata.ingest', 'source': '/pacifica/metadata/ingest',
            'data': data}


def build_tar(members: List[tarfile.TarInfo], contents: Optional[Dict[str, bytes]] = None,
              tar_format: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar of the given TarInfo objects (regular files take their data from ``contents[name]``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tar_format) as tar:
        for info in members:
            data = (contents or {}).get(info.name)
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = '', size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = size
    info.mtime = 1_600_000_000
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info
