"""A small, strict reader of uncompressed tar streams.

cartd sends a cart as a plain tar written by Python's :mod:`tarfile` (POSIX
ustar with pax extended headers for long or non-ASCII names). This reader
understands exactly that family (ustar, pax ``x``/``g`` records, GNU ``L``/``K``
long names, base-256 sizes), reads the stream in large chunks and hands member
data out as memoryview slices of those chunks, so nothing is copied twice.

``read`` may hand out chunks of reusable buffers: the reader is done with a
chunk when it calls ``read`` for the next one (it keeps no reference to an
earlier chunk; header bytes are copied out), so the owner may refill that
buffer then, once the slices handed out of it are used up (see
:mod:`pacifica.downloader.cartfetch` for the whole data path).

It only *reports* members; deciding whether a member may be written is the
extractor's job. Malformed or truncated input raises
:class:`~pacifica._client.exceptions.ArchiveError`.
"""
from __future__ import annotations

import functools
import struct
import zlib
from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional

from pacifica._client.exceptions import ArchiveError

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
#: pax records and GNU long names larger than this are refused (they are a few hundred bytes in practice).
META_LIMIT = 1024 * 1024

REGULAR_TYPES = frozenset({b'0', b'\x00', b'7'})
DIRECTORY_TYPE = b'5'
#: Hard and symbolic links, devices and FIFOs: no data follows them in the stream, whatever their size field
#: says. Every other type is followed by ``size`` bytes: regular and sparse files, unknown types (as tarfile
#: reads them), and directories, whose size is 0 in the tars cartd writes (a nonzero one is skipped, never
#: taken for the next header).
NO_DATA_TYPES = frozenset({b'1', b'2', b'3', b'4', b'6'})
#: What each refused type is, for messages.
TYPE_NAMES = {
    b'1': 'a hard link', b'2': 'a symbolic link', b'3': 'a character device', b'4': 'a block device',
    b'6': 'a FIFO', b'S': 'a sparse file', b'V': 'a volume label', b'M': 'a multi-volume continuation',
}
_SIGNED_HEADER = struct.Struct('148b8x356b')


class Member(NamedTuple):
    """One archive entry after its extended headers were applied."""

    name: str
    type: bytes
    size: int
    mtime: float

    @property
    def is_file(self) -> bool:
        return self.type in REGULAR_TYPES

    @property
    def is_dir(self) -> bool:
        return self.type == DIRECTORY_TYPE

    def kind(self) -> str:
        """A readable name of the member's type."""
        if self.is_file:
            return 'a regular file'
        if self.is_dir:
            return 'a directory'
        return TYPE_NAMES.get(self.type, 'an entry of unknown type {!r}'.format(self.type))


#: Bytes whose sum adler32's low half holds exactly: 1 + 256 * 255 stays below its modulus 65521.
_SUM_PIECE = 256


def byte_sum(data: bytes) -> int:
    """``sum(data)``, the tar checksum's core, computed in C (the reason is in ``benchmarks/README.md``).

    adler32's low 16 bits are 1 plus the byte sum modulo 65521, which is the
    exact sum for up to :data:`_SUM_PIECE` bytes; longer data is summed piecewise.
    """
    total = 0
    for start in range(0, len(data), _SUM_PIECE):
        total += (zlib.adler32(data[start:start + _SUM_PIECE]) & 0xFFFF) - 1
    return total


@functools.lru_cache(maxsize=4096)
def _number(field: bytes, what: str) -> int:
    """Decode a numeric header field: octal text, or GNU base-256 binary.

    Cached: the headers of a cart repeat the same sizes, times and modes.
    """
    if field[:1] and field[0] & 0x80:
        if field[0] != 0x80:
            raise ArchiveError('tar header field {} is negative or malformed'.format(what))
        return int.from_bytes(field[1:], 'big')
    text = field.split(b'\x00', 1)[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise ArchiveError('tar header field {} is not a number: {!r}'.format(what, text[:20])) from None


def _text(raw: bytes) -> str:
    return raw.decode('utf-8', 'surrogateescape')


def _pax_records(data: bytes, previous: str) -> Dict[str, str]:
    """Parse ``"<len> <key>=<value>\\n"`` records."""
    records: Dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b' ', pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise ArchiveError('malformed pax header after {}'.format(previous)) from None
        end = pos + length
        record = data[space + 1:end]
        if space < 0 or length <= 0 or end > len(data) or not record.endswith(b'\n') or b'=' not in record:
            raise ArchiveError('malformed pax header after {}'.format(previous))
        key, _, value = record[:-1].partition(b'=')
        records[_text(key)] = _text(value)
        pos = end
    return records


class TarStreamReader:
    """Iterate over the members of a tar stream read through ``read(size)``.

    ``read`` returns up to ``size`` bytes (any bytes-like object) and
    ``b''`` at the end (like a raw HTTP body). After :meth:`members` yields a
    regular file, the caller may consume its data with :meth:`data`;
    whatever it leaves is skipped.
    """

    def __init__(self, read: Callable[[int], Any], chunk_size: int = 1024 * 1024) -> None:
        self._read = read
        self._chunk_size = chunk_size
        self._view = memoryview(b'')
        self._pos = 0
        self._pending = 0  # data + padding bytes of the current member not consumed yet
        self._padding = 0
        self.bytes_read = 0

    # -- buffer ----------------------------------------------------------
    def _fill(self) -> bool:
        self._view = memoryview(b'')
        data = self._read(self._chunk_size)
        if not data:
            return False
        self.bytes_read += len(data)
        self._view = memoryview(data)
        self._pos = 0
        return True

    def _take(self, size: int, label: str, subject: str) -> bytes:
        """Exactly ``size`` bytes (small reads: headers and extended records)."""
        end = self._pos + size
        if end <= len(self._view):
            out = self._view[self._pos:end].tobytes()
            self._pos = end
            return out
        pieces = []
        need = size
        while need:
            if self._pos >= len(self._view) and not self._fill():
                raise ArchiveError('the cart stream ended early, inside {} {} ({} of {} bytes)'.format(
                    label, subject, size - need, size))
            piece = self._view[self._pos:self._pos + need]
            pieces.append(piece.tobytes())
            self._pos += len(piece)
            need -= len(piece)
        return b''.join(pieces)

    def _skip(self, size: int, label: str, subject: str) -> None:
        need = size
        while need:
            if self._pos >= len(self._view) and not self._fill():
                raise ArchiveError('the cart stream ended early, inside {} {} ({} of {} bytes)'.format(
                    label, subject, size - need, size))
            step = min(need, len(self._view) - self._pos)
            self._pos += step
            need -= step

    # -- members ---------------------------------------------------------
    def data(self, member: Member) -> Iterator[memoryview]:
        """Yield the current member's data as memoryview slices (valid until the next slice)."""
        size = member.size
        while self._pending:
            if self._pos >= len(self._view) and not self._fill():
                raise ArchiveError('the cart stream ended early, inside member {!r} ({} of {} bytes)'.format(
                    member.name, size - self._pending, size))
            piece = self._view[self._pos:self._pos + self._pending]
            self._pos += len(piece)
            self._pending -= len(piece)
            yield piece

    def members(self) -> Iterator[Member]:
        """Yield each member until the end-of-archive block; extended headers are applied, not yielded."""
        pax: Dict[str, str] = {}
        long_name: Optional[str] = None
        previous = 'the first member'
        while True:
            if self._pending or self._padding:
                self._skip(self._pending + self._padding, 'member', previous)
                self._pending = self._padding = 0
            if self._pos >= len(self._view) and not self._fill():
                raise ArchiveError('the cart stream ended after {} without the end-of-archive marker'
                                   ' (truncated?)'.format(previous))
            header = self._take(BLOCK, 'the header after', previous)
            if header == ZERO_BLOCK:
                return
            self._check_sum(header, previous)
            type_flag = header[156:157]
            if type_flag in (b'x', b'g', b'L', b'K'):
                data = self._extended_header(header, previous)
                if type_flag == b'x':
                    pax.update(_pax_records(data, previous))
                elif type_flag == b'L':
                    long_name = _text(data.split(b'\x00', 1)[0])
                continue  # 'g' (global) and 'K' (link target) change nothing this reader uses
            member = _member(header, type_flag, pax, long_name)
            pax, long_name = {}, None
            has_data = member.type not in NO_DATA_TYPES
            self._pending = member.size if has_data else 0
            self._padding = -member.size % BLOCK if has_data else 0
            previous = repr(member.name)
            yield member

    def _extended_header(self, header: bytes, previous: str) -> bytes:
        """The data of a pax or GNU extended header, its padding skipped."""
        size = _number(header[124:136], 'size')
        if size > META_LIMIT:
            raise ArchiveError('extended header of {} bytes after {} is too large'.format(size, previous))
        data = self._take(size, 'an extended header after', previous)
        self._skip(-size % BLOCK, 'an extended header after', previous)
        return data

    @staticmethod
    def _check_sum(header: bytes, previous: str) -> None:
        field = header[148:156]
        stored = _number(field, 'checksum')
        unsigned = byte_sum(header) - sum(field) + 8 * 32
        if stored != unsigned and stored != sum(_SIGNED_HEADER.unpack(header)) + 8 * 32:
            raise ArchiveError('tar header after {} has a bad checksum (not a tar stream, or corrupted)'.format(
                previous))


def _name(header: bytes, pax: Dict[str, str], long_name: Optional[str]) -> str:
    if 'path' in pax:
        return pax['path']
    if long_name is not None:
        return long_name
    name = header[0:100].split(b'\x00', 1)[0]
    if header[257:263] == b'ustar\x00':
        prefix = header[345:500].split(b'\x00', 1)[0]
        if prefix:
            name = prefix + b'/' + name
    return _text(name)


def _member(header: bytes, type_flag: bytes, pax: Dict[str, str], long_name: Optional[str]) -> Member:
    """The member a header describes, with the pax records and GNU long name that came before it applied."""
    name = _name(header, pax, long_name)
    size = _number(header[124:136], 'size')
    if 'size' in pax:
        try:
            size = int(pax['size'])
        except ValueError:
            raise ArchiveError('pax size of {!r} is not a number'.format(name)) from None
    mtime = float(_number(header[136:148], 'mtime'))
    if 'mtime' in pax:
        try:
            mtime = float(pax['mtime'])
        except ValueError:
            raise ArchiveError('pax mtime of {!r} is not a number'.format(name)) from None
    if type_flag == b'\x00' and name.endswith('/'):
        type_flag = DIRECTORY_TYPE  # old tar: a plain entry with a trailing slash is a directory
    if any(key.startswith('GNU.sparse.') for key in pax):
        type_flag = b'S'
    return Member(name, type_flag, size, mtime)
