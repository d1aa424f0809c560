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
  That PAX prefix depends on the mtime alone and is cached by it: the files
  of a data set often share one mtime.

Everything else goes through ``tobuf``. The packed headers are compared with
``tobuf`` when this module is imported; if the running Python's tarfile
writes something else, the fast path switches itself off instead of writing
a different stream.
"""
from __future__ import annotations

import tarfile
from typing import Dict, Optional, Tuple, Union

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


def _pax_prefix(mtime: float) -> bytes:
    """The PAX extended header (two blocks) that carries a float ``mtime``, before the ustar block."""
    records = _pax_mtime_records(mtime)
    return b''.join((_PAX.pack(_PAX_NAME, len(records), 0), records, _NULS[len(records):]))


#: float mtime -> (PAX prefix, the rounded mtime of the ustar block). Files of one data set
#: often share their mtimes, and the prefix depends on nothing else.
_pax_cache: Dict[float, Tuple[bytes, int]] = {}
_PAX_CACHE_LIMIT = 4096


def _pax_entry(mtime: float) -> Tuple[bytes, int]:
    """(PAX prefix, rounded mtime) for a float ``mtime``, from the cache when it is there."""
    entry = _pax_cache.get(mtime)
    if entry is None:
        entry = (_pax_prefix(mtime), round(mtime))
        if mtime and len(_pax_cache) < _PAX_CACHE_LIMIT:  # not 0.0: it equals -0.0, which str() tells apart
            _pax_cache[mtime] = entry
    return entry


def fast_header(name: str, size: int, mtime: Number) -> bytes:
    """Header bytes for a member :func:`fast_header_length` accepted."""
    encoded = name.encode('ascii')
    if type(mtime) is int:
        return _FILE.pack(encoded, size, mtime)
    prefix, ustar_mtime = _pax_entry(mtime)
    return prefix + _FILE.pack(encoded, size, ustar_mtime)


def packed_header(name: str, size: int, mtime: Number, plain: bool) -> Optional[bytes]:
    """The packed header when the member qualifies (see :func:`fast_header_length`), else None.

    Called once per file, so it packs right here (no further calls but a dict lookup).
    """
    if not (_FAST_ENABLED and plain and len(name) <= _NAME_FIELD and name.isascii() and '\x00' not in name
            and 0 <= size < _NUMBER_LIMIT):
        return None
    if type(mtime) is int:
        if not 0 <= mtime < _NUMBER_LIMIT:
            return None
        prefix, ustar_mtime = b'', mtime
    elif type(mtime) is float and 0.0 <= mtime < _NUMBER_LIMIT - 1:  # NaN and inf fail too
        prefix, ustar_mtime = _pax_cache.get(mtime) or _pax_entry(mtime)
    else:
        return None
    encoded = name.encode('ascii')
    numbers = b'%011o\x00%011o\x00' % (size, ustar_mtime)
    return b''.join((prefix, encoded, _NULS[len(encoded):_NAME_FIELD], _FILE.mode_uid_gid, numbers,
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
        if (fast_header_length(*sample, True) != len(expected) or fast_header(*sample) != expected
                or packed_header(*sample, True) != expected):
            return False
    return True


_FAST_ENABLED = True
_FAST_ENABLED = _self_check()
