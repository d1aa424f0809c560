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


@pytest.mark.parametrize('chunk_size', [512, 4096])
def test_a_last_member_of_known_length_is_written_as_it_comes(records, chunk_size):
    """finish(name, pieces, size) takes a one-shot iterator and writes the same bytes as with a list."""
    pieces = [b'[', b'x' * 3000, b', ', b'y' * 700, b']']
    listed, _ = _write(records, chunk_size, last=pieces)
    for record in records:
        fileobj = record.get('fileobj')
        if fileobj is not None:
            fileobj.seek(0)
    out = bytearray()
    with TarWriter('sha1', chunk_size=chunk_size, read_ahead=False) as writer:
        for item in writer.files(records):
            if not isinstance(item, FileResult):
                out += item
        for chunk in writer.finish('last.txt', iter(pieces), sum(map(len, pieces))):
            out += chunk
    assert bytes(out) == listed


def test_results_appended_by_make_result_are_the_fileresults_yielded(tmp_path):
    """files(records, results, make_result): the bytes of the plain way, and make_result of each FileResult in order.

    Large files hashed on the hasher thread hold the results after them back; those come the same way.
    """
    def make_records():
        large = tmp_path / 'large.bin'
        large.write_bytes(bytes(range(256)) * ((SMALL_FILE + 300_000) // 256))
        made = []
        for number in range(7):
            made.append({'name': 'data/o{}'.format(number), 'size': number * 300, 'mtime': MTIME + number,
                         'fileobj': io.BytesIO(bytes([number]) * (number * 300))})
            if number in (2, 5):
                made.append({'name': 'data/large{}.bin'.format(number), 'size': large.stat().st_size,
                             'mtime': MTIME, 'path': str(large)})
        return made
    plain_bytes, plain_results = _write(make_records(), chunk_size=2048)
    out, kept = bytearray(), []
    with TarWriter('sha1', chunk_size=2048, read_ahead=False) as writer:
        for item in writer.files(make_records(), kept, lambda *fields: ('made',) + fields):
            assert not isinstance(item, FileResult)
            out += item
        for chunk in writer.finish('last.txt', [b'{}']):
            out += chunk
    assert bytes(out) == plain_bytes
    assert kept == [('made',) + tuple(result) for result in plain_results]
