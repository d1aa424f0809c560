"""Fixtures of the downloader tests: a cartd stand-in and fast client settings."""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, Iterator, Tuple

import pytest

from pacifica._client.config import TransferConfig
from tests.helpers.cartd import CartServer
from tests.helpers.server import LoopbackServer

#: Short timeouts and polls so failure tests end quickly.
FAST = TransferConfig(connect_timeout=2, read_timeout=2, backoff_factor=0.01, call_deadline=5, poll_interval=0.05)

#: Three files: nested, at the top (empty subdir), and non-ASCII names.
FILES = {
    103: ('a/b', 'foo.txt', b'hello world\n'),
    104: ('', 'top.bin', bytes(range(256)) * 40),
    105: ('a/b/\u00e9', 'barr\u00e9.txt', 'caf\u00e9 '.encode() * 300),
}


@pytest.fixture
def cartd(server: LoopbackServer, tmp_path) -> Iterator[CartServer]:
    """A cartd stand-in holding FILES."""
    cart_server = CartServer(server, tmp_path / 'cartd')
    for file_id, (_subdir, _name, content) in FILES.items():
        cart_server.add_file(file_id, content)
    yield cart_server


@pytest.fixture
def dest(tmp_path) -> str:
    """The download location (not created: the downloader makes it)."""
    return os.path.join(str(tmp_path), 'dest')


def tree(root: str) -> dict:
    """Every file below ``root`` (relative '/'-path -> bytes), hidden ones included."""
    found = {}
    for base, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(base, name)
            with open(path, 'rb') as handle:
                found[os.path.relpath(path, root).replace(os.sep, '/')] = handle.read()
    return found


def final_files(root: str) -> dict:
    """``tree(root)`` without the parked ``.pacifica-verified`` files; fails if a partial part is left."""
    found = tree(root)
    assert not [path for path in found if path.endswith('.pacifica-part')], 'a partial part file was left'
    return {path: content for path, content in found.items() if not path.endswith('.pacifica-verified')}


def expected_tree(files: dict = FILES, filename: str = 'data') -> dict:
    return {'/'.join(part for part in (filename, subdir, name) if part): content
            for subdir, name, content in files.values()}


#: Three transactions of a dataset: id -> {file id: (subdir, name, content)}.
DATASET: Dict[int, Dict[int, Tuple[str, str, bytes]]] = {
    11: {1: ('run', 'a.txt', b'alpha\n'), 2: ('run', 'b.bin', bytes(range(256)) * 50),
         3: ('run/deep', 'c.txt', b'gamma ' * 1000), 4: ('', 'top.txt', b'top\n')},
    12: {5: ('run', 'd.txt', b'delta\n' * 333), 6: ('run/deep', 'e.bin', os.urandom(70_000)),
         7: ('other', 'f.txt', b'')},
    13: {8: ('run', 'g.txt', 'caf\u00e9\n'.encode() * 99), 9: ('x/y/z', 'h.dat', b'h' * 4097)},
}


def record(transaction_id: int, files: Dict[int, Tuple[str, str, bytes]]) -> Dict[str, Any]:
    """A policy transaction record as ``fetch_transaction`` returns it."""
    return {'transaction': {'_id': transaction_id}, 'files': {
        str(file_id): {'_id': file_id, 'name': name, 'subdir': subdir, 'size': len(content), 'hashtype': 'sha1',
                       'hashsum': hashlib.sha1(content).hexdigest()}
        for file_id, (subdir, name, content) in files.items()}}


RECORDS = [record(tid, files) for tid, files in DATASET.items()]
EXPECTED = {'/'.join(p for p in ('data', subdir, name) if p): content
            for files in DATASET.values() for subdir, name, content in files.values()}
TOTAL = sum(len(content) for content in EXPECTED.values())


@pytest.fixture
def dataset_cartd(server: LoopbackServer, tmp_path) -> CartServer:
    """A cartd stand-in holding DATASET, and policy's records of its transactions on the same server."""
    cart_server = CartServer(server, tmp_path / 'cartd')
    for files in DATASET.values():
        for file_id, (_subdir, _name, content) in files.items():
            cart_server.add_file(file_id, content)
    for tid, files in DATASET.items():
        server.route('GET', '/status/transactions/by_id/{}'.format(tid), record(tid, files))
    return cart_server


@pytest.fixture(params=['in-process', 'part-file-process'])
def part_files(request, monkeypatch) -> str:
    """Run a test twice: small part files made by the download process, and by the part-file process.

    The second holds the fast path (:mod:`pacifica.downloader._creator`) to the same files, byte for
    byte, and to the same failures as the plain one.
    """
    from pacifica.downloader import _creator
    monkeypatch.setattr(_creator, 'AUTO_MIN_FILES', 0 if request.param == 'part-file-process' else 1 << 62)
    return request.param
