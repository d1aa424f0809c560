"""A ``fileobj`` is anything with read(): every kind in this corpus bundles exactly as the same bytes in a file.

The user's document (step 11) asks only for an object that "exports a read()
method". Objects that also have a working readinto take the fast path; those
whose readinto is inherited and unimplemented, or that have none, are read
with read(), however few bytes each call returns and whatever buffer type.
"""
from __future__ import annotations

import gzip
import io
import socket
import tempfile
import threading
from typing import Any, Callable, Dict, List

import pytest
import urllib3

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import FileChangedError
from pacifica.uploader.bundler import Bundler

from tests.helpers.bundles import MTIME, bundle_bytes, valid_metadata

#: Valid UTF-8 with multi-byte characters (the text-mode sources decode it), several chunks long.
TEXT = ''.join('{:03d} Grüße aus Zürich, 世界, ẞ 🚀\n'.format(number) for number in range(120))
DATA = TEXT.encode('utf-8')
#: The smallest buffer the bundler takes: each source is read many times.
SMALL_CHUNKS = TransferConfig(chunk_size=512)


class RawReadOnly(io.RawIOBase):
    """A raw stream that implements read() only: its inherited readinto raises NotImplementedError."""

    def __init__(self, data: bytes, step: int = 1 << 20) -> None:
        self._data, self._step = io.BytesIO(data), step

    def read(self, size: int = -1) -> bytes:
        return self._data.read(self._step if size < 0 else min(size, self._step))


class RawReadintoOnly(io.RawIOBase):
    """A raw stream that implements readinto() only (and no readable()): its inherited read() works."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


class BufferedReadOnly(io.BufferedIOBase):
    """A buffered stream that implements read() only (its inherited readinto calls read)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: Any = -1) -> bytes:
        return self._data.read(size)


class ReadOnly:
    """Nothing but read(), returning at most ``step`` bytes a call, converted by ``kind``."""

    def __init__(self, data: bytes, step: int = 1 << 20, kind: Callable[[bytes], Any] = bytes) -> None:
        self._data, self._step, self._kind = io.BytesIO(data), step, kind

    def read(self, size: int = -1) -> Any:
        return self._kind(self._data.read(self._step if size < 0 else min(size, self._step)))


class Sources:
    """Makes each kind of source of ``data``; closes what it opened."""

    def __init__(self, tmp_path: Any, server: Any) -> None:
        self.tmp_path, self.server = tmp_path, server
        self.cleanups: List[Callable[[], Any]] = []

    def keep(self, thing: Any) -> Any:
        self.cleanups.append(thing.close)
        return thing

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()

    def file_path(self, data: bytes) -> str:
        path = self.tmp_path / 'plain.txt'
        path.write_bytes(data)
        return str(path)

    def make(self, kind: str, data: bytes) -> Any:
        """A source of ``kind`` (a key of IN_MEMORY or a method of this class) holding ``data``."""
        in_memory = IN_MEMORY.get(kind)
        return in_memory(data) if in_memory is not None else getattr(self, kind)(data)

    def text_file(self, data: bytes) -> Any:
        return self.keep(open(self.file_path(data), 'r', encoding='utf-8'))

    def gzip_file(self, data: bytes) -> Any:
        return self.keep(gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(data)), mode='rb'))

    def spooled_in_memory(self, data: bytes) -> Any:
        return self._spooled(data, len(data) + 1)

    def spooled_on_disk(self, data: bytes) -> Any:
        return self._spooled(data, 64)

    def _spooled(self, data: bytes, max_size: int) -> Any:
        spooled = self.keep(tempfile.SpooledTemporaryFile(max_size=max_size))
        spooled.write(data)
        spooled.seek(0)
        return spooled

    def socket_file(self, data: bytes) -> Any:
        """makefile('rb') of a real socket pair; the other end sends in small pieces, then closes."""
        ours, theirs = socket.socketpair()
        self.keep(ours)

        def send() -> None:
            with theirs:
                for start in range(0, len(data), 333):
                    theirs.sendall(data[start:start + 333])

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        self.cleanups.append(lambda: sender.join(10))
        return self.keep(ours.makefile('rb'))

    def urllib3_response(self, data: bytes) -> Any:
        """The body of a real HTTP reply from a loopback server, streamed (preload_content=False)."""
        self.server.route('GET', '/data', lambda request: data)
        pool = urllib3.PoolManager()
        self.cleanups.append(pool.clear)
        return self.keep(pool.request('GET', self.server.url + '/data', preload_content=False))


#: The sources that need no file, socket or server.
IN_MEMORY: Dict[str, Callable[[bytes], Any]] = {
    'raw_read_only': RawReadOnly,
    'raw_read_only_short_reads': lambda data: RawReadOnly(data, step=7),
    'raw_readinto_only': RawReadintoOnly,
    'buffered_read_only': BufferedReadOnly,
    'read_only_object': ReadOnly,
    'short_reads': lambda data: ReadOnly(data, step=7),
    'bytearray_reads': lambda data: ReadOnly(data, step=100, kind=bytearray),
    'memoryview_reads': lambda data: ReadOnly(data, step=100, kind=lambda piece: memoryview(bytearray(piece))),
    'string_io': lambda data: io.StringIO(data.decode('utf-8')),
}
KINDS = [*IN_MEMORY, 'text_file', 'gzip_file', 'spooled_in_memory', 'spooled_on_disk', 'socket_file',
         'urllib3_response']


@pytest.fixture
def sources(tmp_path: Any, server: Any) -> Any:
    made = Sources(tmp_path, server)
    yield made
    made.close()


def bundle(entry: Dict[str, Any]) -> Any:
    """The bundle of ``entry`` and the FileObj the bundler recorded for it."""
    md = valid_metadata()
    data = bundle_bytes(Bundler(md, [entry], config=SMALL_CHUNKS))
    return data, md[-1]


@pytest.mark.parametrize('kind', KINDS)
def test_every_readable_object_bundles_like_a_plain_file(sources, kind):
    name = 'data/sub/text.txt'
    expected = bundle({'name': name, 'size': len(DATA), 'mtime': MTIME, 'path': sources.file_path(DATA)})
    fileobj = sources.make(kind, DATA)
    assert bundle({'name': name, 'size': len(DATA), 'mtime': MTIME, 'fileobj': fileobj}) == expected


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('declared, problem', [(len(DATA) + 1, 'shrank'), (len(DATA) - 1, 'grew')])
def test_a_wrong_size_is_still_reported(sources, kind, declared, problem):
    fileobj = sources.make(kind, DATA)
    with pytest.raises(FileChangedError, match=problem):
        bundle({'name': 'data/a.txt', 'size': declared, 'mtime': MTIME, 'fileobj': fileobj})


def test_an_empty_raw_read_only_object(sources):
    """Size 0: the only readinto call is the end-of-file check, and it is the one that fails."""
    expected = bundle({'name': 'data/e', 'size': 0, 'mtime': MTIME, 'path': sources.file_path(b'')})
    assert bundle({'name': 'data/e', 'size': 0, 'mtime': MTIME, 'fileobj': RawReadOnly(b'')}) == expected


class CountingReadinto(io.RawIOBase):
    """A raw stream with a working readinto, counting which method the bundler calls."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.calls = {'read': 0, 'readinto': 0}

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.calls['readinto'] += 1
        return self._data.readinto(buffer)

    def read(self, size: int = -1) -> bytes:
        self.calls['read'] += 1
        return self._data.read(size)


def test_a_working_readinto_keeps_the_fast_path():
    source = CountingReadinto(DATA)
    bundle({'name': 'data/a.txt', 'size': len(DATA), 'mtime': MTIME, 'fileobj': source})
    assert source.calls['read'] == 0 and source.calls['readinto'] >= len(DATA) // 512


def test_a_failure_after_the_first_readinto_is_the_objects_own():
    """Only the first call decides: a later NotImplementedError is not taken for a missing method."""
    class FailsLater(CountingReadinto):
        def readinto(self, buffer: Any) -> int:
            if self.calls['readinto']:
                raise NotImplementedError('the device went away')
            return super().readinto(buffer)

    with pytest.raises(NotImplementedError, match='device went away'):
        bundle({'name': 'data/a.txt', 'size': len(DATA), 'mtime': MTIME, 'fileobj': FailsLater(DATA)})
