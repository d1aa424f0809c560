"""Fixtures of the downloader tests: a cartd stand-in and fast client settings."""
from __future__ import annotations

import os
from typing import Iterator

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
