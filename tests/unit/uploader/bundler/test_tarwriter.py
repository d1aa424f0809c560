"""The upload core on its own: records in, tar bytes and per-file results out, no metadata anywhere."""
from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from pacifica._client.exceptions import FileChangedError
from pacifica.uploader.bundler.tarwriter import SMALL_FILE, FileResult, TarWriter, archive_length

from tests.helpers.bundles import MTIME, read_members


def _write(records, chunk_size=4096, hash_name='sha1', last=(b'{}',)):
    """(tar bytes, results) of one TarWriter run over ``records`` with a last member 'last.txt'."""
    out, results = bytearray(), []
    with TarWriter(hash_name, chunk_size=chunk_size, read_ahead=False) as writer:
        for item in writer.files(records):
            if isinstance(item, FileResult):
                results.append(item)
            else:
                out += item
        for chunk in writer.finish('last.txt', list(last)):
            out += chunk
    return bytes(out), results


@pytest.fixture
def records(tmp_path):
    """A small path file, a large one (hashed on the hasher thread), a fileobj and a text file object."""
    small, large = tmp_path / 'small.bin', tmp_path / 'large.bin'
    small.write_bytes(b's' * 700)
    large.write_bytes(bytes(range(256)) * ((SMALL_FILE + 300_000) // 256))
    return [
        {'name': 'data/large.bin', 'size': large.stat().st_size, 'mtime': MTIME, 'path': str(large)},
        {'name': 'data/small.bin', 'size': 700, 'mtime': MTIME + 0.5, 'path': str(small)},
        {'name': 'data/object', 'size': 5, 'mtime': MTIME, 'fileobj': io.BytesIO(b'hello'), 'mode': 0o600},
        {'name': 'data/text.txt', 'size': 6, 'mtime': MTIME, 'fileobj': io.StringIO('héllo')},
    ]


@pytest.mark.parametrize('chunk_size', [512, 4096, 1 << 20])
def test_results_come_in_record_order_with_the_digests_of_the_bytes_written(records, chunk_size):
    tar, results = _write(records, chunk_size)
    members = read_members(tar)
    assert [info.name for info, _ in members] == [record['name'] for record in records] + ['last.txt']
    assert [(result.name, result.size, result.mtime) for result in results] == [
        (record['name'], record['size'], record['mtime']) for record in records]
    for result, (info, data) in zip(results, members):
        assert result.digest == hashlib.sha1(data).hexdigest() and info.size == result.size
    assert members[2][0].mode == 0o600
    assert members[-1][1] == b'{}' and members[-1][0].mtime == 0


def test_the_length_is_known_beforehand(records):
    tar, _ = _write(records, last=(b'[', b'1, 2', b']'))
    for record in records:
        fileobj = record.get('fileobj')
        if fileobj is not None:
            fileobj.seek(0)
    assert len(tar) == archive_length(records, 'last.txt', 6)
    assert len(tar) % tarfile.RECORDSIZE == 0


def test_a_second_writer_over_the_same_records_rereads_the_file_objects(records):
    starts = {}
    outputs = []
    for _ in range(2):
        with TarWriter('sha256', read_ahead=False, fileobj_starts=starts) as writer:
            outputs.append([item for item in writer.files(records) if isinstance(item, FileResult)])
    assert outputs[0] == outputs[1]


def test_the_byte_count_grows_with_the_data_read(records):
    with TarWriter('sha1', chunk_size=4096, read_ahead=False) as writer:
        seen = [writer.read_count.value for item in writer.files(records) if isinstance(item, FileResult)]
    assert seen == sorted(seen) and seen[-1] == sum(record['size'] for record in records)


def test_a_changed_file_raises_file_changed(records, tmp_path):
    (tmp_path / 'small.bin').write_bytes(b'short')
    with pytest.raises(FileChangedError, match="'data/small.bin' ended after 5 of its 700 bytes"):
        _write(records)


def test_each_bundler_counts_its_own_bytes(md):
    from pacifica.uploader.bundler import Bundler
    entries = [{'name': 'data/a', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'a')}]
    first, second = Bundler(md, entries), Bundler(md, entries)
    first._done_size += 7
    assert (first._done_size, second._done_size) == (7, 0)


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
