"""Tar headers exactly as ``tarfile.open(mode='w|')`` writes them, built fast.

The bundle must be byte compatible with what :mod:`tarfile` streams in PAX
format, so the reference for every header is
``TarInfo.tobuf(PAX_FORMAT, 'utf-8', 'surrogateescape')``. Calling it costs
about 15 microseconds and a TarInfo object per member, which dominates a
bundle of many small files. The common members (a plain file with an ASCII
name of at most 100 characters, no extra TarInfo keys, an mtime that fits the
header) are therefore packed here directly:

- an ``int`` mtime gives one 512-byte ustar block;
- a ``float`` mtime gives a PAX extended header with the precise ``mtime``
  record, then the ustar block holding the rounded value (what tarfile does).

Everything else goes through ``tobuf``. The packed headers are compared with
``tobuf`` when this module is imported; if the running Python's tarfile
writes something else, the fast path switches itself off instead of writing
a different stream.
"""
from __future__ import annotations

import tarfile
from typing import Optional, Union

BLOCK_SIZE = tarfile.BLOCKSIZE  # 512
RECORD_SIZE = tarfile.RECORDSIZE  # 10240: tarfile pads the stream end to a whole record
END_OF_ARCHIVE_BLOCKS = 2

_NAME_FIELD = 100
_NUMBER_LIMIT = 8 ** 11  # 11 octal digits + NUL in the size and mtime fields
_NULS = bytes(BLOCK_SIZE)

Number = Union[int, float]


def tobuf_header(info: tarfile.TarInfo) -> bytes:
    """Return the header(s) tarfile's streaming writer produces for ``info``."""
    return info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')


def padding_length(size: int) -> int:
    """Zero bytes that follow ``size`` bytes of member data."""
    return -size % BLOCK_SIZE


def end_of_archive_length(offset: int) -> int:
    """Bytes tarfile writes on close after ``offset`` bytes: two zero blocks, then fill to a record."""
    end = offset + END_OF_ARCHIVE_BLOCKS * BLOCK_SIZE
    return end - offset + (-end % RECORD_SIZE)


class _UstarPacker:
    """Packs a ustar block from a template whose only varying fields are name, size and mtime."""

    def __init__(self, template: bytes) -> None:
        self.mode_uid_gid = template[100:124]
        self.tail = template[156:BLOCK_SIZE]
        # tarfile's checksum is the byte sum with the checksum field read as 8 spaces.
        self.fixed_sum = sum(self.mode_uid_gid) + sum(self.tail) + 8 * ord(' ')

    def pack(self, name: bytes, size: int, mtime: int) -> bytes:
        numbers = b'%011o\x00%011o\x00' % (size, mtime)
        checksum = self.fixed_sum + sum(name) + sum(numbers)
        return b''.join((name, _NULS[len(name):_NAME_FIELD], self.mode_uid_gid, numbers,
                         b'%06o\x00 ' % checksum, self.tail))


def _template(name: str, **fields: object) -> bytes:
    info = tarfile.TarInfo(name)
    for key, value in fields.items():
        setattr(info, key, value)
    return tobuf_header(info)


_FILE = _UstarPacker(_template('x'))
# The PAX extended header block: name ././@PaxHeader, mode 0, type 'x'.
_PAX = _UstarPacker(_template('x', mtime=0.5)[:BLOCK_SIZE])
_PAX_NAME = b'././@PaxHeader'


def _pax_mtime_records(mtime: float) -> bytes:
    """The ``mtime`` record of a PAX header: "<length> mtime=<value>\\n" with a self-inclusive length."""
    record = 'mtime=' + str(mtime) + '\n'
    length = len(record) + 1
    while len(str(length)) + len(record) + 1 != length:
        length = len(str(length)) + len(record) + 1
    return b'%d %s' % (length, record.encode('ascii'))


def fast_header_length(name: str, size: int, mtime: Number, plain: bool) -> int:
    """Length of :func:`fast_header`'s result, or 0 when that member needs ``tobuf``.

    ``plain`` is false when the entry carries extra TarInfo keys.
    """
    if not (_FAST_ENABLED and plain and len(name) <= _NAME_FIELD and name.isascii()
            and '\x00' not in name and 0 <= size < _NUMBER_LIMIT):
        return 0
    if type(mtime) is int:
        return BLOCK_SIZE if 0 <= mtime < _NUMBER_LIMIT else 0
    if type(mtime) is float and 0.0 <= mtime < _NUMBER_LIMIT - 1:  # NaN and inf fail too
        return 3 * BLOCK_SIZE
    return 0


def fast_header(name: str, size: int, mtime: Number) -> bytes:
    """Header bytes for a member :func:`fast_header_length` accepted."""
    encoded = name.encode('ascii')
    if type(mtime) is int:
        return _FILE.pack(encoded, size, mtime)
    records = _pax_mtime_records(mtime)
    return b''.join((_PAX.pack(_PAX_NAME, len(records), 0), records, _NULS[len(records):],
                     _FILE.pack(encoded, size, round(mtime))))


def packed_header(name: str, size: int, mtime: Number, plain: bool) -> Optional[bytes]:
    """The packed header when the member qualifies (see :func:`fast_header_length`), else None.

    The int-mtime case, one per small file, is packed right here (no further calls).
    """
    if type(mtime) is not int:
        return fast_header(name, size, mtime) if fast_header_length(name, size, mtime, plain) else None
    if not (_FAST_ENABLED and plain and len(name) <= _NAME_FIELD and name.isascii() and '\x00' not in name
            and 0 <= size < _NUMBER_LIMIT and 0 <= mtime < _NUMBER_LIMIT):
        return None
    encoded = name.encode('ascii')
    numbers = b'%011o\x00%011o\x00' % (size, mtime)
    return b''.join((encoded, _NULS[len(encoded):_NAME_FIELD], _FILE.mode_uid_gid, numbers,
                     b'%06o\x00 ' % (_FILE.fixed_sum + sum(encoded) + sum(numbers)), _FILE.tail))


def _tobuf_plain(name: str, size: int, mtime: Number) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    return tobuf_header(info)


def _self_check() -> bool:
    """True when the packed headers equal tobuf's on this Python."""
    samples = [('data/a.txt', 5, 1700000000), ('x' * 100, 0, 0), ('data/b', 8 ** 11 - 1, 8 ** 11 - 1),
               ('data/c.bin', 1234567, 1700000000.123456), ('d', 1, 0.5), ('e', 2, 8e9 + 0.25)]
    for sample in samples:
        expected = _tobuf_plain(*sample)
        if fast_header_length(*sample, True) != len(expected) or fast_header(*sample) != expected:
            return False
    return True


_FAST_ENABLED = True
_FAST_ENABLED = _self_check()
