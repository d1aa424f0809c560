"""The fileobj fast path of the upload core against the plain way, byte for byte (fileobjread, TarWriter)."""
from __future__ import annotations

import io

import pytest

from pacifica._client.exceptions import FileChangedError

from tests.helpers.bundles import MTIME
from tests.unit.uploader.bundler.test_tarwriter import _write


class _ReadOnly:
    """A file object with read() alone: the plain way, never the readinto fast path."""

    def __init__(self, data):
        self._source = io.BytesIO(data)

    def read(self, size=-1):
        return self._source.read(size)


class _Trickle(io.RawIOBase):
    """A binary file object whose readinto hands out at most 3 bytes a call."""

    def __init__(self, data):
        self._source = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buffer):
        return self._source.readinto(memoryview(buffer)[:3])


def _fileobj_records(kind):
    """Small file objects of several sizes, made by ``kind`` (bytes -> file object)."""
    sizes = [0, 1, 511, 512, 513, 4096, 70_000]
    return [{'name': f'data/f{size}', 'size': size, 'mtime': MTIME + 0.25,
             'fileobj': kind((bytes(range(256)) * (size // 256 + 1))[:size])}
            for size in sizes]


@pytest.mark.parametrize('kind', [io.BytesIO, _Trickle])
def test_small_file_objects_in_place_write_what_the_plain_way_writes(kind):
    """The readinto fast path (a 1 MiB buffer) against read() alone and a buffer too small for it, byte for byte."""
    fast = _write(_fileobj_records(kind), chunk_size=1 << 20)
    plain = _write(_fileobj_records(_ReadOnly), chunk_size=1 << 20)
    no_room = _write(_fileobj_records(kind), chunk_size=512)
    assert fast == plain == no_room


@pytest.mark.parametrize('data, message', [(b'abc', "ended after 3 of its 5 bytes"), (b'abcdefg', 'grew')])
def test_a_small_file_object_of_another_size_fails_as_in_the_plain_way(data, message):
    for kind, chunk_size in ((io.BytesIO, 1 << 20), (_ReadOnly, 1 << 20), (io.BytesIO, 512)):
        records = [{'name': 'data/x', 'size': 5, 'mtime': MTIME, 'fileobj': kind(data)}]
        with pytest.raises(FileChangedError, match=message):
            _write(records, chunk_size=chunk_size)


class _CountedReads(io.BytesIO):
    """BytesIO that notes the buffer length of every readinto call."""

    def __init__(self, data):
        super().__init__(data)
        self.asked = []

    def readinto(self, buffer):
        self.asked.append(len(buffer))
        return super().readinto(buffer)


def test_an_empty_file_object_is_asked_only_whether_it_ended():
    fileobj = _CountedReads(b'')
    _write([{'name': 'data/empty', 'size': 0, 'mtime': MTIME, 'fileobj': fileobj}], chunk_size=1 << 20)
    assert fileobj.asked == [1]


class _ReadOnlyRaw(io.RawIOBase):
    """read() of its own, readinto only io.RawIOBase's stub... which calls back into read(): a real readinto."""

    def __init__(self, data):
        self._source = io.BytesIO(data)

    def readable(self):
        return True

    def read(self, size=-1):
        return self._source.read(size)


class _StubReadinto(_ReadOnly):
    """A readinto that fails at once as an inherited stub does: the object is read with read()."""

    def readinto(self, buffer):
        raise NotImplementedError


class _NoneFirst(_CountedReads):
    """A readinto that answers None (no data yet) on its first call, as a non-blocking object does."""

    def readinto(self, buffer):
        if not self.asked:
            self.asked.append(len(buffer))
            return None
        return super().readinto(buffer)


@pytest.mark.parametrize('kind', [_ReadOnlyRaw, _StubReadinto, _NoneFirst])
def test_the_inline_first_read_ends_as_fill_from_readinto_does(kind):
    """The first readinto made inline: the same bytes, or the same error, as with no room for the fast path."""
    outcomes = []
    for chunk_size in (1 << 20, 512):
        try:
            outcomes.append(_write(_fileobj_records(kind), chunk_size=chunk_size))
        except FileChangedError as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]
