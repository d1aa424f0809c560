"""Tar headers exactly as ``tarfile.open(mode='w|')`` writes them: one packer, with a fast path.

The bundle must be byte compatible with what :mod:`tarfile` streams in PAX
format, so every header is, by definition,
``TarInfo.tobuf(PAX_FORMAT, 'utf-8', 'surrogateescape')``
(:func:`tarinfo_header`). :func:`member_header` is the one packer the bundler
calls. For the common member (an ASCII name of at most 100 characters, no
extra TarInfo keys, a size and mtime that fit the header) it packs the bytes
itself, without a TarInfo object (:func:`_packed_header`); the reason is
measured in ``benchmarks/README.md``. Every other member goes through
``tobuf``. The fast path is compared with ``tobuf`` on import: if the running
Python's tarfile writes something else, the fast path stays off instead of
writing a different stream. The unit tests compare the two byte for byte.
"""
from __future__ import annotations

import functools
import tarfile
from zlib import adler32
from typing import Any, Mapping, Optional, Tuple, Union

BLOCK_SIZE = tarfile.BLOCKSIZE  # 512
RECORD_SIZE = tarfile.RECORDSIZE  # 10240: tarfile pads the stream end to a whole record
END_OF_ARCHIVE_BLOCKS = 2

_NAME_FIELD = 100
_NUMBER_LIMIT = 8 ** 11  # 11 octal digits + NUL in the size and mtime fields
_NULS = bytes(BLOCK_SIZE)

Number = Union[int, float]


def tarinfo_header(info: tarfile.TarInfo) -> bytes:
    """The header(s) tarfile's streaming writer produces for ``info``: the reference for every header."""
    return info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')


def new_tarinfo(name: str, size: int, mtime: Number, extra: Optional[Mapping[str, Any]] = None) -> tarfile.TarInfo:
    """The TarInfo of a member: ``extra`` keys (mode, uname, ...) set first, name, size and mtime win."""
    info = tarfile.TarInfo(name)
    for key, value in (extra or {}).items():
        setattr(info, key, value)
    info.size = size
    info.mtime = mtime
    return info


def padding_length(size: int) -> int:
    """Zero bytes that follow ``size`` bytes of member data."""
    return -size % BLOCK_SIZE


def end_of_archive_length(offset: int) -> int:
    """Bytes tarfile writes on close after ``offset`` bytes: two zero blocks, then fill to a record."""
    end = offset + END_OF_ARCHIVE_BLOCKS * BLOCK_SIZE
    return end - offset + (-end % RECORD_SIZE)


def _layout(template: bytes) -> Tuple[bytes, bytes, int]:
    """(mode/uid/gid fields, fields after mtime, their checksum share) of a ustar block ``template``.

    tarfile's checksum is the byte sum with the checksum field read as 8 spaces.
    """
    mode_uid_gid, tail = template[100:124], template[156:BLOCK_SIZE]
    return mode_uid_gid, tail, sum(mode_uid_gid) + sum(tail) + 8 * ord(' ')


def _ustar(layout: Tuple[bytes, bytes, int], name: bytes, size: int, mtime: int) -> bytes:
    """One ustar block of ``layout`` with its name, size and mtime fields filled in.

    The byte sum of the name and numbers comes from adler32 (C, as
    ``downloader._tarstream.byte_sum``): its low 16 bits are 1 plus the sum,
    exact below 65521, which 124 bytes of at most 127 stay under.
    """
    mode_uid_gid, tail, fixed_sum = layout
    numbers = b'%011o\x00%011o\x00' % (size, mtime)
    checksum = fixed_sum - 1 + (adler32(numbers, adler32(name)) & 0xFFFF)
    return b'%s%s%s%06o\x00 %s' % (name.ljust(_NAME_FIELD, b'\x00'), mode_uid_gid, numbers, checksum, tail)


_FILE = _layout(tarinfo_header(new_tarinfo('x', 0, 0)))
#: The PAX extended header block of a float mtime: name ././@PaxHeader, mode 0, type 'x'.
_PAX = _layout(tarinfo_header(new_tarinfo('x', 0, 0.5))[:BLOCK_SIZE])
_PAX_NAME = b'././@PaxHeader'


@functools.lru_cache(maxsize=64)
def _pax_parts(text_length: int) -> Tuple[bytes, bytes]:
    """The PAX extended header of a float mtime whose text is ``text_length`` long, around that text.

    The header is a ustar block for the records, then "<length> mtime=<text>\\n"
    padded to a block; the length counts itself, so it is found by
    iterating until it is stable. All of it depends on the text's length
    alone, which has only a few values.
    """
    record_length = len('mtime=\n') + text_length
    length = record_length + 1
    while len(str(length)) + record_length + 1 != length:
        length = len(str(length)) + record_length + 1
    block = _ustar(_PAX, _PAX_NAME, length, 0)
    return block + b'%d mtime=' % length, b'\n' + _NULS[length:]


#: _pax_parts of every text length a float's repr can have (at most 24 characters), looked up per member.
_PAX_PARTS = {text_length: _pax_parts(text_length) for text_length in range(1, 33)}


#: The last float mtime packed and its PAX header, as one tuple (threads swap it whole). Files
#: copied or unpacked together often share their mtime; a miss costs one comparison.
_last_pax: Tuple[float, bytes] = (-1.0, b'')


def _pax_header(mtime: float) -> bytes:
    """The PAX extended header (two blocks) carrying a float ``mtime`` >= 0 (its ``str``, as tarfile writes)."""
    global _last_pax
    last = _last_pax
    if last[0] == mtime and mtime:  # 0.0 == -0.0, but their texts differ
        return last[1]
    text = repr(mtime)  # a float's str is its repr
    head, tail = _PAX_PARTS.get(len(text)) or _pax_parts(len(text))
    header = b'%s%s%s' % (head, text.encode('ascii'), tail)
    _last_pax = (mtime, header)
    return header


def _fits_fast_path(name: str, size: int, mtime: Number) -> bool:
    """Whether the fast path packs this member: an ASCII name of at most 100 characters, numbers that fit."""
    if not (len(name) <= _NAME_FIELD and name.isascii() and '\x00' not in name and 0 <= size < _NUMBER_LIMIT):
        return False
    if type(mtime) is int:
        return 0 <= mtime < _NUMBER_LIMIT
    return type(mtime) is float and 0.0 <= mtime < _NUMBER_LIMIT - 1  # NaN and inf fail too


def _packed_header(name: str, size: int, mtime: Number) -> Optional[bytes]:
    """The fast path: the header packed without a TarInfo, or None when the member needs tobuf.

    The checks of :func:`_fits_fast_path` are inline: this runs once per member.
    """
    if not (len(name) <= _NAME_FIELD and name.isascii() and '\x00' not in name and 0 <= size < _NUMBER_LIMIT):
        return None
    if type(mtime) is float and 0.0 <= mtime < _NUMBER_LIMIT - 1:  # NaN and inf fail
        return _pax_header(mtime) + _ustar(_FILE, name.encode('ascii'), size, round(mtime))
    if type(mtime) is int and 0 <= mtime < _NUMBER_LIMIT:
        return _ustar(_FILE, name.encode('ascii'), size, mtime)
    return None


#: Members the import-time check packs both ways: both mtime kinds, the field limits.
SELF_CHECK_SAMPLES = (('data/a.txt', 5, 1700000000), ('x' * 100, 0, 0), ('data/b', 8 ** 11 - 1, 8 ** 11 - 1),
                      ('data/c.bin', 1234567, 1700000000.123456), ('d', 1, 0.5), ('e', 2, 8e9 + 0.25))


def _fast_path_is_exact() -> bool:
    """True when the fast path packs the samples as tobuf does on this Python."""
    return all(_packed_header(*sample) == tarinfo_header(new_tarinfo(*sample)) for sample in SELF_CHECK_SAMPLES)


_FAST = _fast_path_is_exact()


def _never_packed(name: str, size: int, mtime: Number) -> None:
    """The stand-in for :func:`_packed_header` where the fast path is off: every member goes to tobuf."""


#: :func:`_packed_header` where the fast path is on: the per-member caller asks it first, without
#: the frame of :func:`member_header`, and falls back to member_header on None.
packed_header = _packed_header if _FAST else _never_packed


def member_header(name: str, size: int, mtime: Number, extra: Optional[Mapping[str, Any]] = None) -> bytes:
    """The header bytes of one member; ``extra`` holds the entry's TarInfo keys, if any."""
    if _FAST and not extra:
        packed = _packed_header(name, size, mtime)
        if packed is not None:
            return packed
    return tarinfo_header(new_tarinfo(name, size, mtime, extra))


def header_length(name: str, size: int, mtime: Number, extra: Optional[Mapping[str, Any]] = None) -> int:
    """``len(member_header(...))`` without packing the fast path's headers (the reason: benchmarks/README.md).

    A fast-path header is one ustar block, plus a PAX header of two blocks
    for a float mtime (its one record is far below a block).
    """
    if _FAST and not extra and _fits_fast_path(name, size, mtime):
        return BLOCK_SIZE if type(mtime) is int else 3 * BLOCK_SIZE
    return len(member_header(name, size, mtime, extra))
