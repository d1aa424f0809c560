"""The upload core: checked file records in, tar bytes and each file's digest out.

:class:`TarWriter` writes the members of one uncompressed tar stream, byte
for byte what ``tarfile.open(mode='w|')`` writes, hashing every byte of file
data as it passes. It takes the records :func:`~.filedata.check_file_data`
accepted (dicts with ``name``, ``size``, ``mtime`` and a ``path`` or a
``fileobj``; other keys are TarInfo attributes) and knows nothing of the
upload's metadata: :meth:`TarWriter.files` yields the output chunks and, in
record order, one :class:`FileResult` per file; :meth:`TarWriter.finish`
writes a last member (the caller's) and the end of the archive.

How the data moves, per record:

1. The header comes from :func:`.tarformat.member_header`.
2. A small ``path`` file (up to :data:`SMALL_FILE`) is read whole with one
   ``os.read`` and hashed, and goes into the output buffer right after its
   header. In a bundle of many small files the :mod:`.readahead` process does
   that on the other core, its bytes read straight into the output buffer.
3. Everything else (large files, ``fileobj`` records) is read straight into
   the output buffer (``readinto``: every byte is copied once, by the read);
   large reads are hashed on the :class:`~.pipeline.AsyncHasher` thread while
   the next piece is read. A ``fileobj`` needs nothing but ``read()``: text,
   objects without ``readinto`` and those whose first ``readinto`` shows it
   is an inherited stub are copied with ``read()`` (:mod:`.fileobjread`). A small
   binary ``fileobj`` whose member fits the buffer's rest is read there in
   one go and hashed at once, like a small ``path`` file.
4. A full output buffer is yielded. Chunks are memoryviews of reused
   buffers, valid until the next item is requested.

Memory is flat in the number of files; ``path`` files are opened one at a
time, when their turn comes. A file that changed since it was checked raises
:class:`~pacifica._client.exceptions.FileChangedError` (:mod:`.filechanged`).
"""
from __future__ import annotations

import collections
import io
import itertools
import logging
from typing import (Any, Callable, Deque, Dict, Generator, Iterable, Iterator, NamedTuple, Optional, Sequence, Set,
                    Tuple, Union)

from pacifica._client.rules import new_hash

from .filechanged import grew_while_read, open_for_reading, read_small_file, shrank_while_read
from .fileinfo import tuple_maker
from .fileobjread import (READINTO_MISSING, ReadintoMissing, as_bytes, checked_readinto, fill_from_readinto,
                          finish_filling)
from .filedata import CORE_KEYS
from .pipeline import ASYNC_HASH_MIN, AsyncHasher, BufferRing, ByteCount, OutputBuffer, digest_bytes, hexdigest
from .readahead import AUTO_MIN_FILES, STARTUP_FILES, ReadAhead, ReadAheadLost, can_start
from .tarformat import BLOCK_SIZE, end_of_archive_length, header_length, member_header, packed_header, padding_length

LOGGER = logging.getLogger(__name__)

#: ``path`` files up to this size are read whole, with one ``os.read``, instead of through a file object.
SMALL_FILE = 256 * 1024
#: The output buffer's size when the caller gives none.
DEFAULT_CHUNK_SIZE = 1 << 20
_NULS = bytes(BLOCK_SIZE)


class FileResult(NamedTuple):
    """What one member's data turned out to be: its name, size, mtime and hex digest."""

    name: str
    size: int
    mtime: Union[int, float]
    digest: str


#: FileResult(*fields) without the namedtuple's Python ``__new__``: one per file (:func:`.fileinfo.tuple_maker`).
_new_result = tuple_maker(FileResult)


def _is_small_path(record: Dict[str, Any]) -> bool:
    """A ``path`` record small enough to be read whole at once (and by the read-ahead process)."""
    return record['size'] <= SMALL_FILE and record.get('fileobj') is None


def _small_positions(records: Sequence[Dict[str, Any]]) -> Iterator[int]:
    """The positions of the small ``path`` records, found as they are asked for (no per-file list)."""
    return (position for position, record in enumerate(records) if _is_small_path(record))


def _extra_keys(record: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The record's TarInfo keys, if any."""
    return {key: value for key, value in record.items() if key not in CORE_KEYS}


def member_length(record: Dict[str, Any]) -> int:
    """Bytes one record's member takes in the stream: header, data, padding."""
    size = record['size']
    extra = None if len(record) == 4 else _extra_keys(record)  # name, size, mtime and a path or a fileobj
    return header_length(record['name'], size, record['mtime'], extra) + size + padding_length(size)


def archive_length(records: Iterable[Dict[str, Any]], last_name: str, last_size: int) -> int:
    """Exact length of the stream of ``records`` plus a last member ``last_name`` of ``last_size`` bytes."""
    total = sum(map(member_length, records))
    total += member_length({'name': last_name, 'size': last_size, 'mtime': 0, 'path': None})
    return total + end_of_archive_length(total)


#: A file still being hashed on the hasher thread: (name, size, mtime, hash object or hex digest, its last job).
_Pending = Tuple[str, int, Union[int, float], Any, int]


class TarWriter:
    """Writes one tar stream: :meth:`files` first, then :meth:`finish`; :meth:`close` in any case.

    ``hash_name`` is any :data:`hashlib.algorithms_available` name.
    ``read_ahead``: None tries the read-ahead process from
    :data:`~.readahead.AUTO_MIN_FILES` small files on, True always, False
    never. ``fileobj_starts`` remembers where each ``fileobj`` was first
    found, so that a later stream over the same records reads them again from
    there; pass the same dict to each TarWriter over the same records.
    ``read_count`` counts the bytes of file data read, for a progress display.
    """

    def __init__(self, hash_name: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, read_ahead: Optional[bool] = None,
                 fileobj_starts: Optional[Dict[int, Tuple[Any, Any]]] = None,
                 read_count: Optional[ByteCount] = None) -> None:
        self.hash_name = hash_name
        self._prototype = new_hash(hash_name)
        self._fixed_digest = self._prototype.digest_size != 0  # not SHAKE: hexdigest() needs no length
        self._chunk_size = max(chunk_size, BLOCK_SIZE)
        self._read_ahead_setting = read_ahead
        self._fileobj_starts = {} if fileobj_starts is None else fileobj_starts
        self.read_count = ByteCount() if read_count is None else read_count
        self._hasher = AsyncHasher()
        self._out = OutputBuffer(BufferRing(self._chunk_size, self._hasher).acquire)
        self._read_ahead: Optional[ReadAhead] = None
        self._probe = bytearray(1)  # the read after a file's last byte, which must find EOF
        self._binary_kinds: Set[type] = set()

    def __enter__(self) -> 'TarWriter':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the read-ahead process and the hashing thread."""
        if self._read_ahead is not None:
            self._read_ahead.close()
            self._read_ahead = None
        self._hasher.close()

    # -- small path files ------------------------------------------------------------------------

    def _start_read_ahead(self, records: Sequence[Dict[str, Any]]) -> Optional[ReadAhead]:
        """The read-ahead process for the small files, if the setting and the platform allow one."""
        if self._read_ahead_setting is False:
            return None
        small = _small_positions(records)
        if self._read_ahead_setting is None:
            if sum(1 for _ in itertools.islice(_small_positions(records), AUTO_MIN_FILES)) < AUTO_MIN_FILES:
                return None
            small = itertools.islice(small, STARTUP_FILES, None)  # those before are read here while the worker starts
        start = next(small, None)
        if start is None or not can_start():
            return None
        try:
            return ReadAhead(self.hash_name, digest_bytes(self.hash_name), records, start, _is_small_path)
        except ReadAheadLost as error:
            LOGGER.info('Reading the small files in this process: %s', error)
            return None

    def _from_read_ahead(self, index: int, name: str, target: memoryview) -> Optional[str]:
        """Fill ``target`` from the read-ahead process and return the hex digest; None when it does not serve."""
        read_ahead = self._read_ahead
        if read_ahead is None or not read_ahead.serves(index):
            return None
        try:
            return read_ahead.take(name, target).hex()
        except ReadAheadLost as lost:
            LOGGER.warning('The read-ahead process failed (%s); reading the remaining small files in this process',
                           lost)
            read_ahead.close()
            self._read_ahead = None
            return None

    def _small_file_data(self, index: int, record: Dict[str, Any], target: memoryview) -> str:
        """Fill ``target`` with a small ``path`` file's bytes and return their hex digest."""
        name, size = record['name'], record['size']
        hexsum = None if self._read_ahead is None else self._from_read_ahead(index, name, target)
        if hexsum is None:
            data = read_small_file(record['path'], size, name)
            target[:] = data
            hashval = self._prototype.copy()
            hashval.update(data)
            hexsum = hexdigest(hashval)
        self.read_count.value += size
        return hexsum

    def _small_file_in_place(self, index: int, record: Dict[str, Any], header: bytes) -> Optional[str]:
        """Write a small ``path`` file's member straight into the output buffer and return its hex digest.

        None, with nothing written, when the member does not fit the buffer's
        rest: then :meth:`_small_file_spilled` writes it. The common case, so
        it makes no generator and no further copy.
        """
        out = self._out
        size = record['size']
        data_start = out.pos + len(header)
        data_end = data_start + size
        end = data_end + padding_length(size)
        if end > len(out.view):
            return None
        hexsum = self._small_file_data(index, record, out.view[data_start:data_end])
        out.view[out.pos:data_start] = header
        out.view[data_end:end] = _NULS[:end - data_end]
        out.pos = end
        return hexsum

    def _small_file_spilled(self, index: int, record: Dict[str, Any],
                            header: bytes) -> Generator[memoryview, None, str]:
        """A small file's member across output buffers; returns (as a generator) its hex digest."""
        data = memoryview(bytearray(record['size']))
        hexsum = self._small_file_data(index, record, data)
        yield from self._out.put(header)
        yield from self._out.put(data)
        yield from self._out.put(_NULS[:padding_length(record['size'])])
        return hexsum

    # -- small file objects ---------------------------------------------------------------------

    def _fileobj_in_place(self, record: Dict[str, Any], header: bytes) -> Optional[str]:
        """Write a small binary ``fileobj`` member straight into the output buffer; return its hex digest.

        The ``fileobj`` twin of :meth:`_small_file_in_place` (the reason is in
        ``benchmarks/README.md``): no generator, no result queue. None, with
        nothing read and nothing written, when the member does not fit the
        buffer's rest or the object has no working ``readinto``: then
        :meth:`_copy_data`, the plain way, writes it.
        """
        out = self._out
        view, size, fileobj = out.view, record['size'], record['fileobj']
        data_start = out.pos + len(header)
        data_end = data_start + size
        end = data_end + (-size % BLOCK_SIZE)  # padding_length(size), inline: this runs per file
        readinto = getattr(fileobj, 'readinto', None)
        if end > len(view) or readinto is None or (type(fileobj) not in self._binary_kinds
                                                   and not self._learn_binary(fileobj)):
            return None
        if self._fileobj_starts or getattr(fileobj, 'seekable', None) is not None:  # else _rewind has nothing to do
            self._rewind(fileobj)
        target = view[data_start:data_end]
        if size:  # fill_from_readinto, its common case inline: one call fills the target, the next finds EOF
            try:
                count = readinto(target)
            except READINTO_MISSING:
                return None
            if count != size:
                finish_filling(readinto, target, count, record['name'], self._probe)
            elif readinto(self._probe):
                raise grew_while_read(record['name'], size)
        elif not fill_from_readinto(readinto, target, record['name'], self._probe):
            return None
        hashval = self._prototype.copy()
        hashval.update(target)
        view[out.pos:data_start] = header
        view[data_end:end] = _NULS[:end - data_end]
        out.pos = end
        self.read_count.value += size
        return hashval.hexdigest() if self._fixed_digest else hexdigest(hashval)

    def _learn_binary(self, fileobj: Any) -> bool:
        """Not an io.TextIOBase; its class is remembered then, so that the ABC's isinstance (a Python call) runs
        once per class, not per file."""
        if isinstance(fileobj, io.TextIOBase):
            return False
        self._binary_kinds.add(type(fileobj))
        return True

    # -- everything else ------------------------------------------------------------------------

    def _copy_readinto(self, readinto: Callable[[Any], Optional[int]], size: int, hashval: Any,
                       name: str) -> Iterator[memoryview]:
        """Read exactly ``size`` bytes straight into the output buffer, then make sure EOF follows."""
        out = self._out
        remaining = size
        # All of a file's pieces go the same way, so that they are hashed in order.
        on_thread = size >= ASYNC_HASH_MIN
        while remaining:
            if out.pos == len(out.view):
                yield out.full_chunk()
            target = out.view[out.pos:out.pos + min(remaining, len(out.view) - out.pos)]
            count = readinto(target)
            if not count:
                raise shrank_while_read(name, size - remaining, size)
            if on_thread:
                self._hasher.submit(hashval, target[:count])
            else:
                hashval.update(target[:count])
            out.pos += count
            remaining -= count
            self.read_count.value += count
        if readinto(bytearray(1)):
            raise grew_while_read(name, size)

    def _copy_read(self, read: Callable[[int], Any], size: int, hashval: Any, name: str) -> Iterator[memoryview]:
        """Copy exactly ``size`` bytes with read(), which may return str (encoded as UTF-8) or any buffer."""
        remaining = size
        while True:
            data = as_bytes(read(min(remaining, self._chunk_size) if remaining else 1))
            if not data:
                if remaining:
                    raise shrank_while_read(name, size - remaining, size)
                return
            if len(data) > remaining:
                raise grew_while_read(name, size)
            hashval.update(data)
            remaining -= len(data)
            self.read_count.value += len(data)
            yield from self._out.put(data)

    def _rewind(self, fileobj: Any) -> None:
        """Seek a file object back to where the first stream found it, so that streaming twice works."""
        known = self._fileobj_starts.get(id(fileobj))
        if known is not None:
            fileobj.seek(known[1])
            return
        seekable = getattr(fileobj, 'seekable', None)  # most objects without one: no exception raised for them
        if seekable is None:
            return
        try:
            if not seekable():
                return
            position = fileobj.tell()
        except (AttributeError, OSError, ValueError):  # no seeking: the object can be read once
            return
        # The reference to the object keeps its id from being reused.
        self._fileobj_starts[id(fileobj)] = (fileobj, position)

    def _copy_data(self, record: Dict[str, Any], hashval: Any) -> Iterator[memoryview]:
        """The member data of a large ``path`` file or of a ``fileobj``."""
        name, size = record['name'], record['size']
        fileobj = record.get('fileobj')
        if fileobj is None:
            with io.FileIO(open_for_reading(record['path'], name), 'rb', closefd=True) as raw:
                yield from self._copy_readinto(raw.readinto, size, hashval, name)
            return
        self._rewind(fileobj)
        readinto = getattr(fileobj, 'readinto', None)
        if callable(readinto) and not isinstance(fileobj, io.TextIOBase):
            try:
                yield from self._copy_readinto(checked_readinto(readinto), size, hashval, name)
                return
            except ReadintoMissing as missing:
                LOGGER.debug('%r: readinto failed at once (%r), reading it with read()', name, missing.__cause__)
        yield from self._copy_read(fileobj.read, size, hashval, name)

    # -- the stream -----------------------------------------------------------------------------

    def _ready(self, pending: Deque[_Pending], wait: bool = False, keep: Optional[Callable[[Any], None]] = None,
               make: Callable[..., Any] = FileResult) -> Iterator[FileResult]:
        """The results at the head of ``pending`` whose hashing is done (all of them with ``wait``).

        With ``keep``, ``make`` of each is handed to it instead of being yielded.
        """
        while pending and (wait or pending[0][4] <= self._hasher.finished):
            name, size, mtime, hashed, last_job = pending.popleft()
            if not isinstance(hashed, str):
                self._hasher.wait(last_job)
                hashed = hexdigest(hashed)
            if keep is None:
                yield FileResult(name, size, mtime, hashed)
            else:
                keep(make(name, size, mtime, hashed))

    def files(self, records: Sequence[Dict[str, Any]], results: Optional[list] = None,
              make_result: Optional[Callable[[str, int, Union[int, float], str], Any]] = None
              ) -> Iterator[Union[memoryview, FileResult]]:
        """The members of ``records``: output chunks, and each file's :class:`FileResult` in record order.

        Files hashed on the hasher thread get their result once it caught up;
        the results after them wait for theirs. With ``results`` (a list) and ``make_result``,
        ``make_result(name, size, mtime, hex digest)`` is appended to ``results`` instead of a
        FileResult yielded (the Bundler's FileObjs; the reason is in ``benchmarks/README.md``).
        """
        keep = None if results is None or make_result is None else results.append
        make: Callable[..., Any] = make_result or FileResult  # the fallback is never called: keep is None then
        self._read_ahead = self._start_read_ahead(records)
        hasher = self._hasher
        pending: Deque[_Pending] = collections.deque()
        for index, record in enumerate(records):
            name, size, mtime = record['name'], record['size'], record['mtime']
            header = packed_header(name, size, mtime) if len(record) == 4 else None  # no extra keys
            if header is None:
                header = member_header(name, size, mtime, None if len(record) == 4 else _extra_keys(record))
            hexsum = None
            if size <= SMALL_FILE:
                if record.get('fileobj') is not None:
                    hexsum = self._fileobj_in_place(record, header)
                else:
                    hexsum = self._small_file_in_place(index, record, header)
                    if hexsum is None:
                        hexsum = yield from self._small_file_spilled(index, record, header)
            if hexsum is not None:
                if not pending:
                    if keep is None:
                        yield _new_result((name, size, mtime, hexsum))
                    else:
                        keep(make(name, size, mtime, hexsum))
                    continue
                pending.append((name, size, mtime, hexsum, 0))
            else:
                hashval = self._prototype.copy()
                jobs_before = hasher.submitted
                yield from self._out.put(header)
                yield from self._copy_data(record, hashval)
                yield from self._out.put(_NULS[:padding_length(size)])
                pending.append((name, size, mtime, hashval, hasher.submitted if hasher.submitted > jobs_before else 0))
            if pending:
                yield from self._ready(pending, False, keep, make)
        yield from self._ready(pending, True, keep, make)

    def finish(self, name: str, pieces: Iterable[bytes], size: Optional[int] = None) -> Iterator[memoryview]:
        """The last member ``name`` holding ``pieces``, then the end of the archive and the last chunk.

        The member has tarfile's TarInfo defaults (mtime 0, mode 0o644, owner 0/0, no names).
        ``size``, when given, is the pieces' total length: then they are
        written as they come, never held together (they must add up to it).
        """
        if size is None:
            pieces = list(pieces)
            size = sum(map(len, pieces))
        out = self._out
        yield from out.put(member_header(name, size, 0))
        for piece in pieces:
            yield from out.put(piece)
        yield from out.put(_NULS[:padding_length(size)])
        yield from out.put(bytes(end_of_archive_length(out.flushed + out.pos)))
        if out.pos:
            yield out.view[:out.pos]
