"""The strict tar reader: same members and data as tarfile, whatever the chunk boundaries."""
from __future__ import annotations

import io
import os
import random
import tarfile

import pytest

from pacifica.downloader import ArchiveError
from pacifica.downloader._tarstream import TarStreamReader, byte_sum
from tests.helpers.cartd import build_tar, member


def reader_over(data: bytes, piece_sizes):
    """read(size) that hands out ``data`` in the given (cycled) piece sizes."""
    stream = io.BytesIO(data)
    sizes = iter(piece_sizes)

    def read(_size):
        return stream.read(next(sizes))
    return read


def read_all(data: bytes, piece_sizes):
    reader = TarStreamReader(reader_over(data, piece_sizes), 4096)
    out = []
    for item in reader.members():
        content = b''.join(bytes(piece) for piece in reader.data(item)) if item.is_file else None
        out.append((item.name.rstrip('/'), item.type, item.size, item.mtime, content))
    return out


def sample_tar(tar_format):
    rng = random.Random(7)
    members, contents = [member('data', tarfile.DIRTYPE)], {}
    for index in range(12):
        leaf = 'f\u00e9{}-'.format(index) + 'y' * rng.choice([1, 99])
        name = 'data/{}/{}'.format('x' * rng.choice([1, 90, 160]), leaf)
        members.append(member(name))
        contents[name] = rng.randbytes(rng.choice([0, 1, 511, 512, 513, 5000]))
    return build_tar(members, contents, tar_format), contents


@pytest.mark.parametrize('tar_format', [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize('pieces', [[1 << 20], [1], [7, 511, 3], [512], [513, 1]])
def test_matches_tarfile(tar_format, pieces):
    data, contents = sample_tar(tar_format)
    ours = read_all(data, iter(lambda: pieces, None).__next__() * 100000)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        theirs = [(info.name, info.type, info.size, float(info.mtime),
                   tar.extractfile(info).read() if info.isfile() else None) for info in tar.getmembers()]
    assert ours == theirs
    assert {name: content for name, _t, _s, _m, content in ours if content is not None} == contents


def test_unread_data_is_skipped():
    data, contents = sample_tar(tarfile.PAX_FORMAT)
    reader = TarStreamReader(io.BytesIO(data).read, 1000)
    assert [item.name.rstrip('/') for item in reader.members()] == ['data'] + list(contents)


def test_base256_size_and_signed_checksum():
    """GNU base-256 numbers, and a checksum made by a tar that summed signed bytes, are both accepted."""
    header = bytearray(member('data/\u00e9', size=3).tobuf(tarfile.GNU_FORMAT, encoding='latin-1'))
    header[124:136] = b'\x80' + (3).to_bytes(11, 'big')
    header[148:156] = b'        '
    signed = sum(b - 256 if b > 127 else b for b in header)
    assert signed != sum(header)
    header[148:156] = b'%06o\x00 ' % signed
    data = bytes(header) + b'abc'.ljust(512, b'\0') + bytes(1024)
    assert read_all(data, [1 << 20] * 10)[0][2:] == (3, 1_600_000_000.0, b'abc')


def test_bad_checksum():
    data = bytearray(build_tar([member('data/x')], {'data/x': b'1'}))
    data[0] ^= 1
    with pytest.raises(ArchiveError, match='checksum'):
        read_all(bytes(data), [1 << 20] * 10)


def test_sparse_member_is_reported_as_such():
    info = member('data/s')
    info.pax_headers = {'GNU.sparse.major': '1', 'GNU.sparse.minor': '0'}
    items = read_all(build_tar([info], {'data/s': b''}), [1 << 20] * 10)
    assert items[0][1] == b'S'


@pytest.mark.parametrize('cut', [100, 512, 600, 1024, 1530])
def test_truncation_anywhere_is_an_error(cut):
    data = build_tar([member('data/x')], {'data/x': b'z' * 1000})
    with pytest.raises(ArchiveError):
        read_all(data[:cut], [1 << 20] * 10)


def test_malformed_pax_record():
    info = member('data/x')
    good = build_tar([info], {'data/x': b'1'}, tarfile.PAX_FORMAT)
    header = bytearray(tarfile.TarInfo('././@PaxHeader').tobuf(tarfile.USTAR_FORMAT))
    record = b'99 path=nonsense\n'
    header[156:157] = b'x'
    header[124:136] = b'%011o\x00' % len(record)
    header[148:156] = b'        '
    header[148:156] = b'%06o\x00 ' % sum(header)
    data = bytes(header) + record.ljust(512, b'\0') + good
    with pytest.raises(ArchiveError, match='pax'):
        read_all(data, [1 << 20] * 10)


@pytest.mark.parametrize('length', [0, 1, 255, 256, 257, 511, 512, 513, 1024, 1500])
@pytest.mark.parametrize('fill', [0x00, 0xFF, None])
def test_the_checksum_byte_sum_is_the_plain_sum(length, fill):
    """byte_sum (adler32 in pieces) against the plain sum(), at the piece edges and the largest bytes."""
    data = os.urandom(length) if fill is None else bytes([fill]) * length
    assert byte_sum(data) == sum(data)
