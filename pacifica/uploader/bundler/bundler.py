"""Stream files and their metadata as one tar, hashing every byte as it passes.

:class:`Bundler` writes the archive the Pacifica Ingest server accepts: one
member per ``file_data`` entry, then ``metadata.txt`` with the upload's
metadata and one ``FileObj`` (name, size, times, mime type, checksum) per
file. The stream is byte compatible with pacifica-uploader 0.3.1's, which
used ``tarfile``.

How the data moves, top to bottom (:meth:`Bundler._tar_chunks`), per entry:

1. The header is packed without a TarInfo object (:mod:`.tarformat`; the PAX
   record of a float mtime comes from a cache keyed by the mtime).
2. A small ``path`` file (up to 256 KiB: nearly every file of a big data
   set) is opened, read with one ``os.read``, closed and hashed, and its bytes
   go into the reused 1 MiB output buffer right after the header. In a bundle
   of many small files, the :mod:`.readahead` process does that work instead,
   on the other core, and its bytes are read straight into the output buffer.
3. Everything else (large files, ``fileobj`` entries) is read straight into
   the output buffer (``readinto``, so every byte is copied once, by the
   read); large reads are hashed on the :class:`~.pipeline.AsyncHasher` thread
   while the next piece is read. A ``fileobj`` needs nothing but ``read()``:
   text, objects without ``readinto``, and those whose first ``readinto``
   call shows it is only an inherited stub are copied with ``read()``.
4. A full output buffer goes to the sink. The file's FileObj for
   ``metadata.txt`` is built from caches (ISO time by mtime, subdir by
   directory, mime type by extension).

At the end ``metadata.txt`` is encoded: the caller's items with
metadata_encode, the bundler's own FileObjs from a fixed JSON template.
Apart from those FileObjs (md_obj keeps them) and the metadata text, memory
is flat in the number of files; ``path`` entries are opened one at a time,
when their turn comes.

The read-ahead is a process, not a thread, on purpose. A helper thread that
read and hashed the next small files ahead was measured slower (by about
10 % on 20,000 files of 4 KiB): each of its open, read, close and hash calls
releases the GIL and must win it back from the packing thread, which holds
it for up to the switch interval, so the two threads took turns instead of
overlapping, and the handovers cost extra.
"""
from __future__ import annotations

import array
import datetime
import hashlib
import io
import json
import logging
import math
import mimetypes
import operator
import os
import stat
import tarfile
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import (ConfigurationError, FileChangedError, InvalidMetadataError,
                                         MetadataEncodeError, UnsupportedHashError, UsageError)
from pacifica._client.fileio import write_all
from pacifica._client.keywords import drop_unknown_keywords
from pacifica._client.rules import new_hash, seconds

from ..metadata import FileObj, MetaData, metadata_encode
from ._readahead_worker import OPEN_FLAGS
from .pipeline import ASYNC_HASH_MIN, AsyncHasher, BufferRing
from .readahead import (AUTO_MIN_FILES, STARTUP_FILES, ReadAhead, ReadAheadLost, can_start, changed_file_error,
                        not_regular, read_whole_file, unopenable)
from .filedata import CORE_KEYS, METADATA_MEMBER, check_file_data
from .tarformat import (BLOCK_SIZE, end_of_archive_length, fast_header_length, packed_header, padding_length,
                        tobuf_header)

__all__ = ['Bundler', 'HashFileObj', 'MIN_REPORT_INTERVAL', 'SHAKE_DIGEST_BYTES']

LOGGER = logging.getLogger(__name__)

#: SHAKE digests have no natural length; these (256 and 512 bits) match their security levels.
SHAKE_DIGEST_BYTES = {'shake_128': 32, 'shake_256': 64}
#: ``path`` files up to this size are read with one ``os.read`` instead of a file object.
_SMALL_FILE = 256 * 1024
_NULS = bytes(BLOCK_SIZE)
_EPOCH = datetime.datetime(1970, 1, 1)
_DEFAULT_MIMETYPE = 'application/octet-stream'
_ALMOST_ONE = math.nextafter(1.0, 0.0)
#: Items of metadata.txt encoded at a time.
_METADATA_SLICE = 2048
#: Bound on the per-bundler caches of ISO times and subdirectories.
_CACHE_LIMIT = 65536
#: Seconds between two progress reports at least: what a ``sleeptime`` below it (0 included) gets.
MIN_REPORT_INTERVAL = 0.05
#: Keywords Bundler() understands.
_KEYWORDS = frozenset({'hashfunc', 'config'})

ProgressCallback = Callable[[float], Any]
Chunk = Union[bytes, memoryview]


def _hexdigest(hashval: Any) -> str:
    """Hex digest of any hashlib object; SHAKE objects get the length of SHAKE_DIGEST_BYTES."""
    if getattr(hashval, 'digest_size', None) == 0:
        return hashval.hexdigest(SHAKE_DIGEST_BYTES.get(hashval.name, 32))
    return hashval.hexdigest()


def _extension_is_special(extension: str) -> bool:
    """True when guess_type rewrites or strips ``extension`` and so also reads what precedes it."""
    if not mimetypes.inited:
        mimetypes.init()
    lower = extension.lower()
    return any(key in table for key in (extension, lower)
               for table in (mimetypes.suffix_map, mimetypes.encodings_map))


class HashFileObj:
    """A readable wrapper that hashes what is read and counts it toward the bundle's progress."""

    def __init__(self, filedesc: Any, hashval: Any, upref: Any) -> None:
        """Wrap ``filedesc``; ``hashval`` is a hashlib object, ``upref`` has a ``_done_size`` counter."""
        self.filedesc = filedesc
        self.hashval = hashval
        self.upref = upref

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all when negative); text is encoded as UTF-8."""
        data = self.filedesc.read(size)
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.hashval.update(data)
        self.upref._done_size += len(data)
        return data

    def hashdigest(self) -> str:
        """Hex digest of everything read so far."""
        return _hexdigest(self.hashval)

    def close(self) -> None:
        """Close the wrapped file (for the files :meth:`Bundler._tarinfo_from_file_data` opened)."""
        self.filedesc.close()


def _encoded_pieces(items: List[Any]) -> List[bytes]:
    """``metadata_encode(MetaData(items))`` in UTF-8, encoded a slice of items at a time.

    The text is "[" + the items' JSON objects joined by ", " + "]" (default
    separators), so slices encode apart and join to the same bytes; the whole
    text and the encoder's intermediate objects for 100,000 files are never in
    memory at once (peak RSS). Errors are raised by encoding the whole list,
    so that their item positions are right.
    """
    pieces = []
    try:
        for start in range(0, max(len(items), 1), _METADATA_SLICE):
            text = metadata_encode(MetaData(items[start:start + _METADATA_SLICE]))
            if start:
                text = ', ' + text[1:]
            if start + _METADATA_SLICE < len(items):
                text = text[:-1]
            pieces.append(text.encode('utf-8'))
    except MetadataEncodeError:
        metadata_encode(MetaData(items))
        raise
    return pieces


#: The JSON text metadata_encode writes for a FileObj the bundler built: every value a str,
#: ``size`` an int and ``source`` None (left out), with json's default separators.
_FILE_OBJ_JSON = ('{"destinationTable": "Files", "name": %s, "subdir": %s, "size": %d, "hashtype": %s, '
                  '"hashsum": %s, "mimetype": %s, "ctime": %s, "mtime": %s}')


def _metadata_pieces(items: List[Any], file_infos: List[Any]) -> List[bytes]:
    """``metadata_encode(MetaData(items + file_infos))`` in UTF-8 pieces; ``file_infos`` are this bundler's.

    The caller's ``items`` go through metadata_encode. The FileObjs, one per
    file, are formatted straight from :data:`_FILE_OBJ_JSON` with json's own
    string encoder: the same text, at a third of the cost.
    """
    pieces = _encoded_pieces(items)
    if not file_infos:
        return pieces
    pieces[-1] = pieces[-1][:-1]  # reopen the list: drop its "]"
    quote = json.encoder.encode_basestring_ascii
    separator = ', ' if items else ''
    for start in range(0, len(file_infos), _METADATA_SLICE):
        texts = [_FILE_OBJ_JSON % (quote(info.name), quote(info.subdir), info.size, quote(info.hashtype),
                                   quote(info.hashsum), quote(info.mimetype), quote(info.ctime), quote(info.mtime))
                 for info in file_infos[start:start + _METADATA_SLICE]]
        pieces.append((separator + ', '.join(texts)).encode('ascii'))
        separator = ', '
    pieces.append(b']')
    return pieces


def _copying(write: Callable[[Any], Optional[int]]) -> Callable[[Any], Optional[int]]:
    """Hand ``write`` copies: a writer that is not an io object might keep the reused buffer."""
    def write_copy(piece: Any) -> Optional[int]:
        return write(bytes(piece))
    return write_copy


def _open_for_reading(path: Any, name: str) -> int:
    """A descriptor of ``path``; FileChangedError naming the member when it cannot be opened any more."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as error:
        raise unopenable(name, path, error.errno, error.strerror) from error
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise not_regular(name, path)
    return fd


def _read_small_file(path: Any, size: int, name: str) -> bytes:
    """All ``size`` bytes of a small ``path`` file; FileChangedError if it holds fewer or more now."""
    data, problem = read_whole_file(path, size)
    if problem is not None:
        raise changed_file_error(problem, path, name, size)
    return data


#: What a first readinto call raises when the object only inherited the method (io.RawIOBase's
#: stub raises NotImplementedError) or cannot serve it: such an object is read with read().
_READINTO_MISSING = (NotImplementedError, AttributeError, io.UnsupportedOperation)


class _ReadintoMissing(Exception):
    """The first readinto call of a file object failed before reading anything."""


def _checked_readinto(readinto: Callable[[Any], Optional[int]]) -> Callable[[Any], Optional[int]]:
    """``readinto`` whose first call, if it fails as in :data:`_READINTO_MISSING`, raises _ReadintoMissing.

    Nothing was read then, so the member can start over with read(); once a
    call succeeded, later errors are the object's own and pass through.
    """
    proven = False

    def call(buffer: Any) -> Optional[int]:
        nonlocal proven
        if proven:
            return readinto(buffer)
        try:
            count = readinto(buffer)
        except _READINTO_MISSING as error:
            raise _ReadintoMissing() from error
        proven = True
        return count
    return call


def _as_bytes(data: Any) -> Any:
    """What a read() returned, as something with a byte length: str encoded as UTF-8, buffers as bytes views."""
    if isinstance(data, (bytes, type(None))):
        return data
    if isinstance(data, str):
        return data.encode('utf-8')
    return memoryview(data).cast('B')


def _give_up_read_ahead(read_ahead: ReadAhead, lost: ReadAheadLost) -> None:
    """Stop a read-ahead process that failed; the bundle goes on reading in this process."""
    LOGGER.warning('The read-ahead process failed (%s); reading the remaining small files in this process', lost)
    read_ahead.close()


class _Output:
    """The output buffer being filled: ``view[:pos]`` is ready, ``flushed`` bytes went out before.

    ``hasher``, when set, takes the hashing of large reads (see :mod:`.pipeline`).
    """

    __slots__ = ('view', 'pos', 'flushed', 'acquire', 'hasher')

    def __init__(self, acquire: Callable[[], memoryview], hasher: Optional[AsyncHasher] = None) -> None:
        self.acquire = acquire
        self.hasher = hasher
        self.view = acquire()
        self.pos = 0
        self.flushed = 0

    def full_chunk(self) -> memoryview:
        """Hand out the full buffer and continue in a fresh one."""
        chunk = self.view
        self.flushed += len(chunk)
        self.view = self.acquire()
        self.pos = 0
        return chunk


def _put(out: _Output, data: Any) -> Iterator[memoryview]:
    """Copy ``data`` into the output, yielding each buffer that fills up."""
    data = memoryview(data).cast('B')
    while data:
        if out.pos == len(out.view):
            yield out.full_chunk()
        count = min(len(data), len(out.view) - out.pos)
        out.view[out.pos:out.pos + count] = data[:count]
        out.pos += count
        data = data[count:]


class Bundler:
    """Bundle ``file_data`` and the metadata ``md_obj`` into one uncompressed tar stream.

    Keywords: ``hashfunc`` (default ``'sha1'``), any name in
    :data:`hashlib.algorithms_available`; SHAKE digests are
    :data:`SHAKE_DIGEST_BYTES` long. ``config``, a
    :class:`~pacifica._client.config.TransferConfig`, sets the buffer size.
    """

    #: The upload's metadata (a MetaData or MetaUpdate). None on the class, as in 0.3.1.
    md_obj: Optional[MetaData] = None
    #: The entries to bundle, checked by __init__. None on the class, as in 0.3.1.
    file_data: Optional[Sequence[Dict[str, Any]]] = None

    def __init__(self, md_obj: Any, file_data: Any, **kwargs: Any) -> None:
        """Check everything needed to bundle now, so that stream() fails on nothing but I/O."""
        kwargs = drop_unknown_keywords('Bundler()', kwargs, _KEYWORDS)
        if not md_obj.is_valid():
            raise InvalidMetadataError(
                'the metadata is not valid yet: it needs at least one MetaObj and every MetaObj a value')
        hashstr = str(kwargs.get('hashfunc', 'sha1'))
        if hashstr not in hashlib.algorithms_available:
            raise UnsupportedHashError('{!r} is not in hashlib.algorithms_available ({})'.format(
                hashstr, ', '.join(sorted(hashlib.algorithms_available))))
        try:
            self._hash_prototype = new_hash(hashstr)
        except ValueError as error:
            raise UnsupportedHashError('{!r} is listed by hashlib but cannot be used here: {}'.format(
                hashstr, error)) from None
        config = kwargs.get('config') or TransferConfig()
        if not isinstance(config, TransferConfig):
            raise ConfigurationError('config must be a TransferConfig, not {!r}'.format(type(config).__name__))
        if not isinstance(file_data, (list, tuple, str, bytes, dict)) and hasattr(file_data, '__iter__'):
            file_data = list(file_data)  # a generator: it is read several times
        check_file_data(file_data)
        self.md_obj = md_obj
        self.file_data = file_data
        self._hashstr = hashstr
        shake_bytes = SHAKE_DIGEST_BYTES.get(hashstr)
        self._hexlen = 2 * (shake_bytes or self._hash_prototype.digest_size)
        # hashval -> hex digest; a methodcaller adds no Python frame per file.
        self._digest: Callable[[Any], str] = operator.methodcaller('hexdigest', *([shake_bytes] if shake_bytes else []))
        self._chunk_size = max(config.chunk_size, BLOCK_SIZE)
        self._read_ahead_setting = config.read_ahead
        self._done_size = 0
        self._total_size = 0
        self._complete = False
        self._notify_stop = threading.Event()
        self._appended: List[Any] = []
        self._mimetype_cache: Dict[str, str] = {}
        self._isotime_cache: Dict[int, str] = {}
        self._subdir_cache: Dict[str, str] = {}
        # id(fileobj) -> (fileobj, its position when first read); the reference keeps the id unique.
        self._fileobj_starts: Dict[int, Tuple[Any, Any]] = {}

    def _metadata(self) -> MetaData:
        """``md_obj``; a clear error when a subclass or caller left it None."""
        if self.md_obj is None:
            raise UsageError('this Bundler has no md_obj: build it as Bundler(md_obj, file_data)')
        return self.md_obj

    def _entries(self) -> Sequence[Dict[str, Any]]:
        """``file_data``; a clear error when a subclass or caller left it None."""
        if self.file_data is None:
            raise UsageError('this Bundler has no file_data: build it as Bundler(md_obj, file_data)')
        return self.file_data

    # -- progress ---------------------------------------------------------------------------

    def _save_total_size(self) -> None:
        """Sum the declared sizes: the denominator of the progress fraction."""
        self._total_size = sum(entry['size'] for entry in self._entries())

    def _fraction_done(self) -> float:
        if self._complete:
            return 1.0
        if not self._total_size:
            return 0.0
        # 1.0 is reported once, when the bundle is complete; until then (metadata.txt
        # still to come) a fully read data set reports the float just below it.
        return min(_ALMOST_ONE, self._done_size / self._total_size)

    def _setup_notify_thread(self, callback: ProgressCallback, sleeptime: float = 5) -> threading.Thread:
        """Start the thread that reports progress to ``callback`` every ``sleeptime`` seconds.

        0.3.1 took any ``sleeptime`` >= 0, and ``True``/``False`` as 1 and 0. Below :data:`MIN_REPORT_INTERVAL`
        (0 included: "as often as useful") the thread reports every
        MIN_REPORT_INTERVAL seconds instead of spinning; infinity means no
        report before the last. The thread waits on an Event, so the end of the
        stream wakes it at once; it then reports 1.0 if the bundle is complete
        (and nothing if it failed).
        """
        if isinstance(sleeptime, bool):
            sleeptime = int(sleeptime)  # 0.3.1 passed it to time.sleep(), which sleeps True as 1 s
        interval = seconds(sleeptime, name='sleeptime', zero=True, infinite=True)
        pause = None if math.isinf(interval) else max(interval, MIN_REPORT_INTERVAL)
        stop = self._notify_stop = threading.Event()

        def notify() -> None:
            try:
                while not stop.wait(pause):
                    callback(self._fraction_done())
                if self._complete:
                    callback(1.0)
            except Exception:  # a broken progress display must not end the upload
                LOGGER.exception('the bundle progress callback failed; no more progress reports')

        thread = threading.Thread(target=notify, name='pacifica-bundle-progress', daemon=True)
        thread.start()
        return thread

    # -- documented helpers -------------------------------------------------------------------

    @staticmethod
    def _strip_subdir(fname: str) -> str:
        """Drop a leading ``data`` component and empty components from an archive directory."""
        parts = fname.split('/')
        if parts[0] == 'data':
            del parts[0]
        return '/'.join(part for part in parts if part)

    def _mimetype(self, arc_path: str, base: str) -> str:
        """mimetypes.guess_type(arc_path, strict=True)[0], cached by extension where that alone decides."""
        dot = base.rfind('.')
        # guess_type looks at the extension only when the stem has a non-dot character, the name
        # has no "scheme:" part, and the extension is no compression (".gz") or alias (".tgz") suffix.
        if dot > 0 and base[0] != '.' and ':' not in arc_path:
            extension = base[dot:]
            mimetype = self._mimetype_cache.get(extension)
            if mimetype is not None:
                return mimetype
            if not _extension_is_special(extension):
                mimetype = mimetypes.guess_type('x' + extension, strict=True)[0] or _DEFAULT_MIMETYPE
                self._mimetype_cache[extension] = mimetype
                return mimetype
        return mimetypes.guess_type(arc_path, strict=True)[0] or _DEFAULT_MIMETYPE

    def _isotime(self, mtime: Any) -> str:
        """UTC ISO-8601 text of int(mtime), no zone suffix (on every platform, before 1970 too)."""
        seconds = int(mtime)
        text = self._isotime_cache.get(seconds)
        if text is None:
            text = (_EPOCH + datetime.timedelta(seconds=seconds)).isoformat()
            if len(self._isotime_cache) < _CACHE_LIMIT:
                self._isotime_cache[seconds] = text
        return text

    def _subdir(self, directory: str) -> str:
        subdir = self._subdir_cache.get(directory)
        if subdir is None:
            subdir = self._strip_subdir(directory)
            if len(self._subdir_cache) < _CACHE_LIMIT:
                self._subdir_cache[directory] = subdir
        return subdir

    def _build_file_info(self, file_data: dict, hashsum: str) -> Any:
        """The FileObj that describes one bundled file in metadata.txt (once per file: kept flat)."""
        arc_path = file_data['name']
        slash = arc_path.rfind('/')
        base = arc_path[slash + 1:]
        mtime = file_data['mtime']
        file_time = self._isotime_cache.get(mtime) or self._isotime(mtime)
        directory = arc_path[:slash] if slash > 0 else ''
        subdir = self._subdir_cache.get(directory)
        if subdir is None:
            subdir = self._subdir(directory)
        # Positional, in FILE_KEYS order: destinationTable, name, source, subdir, size,
        # hashtype, hashsum, mimetype, ctime, mtime (twice as fast as keywords).
        return FileObj('Files', base, None, subdir, file_data['size'], self._hashstr, hashsum,
                       self._mimetype(arc_path, base), file_time, file_time)

    @staticmethod
    def _tarinfo(file_data: dict) -> tarfile.TarInfo:
        info = tarfile.TarInfo(file_data['name'])
        for key, value in file_data.items():
            if key not in CORE_KEYS:
                setattr(info, key, value)
        info.size = file_data['size']
        info.mtime = file_data['mtime']
        return info

    def _tarinfo_from_file_data(self, file_data: dict) -> Tuple[tarfile.TarInfo, HashFileObj]:
        """The member's TarInfo and a hashing reader of its data; ``file_data`` is left as it was.

        For a ``path`` entry this opens the file: close the reader when done.
        """
        fileobj = file_data.get('fileobj')
        if fileobj is None:
            fileobj = open(file_data['path'], 'rb')
        return self._tarinfo(file_data), HashFileObj(fileobj, self._hash_prototype.copy(), self)

    # -- the stream ---------------------------------------------------------------------------

    def _member_header_length(self, file_data: dict) -> int:
        return (fast_header_length(file_data['name'], file_data['size'], file_data['mtime'], len(file_data) == 4)
                or len(tobuf_header(self._tarinfo(file_data))))

    def _previous_files(self) -> int:
        """How many FileObjs at the end of md_obj this bundler appended in an earlier stream()."""
        count = len(self._appended)
        md_obj = self._metadata()
        if not count or len(md_obj) < count:
            return 0
        tail = list(md_obj)[-count:]
        return count if all(tail[index] is mine for index, mine in enumerate(self._appended)) else 0

    def _metadata_text(self, file_infos: List[Any]) -> List[bytes]:
        """metadata.txt for a stream, in pieces: md_obj without an earlier stream's FileObjs, plus ``file_infos``."""
        items = list(self._metadata())
        previous = self._previous_files()
        if previous:
            del items[-previous:]
        return _metadata_pieces(items, file_infos)

    def _record_files(self, file_infos: List[Any]) -> None:
        """Append this stream's FileObjs to md_obj, replacing those of an earlier stream()."""
        md_obj = self._metadata()
        previous = self._previous_files()
        if previous:
            del md_obj[len(md_obj) - previous:]
        md_obj.extend(file_infos)
        self._appended = list(file_infos)

    def content_length(self) -> int:
        """Exact number of bytes stream() writes, from names, sizes and mtimes alone (no file is read)."""
        total = 0
        infos = []
        placeholder = '0' * self._hexlen
        for file_data in self._entries():
            size = file_data['size']
            total += self._member_header_length(file_data) + size + padding_length(size)
            infos.append(self._build_file_info(file_data, placeholder))
        metadata_size = sum(map(len, self._metadata_text(infos)))
        total += len(self._metadata_header(metadata_size)) + metadata_size + padding_length(metadata_size)
        return total + end_of_archive_length(total)

    @staticmethod
    def _metadata_header(size: int) -> bytes:
        """metadata.txt's header: tarfile's TarInfo defaults (mtime 0, mode 0o644, owner 0/0, no names)."""
        return packed_header(METADATA_MEMBER, size, 0, True) or tobuf_header(
            Bundler._tarinfo({'name': METADATA_MEMBER, 'size': size, 'mtime': 0}))

    def _copy_readinto(self, out: _Output, readinto: Callable[[Any], Optional[int]], size: int,
                       hashval: Any, name: str) -> Iterator[memoryview]:
        """Read exactly ``size`` bytes straight into the output buffer, then make sure EOF follows."""
        remaining = size
        # All of a file's pieces go the same way, so that they are hashed in order.
        hasher = out.hasher if size >= ASYNC_HASH_MIN else None
        while remaining:
            if out.pos == len(out.view):
                yield out.full_chunk()
            end = out.pos + min(remaining, len(out.view) - out.pos)
            target = out.view[out.pos:end]
            count = readinto(target)
            if not count:
                raise FileChangedError('{!r} ended after {} of its {} bytes: it shrank while it was bundled'.format(
                    name, size - remaining, size))
            if hasher is not None:
                hasher.submit(hashval, target[:count])
            else:
                hashval.update(target if count == len(target) else target[:count])
            out.pos += count
            remaining -= count
            self._done_size += count
        if readinto(bytearray(1)):
            raise FileChangedError('{!r} holds more than its {} bytes: it grew while it was bundled'.format(
                name, size))

    def _copy_read(self, out: _Output, read: Callable[[int], Any], size: int, hashval: Any,
                   name: str) -> Iterator[memoryview]:
        """Copy exactly ``size`` bytes with read(), which may return str (encoded as UTF-8) or any buffer."""
        remaining = size
        while True:
            data = _as_bytes(read(min(remaining, self._chunk_size) if remaining else 1))
            if not data:
                if remaining:
                    raise FileChangedError('{!r} ended after {} of its {} bytes: it shrank while it was '
                                           'bundled'.format(name, size - remaining, size))
                return
            if len(data) > remaining:
                raise FileChangedError('{!r} holds more than its {} bytes: it grew while it was bundled'.format(
                    name, size))
            hashval.update(data)
            remaining -= len(data)
            self._done_size += len(data)
            yield from _put(out, data)

    def _copy_member_data(self, out: _Output, file_data: dict, hashval: Any) -> Iterator[memoryview]:
        name, size = file_data['name'], file_data['size']
        fileobj = file_data.get('fileobj')
        if fileobj is None:
            fd = _open_for_reading(file_data['path'], name)
            with io.FileIO(fd, 'rb', closefd=True) as raw:
                yield from self._copy_readinto(out, raw.readinto, size, hashval, name)
            return
        self._rewind(fileobj)
        readinto = getattr(fileobj, 'readinto', None)
        if callable(readinto) and not isinstance(fileobj, io.TextIOBase):
            try:
                yield from self._copy_readinto(out, _checked_readinto(readinto), size, hashval, name)
                return
            except _ReadintoMissing as missing:
                LOGGER.debug('%r: readinto failed at once (%r), reading it with read()', name, missing.__cause__)
        yield from self._copy_read(out, fileobj.read, size, hashval, name)

    def _rewind(self, fileobj: Any) -> None:
        """Seek a file object back to where the first stream() found it, so that streaming twice works."""
        known = self._fileobj_starts.get(id(fileobj))
        if known is not None:
            fileobj.seek(known[1])
            return
        try:
            if not fileobj.seekable():
                return
            position = fileobj.tell()
        except (AttributeError, OSError, ValueError):  # no seeking: the object can be read once
            return
        self._fileobj_starts[id(fileobj)] = (fileobj, position)

    def _start_read_ahead(self) -> Optional[ReadAhead]:
        """The read-ahead process for this stream's small files, if the config and the platform allow one."""
        setting = self._read_ahead_setting
        if setting is False:
            return None
        entries = self._entries()
        small = array.array('Q', (position for position, entry in enumerate(entries)
                                  if entry['size'] <= _SMALL_FILE and entry.get('fileobj') is None))
        if setting is None:
            if len(small) < AUTO_MIN_FILES:
                return None
            del small[:STARTUP_FILES]  # read here while the worker starts
        if not small or not can_start():
            return None
        try:
            return ReadAhead(self._hashstr, self._hexlen // 2, entries, small)
        except ReadAheadLost as error:
            LOGGER.info('Reading the small files in this process: %s', error)
            return None

    def _tar_chunks(self, acquire: Callable[[], memoryview], hasher: Optional[AsyncHasher] = None,
                    read_ahead: Optional[ReadAhead] = None) -> Iterator[memoryview]:
        """The tar stream as full buffers from ``acquire``, then the partly filled last one.

        The loop is flat on purpose: with 100,000 small files every call per file counts.
        Files whose hashing went to ``hasher`` get their FileObj once it caught up; small
        files come from ``read_ahead`` until it is lost, then from this process.
        """
        out = _Output(acquire, hasher)
        infos: List[Any] = []
        # (position in infos, file_data, hash object, its last job) of files still being hashed
        hashing: List[Tuple[int, dict, Any, int]] = []
        fresh_hash = self._hash_prototype.copy
        digest = self._digest
        build_file_info = self._build_file_info
        read_small_file = _read_small_file
        for index, file_data in enumerate(self._entries()):
            name, size, mtime = file_data['name'], file_data['size'], file_data['mtime']
            header = packed_header(name, size, mtime, len(file_data) == 4) or tobuf_header(self._tarinfo(file_data))
            pad = -size % BLOCK_SIZE
            if size <= _SMALL_FILE and file_data.get('fileobj') is None:
                pos = out.pos
                data_start = pos + len(header)
                data_end = data_start + size
                view = out.view
                fits = data_end + pad <= len(view)
                data: Any = None
                placed = False  # the data is in the output buffer already
                if read_ahead is not None and read_ahead.serves(index):
                    # The worker's bytes go straight behind the header when they fit.
                    target = view[data_start:data_end] if fits else memoryview(bytearray(size))
                    try:
                        hexsum = read_ahead.take(name, target).hex()
                    except ReadAheadLost as lost:
                        _give_up_read_ahead(read_ahead, lost)
                        read_ahead = None
                    else:
                        data, placed = target, fits
                if data is None:
                    data = read_small_file(file_data['path'], size, name)
                    hashval = fresh_hash()
                    hashval.update(data)
                    hexsum = digest(hashval)
                self._done_size += size
                if fits:
                    view[pos:data_start] = header
                    if not placed:
                        view[data_start:data_end] = data
                    view[data_end:data_end + pad] = _NULS[:pad]
                    out.pos = data_end + pad
                else:
                    yield from _put(out, header)
                    yield from _put(out, data)
                    yield from _put(out, _NULS[:pad])
            else:
                hashval = fresh_hash()
                jobs_before = hasher.submitted if hasher is not None else 0
                yield from _put(out, header)
                yield from self._copy_member_data(out, file_data, hashval)
                yield from _put(out, _NULS[:pad])
                if hasher is not None and hasher.submitted > jobs_before:
                    hashing.append((len(infos), file_data, hashval, hasher.submitted))
                    infos.append(None)
                    continue
                hexsum = digest(hashval)
            infos.append(build_file_info(file_data, hexsum))
            while hashing and hasher is not None and hashing[0][3] <= hasher.finished:
                position, hashed_data, hashed, _ = hashing.pop(0)
                infos[position] = build_file_info(hashed_data, digest(hashed))
        for position, hashed_data, hashed, last_job in hashing:
            if hasher is not None:  # always: only files handed to the hasher are in hashing
                hasher.wait(last_job)
            infos[position] = build_file_info(hashed_data, digest(hashed))
        metadata = self._finish_metadata(infos)
        metadata_size = sum(map(len, metadata))
        yield from _put(out, self._metadata_header(metadata_size))
        for piece in metadata:
            yield from _put(out, piece)
        yield from _put(out, _NULS[:padding_length(metadata_size)])
        yield from _put(out, bytes(end_of_archive_length(out.flushed + out.pos)))
        if out.pos:
            yield out.view[:out.pos]

    def _finish_metadata(self, file_infos: List[Any]) -> List[bytes]:
        """Append the FileObjs to md_obj (replacing an earlier stream's) and encode it; undone on failure."""
        self._record_files(file_infos)
        md_obj = self._metadata()
        try:
            return _metadata_pieces(list(md_obj)[:len(md_obj) - len(file_infos)], file_infos)
        except BaseException:
            del md_obj[len(md_obj) - len(file_infos):]
            self._appended = []
            raise

    def iter_bytes(self, callback: Optional[ProgressCallback] = None, sleeptime: float = 5) -> Iterator[Chunk]:
        """The bytes stream() writes, as chunks (memoryviews valid until the next one is requested).

        ``callback`` gets the fraction done every ``sleeptime`` seconds (0: as
        often as useful, every :data:`MIN_REPORT_INTERVAL`; infinity: never
        before the end) from a background thread, and exactly 1.0 once the last
        chunk was taken.
        """
        notify_thread = None
        if callable(callback):
            self._save_total_size()
        self._done_size = 0
        self._complete = False
        if callable(callback):
            notify_thread = self._setup_notify_thread(callback, sleeptime)
        hasher = AsyncHasher()
        read_ahead = None
        try:
            read_ahead = self._start_read_ahead()
            yield from self._tar_chunks(BufferRing(self._chunk_size, hasher).acquire, hasher, read_ahead)
            self._complete = True
        finally:
            if read_ahead is not None:
                read_ahead.close()
            hasher.close()
            self._notify_stop.set()
            if notify_thread is not None:
                notify_thread.join()

    def stream(self, fileobj: Any, callback: Optional[ProgressCallback] = None, sleeptime: float = 5) -> None:
        """Write the tar to ``fileobj`` (only ``write`` is used: pipes and sockets work).

        ``callback``, when callable, gets the fraction done (0..1) every
        ``sleeptime`` seconds from a background thread and 1.0 at the end
        (``sleeptime`` as in :meth:`iter_bytes`).
        """
        write = fileobj.write
        # io objects copy or send what they are given; anything else might keep the reused buffer.
        if not isinstance(fileobj, io.IOBase):
            write = _copying(write)
        for chunk in self.iter_bytes(callback, sleeptime):
            write_all(write, chunk)
