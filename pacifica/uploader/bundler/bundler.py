"""The 0.3.1 ``Bundler``: the upload's metadata and progress on top of the :class:`~.tarwriter.TarWriter` core.

:class:`Bundler` writes the archive the Pacifica Ingest server accepts: one
member per ``file_data`` entry (written by :class:`~.tarwriter.TarWriter`),
then ``metadata.txt`` with the upload's metadata and one ``FileObj`` (name,
size, times, mime type, checksum) per file. The stream is byte compatible
with pacifica-uploader 0.3.1's, which used ``tarfile``.

What this layer adds to the core, all of it 0.3.1's interface:

- ``md_obj`` bookkeeping: the FileObjs are appended to ``md_obj`` at the end
  of a stream (replacing those of an earlier stream, undone when encoding
  fails), and metadata.txt is their text (:mod:`.metadatatext`); with
  ``append_file_objs=False`` (not 0.3.1's) the bundler keeps only each
  file's digest and leaves ``md_obj`` alone (:mod:`.filerecords`);
- the progress thread that calls back with the fraction done;
- :class:`HashFileObj` and the documented helper methods that tests and
  subclasses of 0.3.1 call.

The read-ahead process (``config.read_ahead``) is explained in :mod:`.readahead`.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import logging
import math
import mimetypes
import tarfile
import threading
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union, cast

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import ConfigurationError, InvalidMetadataError, UnsupportedHashError, UsageError
from pacifica._client.fileio import write_all
from pacifica._client.keywords import drop_unknown_keywords
from pacifica._client.rules import new_hash, seconds

from ..metadata import MetaData
from .filedata import CORE_KEYS, METADATA_MEMBER, check_file_data
from .fileinfo import new_file_obj
from .filerecords import DigestList, exactly, file_infos, file_objs_chars, records_chars
from .metadatatext import counted_metadata_text, metadata_length
from .tarformat import new_tarinfo
from .pipeline import SHAKE_DIGEST_BYTES, ByteCount, hexdigest
from .tarwriter import FileResult, TarWriter, archive_length

__all__ = ['Bundler', 'HashFileObj', 'MIN_REPORT_INTERVAL', 'SHAKE_DIGEST_BYTES']

LOGGER = logging.getLogger(__name__)

_EPOCH = datetime.datetime(1970, 1, 1)
_DEFAULT_MIMETYPE = 'application/octet-stream'
_ALMOST_ONE = math.nextafter(1.0, 0.0)
#: Bound on the per-bundler caches of ISO times, subdirectories and mime types.
_CACHE_LIMIT = 65536
#: Seconds between two progress reports at least: what a ``sleeptime`` below it (0 included) gets.
MIN_REPORT_INTERVAL = 0.05
#: Keywords Bundler() understands.
_KEYWORDS = frozenset({'hashfunc', 'config', 'append_file_objs'})

ProgressCallback = Callable[[float], Any]
Chunk = Union[bytes, memoryview]


def _extension_is_special(extension: str) -> bool:
    """True when guess_type rewrites or strips ``extension`` and so also reads what precedes it."""
    if not mimetypes.inited:
        mimetypes.init()
    lower = extension.lower()
    return any(key in table for key in (extension, lower)
               for table in (mimetypes.suffix_map, mimetypes.encodings_map))


def _bounded_put(cache: Dict[Any, str], key: Any, value: str) -> str:
    """Remember ``value`` under ``key`` while the cache has room; returns ``value``."""
    if len(cache) < _CACHE_LIMIT:
        cache[key] = value
    return value


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
        return hexdigest(self.hashval)

    def close(self) -> None:
        """Close the wrapped file (for the files :meth:`Bundler._tarinfo_from_file_data` opened)."""
        self.filedesc.close()


def _copying(write: Callable[[Any], Optional[int]]) -> Callable[[Any], Optional[int]]:
    """Hand ``write`` copies: a writer that is not an io object might keep the reused buffer."""
    def write_copy(piece: Any) -> Optional[int]:
        return write(bytes(piece))
    return write_copy


class Bundler:
    """Bundle ``file_data`` and the metadata ``md_obj`` into one uncompressed tar stream.

    Keywords: ``hashfunc`` (default ``'sha1'``), any name in
    :data:`hashlib.algorithms_available`; SHAKE digests are
    :data:`SHAKE_DIGEST_BYTES` long. ``config``, a
    :class:`~pacifica._client.config.TransferConfig`, sets the buffer size.
    ``append_file_objs`` (default True, 0.3.1's contract): False leaves
    ``md_obj`` as it is, keeps only each file's digest until metadata.txt is
    written (the same bytes), and builds the FileObjs when
    :meth:`file_objs` is asked.
    """

    #: The upload's metadata (a MetaData or MetaUpdate). None on the class, as in 0.3.1.
    md_obj: Optional[MetaData] = None
    #: The entries to bundle, checked by __init__. None on the class, as in 0.3.1.
    file_data: Optional[Sequence[Dict[str, Any]]] = None
    #: Bytes of file data read in the current (or last) stream; the core counts into it.
    _read_count: Optional[ByteCount] = None

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
        self._hexlen = 2 * (SHAKE_DIGEST_BYTES.get(hashstr) or self._hash_prototype.digest_size)
        self._append_file_objs = bool(kwargs.get('append_file_objs', True))
        self._digests: Optional[DigestList] = None
        self._config = config
        self._read_count = ByteCount()
        self._total_size = 0
        self._complete = False
        self._notify_stop = threading.Event()
        self._appended: List[Any] = []
        self._mimetype_cache: Dict[str, str] = {}
        self._isotime_cache: Dict[int, str] = {}
        self._subdir_cache: Dict[str, str] = {}
        # id(fileobj) -> (fileobj, its position when the first stream read it): see TarWriter.
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

    @property
    def _done_size(self) -> int:
        """Bytes of file data read so far: 0.3.1's progress numerator, live during a stream."""
        return 0 if self._read_count is None else self._read_count.value

    @_done_size.setter
    def _done_size(self, value: int) -> None:
        if self._read_count is None:
            self._read_count = ByteCount()
        self._read_count.value = value

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
                return _bounded_put(self._mimetype_cache, extension,
                                    mimetypes.guess_type('x' + extension, strict=True)[0] or _DEFAULT_MIMETYPE)
        return mimetypes.guess_type(arc_path, strict=True)[0] or _DEFAULT_MIMETYPE

    def _isotime(self, mtime: Any) -> str:
        """UTC ISO-8601 text of int(mtime), no zone suffix (on every platform, before 1970 too)."""
        whole = int(mtime)
        text = self._isotime_cache.get(whole)
        if text is None:
            text = _bounded_put(self._isotime_cache, whole, (_EPOCH + datetime.timedelta(seconds=whole)).isoformat())
        return text

    def _subdir(self, directory: str) -> str:
        """:meth:`_strip_subdir` of ``directory``, cached: the files of one folder share it."""
        subdir = self._subdir_cache.get(directory)
        if subdir is None:
            subdir = _bounded_put(self._subdir_cache, directory, self._strip_subdir(directory))
        return subdir

    def _build_file_info(self, file_data: dict, hashsum: str) -> Any:
        """The FileObj that describes one bundled file in metadata.txt."""
        return self._file_info(file_data['name'], file_data['size'], file_data['mtime'], hashsum)

    def _file_info(self, arc_path: str, size: int, mtime: Any, hashsum: str) -> Any:
        """The FileObj of one file; the caches are asked inline, their methods only on a miss (it runs per file)."""
        directory, _, base = arc_path.rpartition('/')  # ('', '', name) without a slash
        file_time = self._isotime_cache.get(int(mtime)) or self._isotime(mtime)
        subdir = self._subdir_cache.get(directory)
        if subdir is None:
            subdir = self._subdir(directory)
        dot = base.rfind('.')  # the extension cache holds only extensions that decide alone: see _mimetype
        mimetype = self._mimetype_cache.get(base[dot:]) if dot > 0 and base[0] != '.' and ':' not in arc_path else None
        if mimetype is None:
            mimetype = self._mimetype(arc_path, base)
        # In FILE_KEYS order: destinationTable, name, source, subdir, size,
        # hashtype, hashsum, mimetype, ctime, mtime.
        return new_file_obj(('Files', base, None, subdir, size, self._hashstr, hashsum, mimetype, file_time, file_time))

    def _tarinfo_from_file_data(self, file_data: dict) -> Tuple[tarfile.TarInfo, HashFileObj]:
        """The member's TarInfo and a hashing reader of its data; ``file_data`` is left as it was.

        For a ``path`` entry this opens the file: close the reader when done.
        """
        fileobj = file_data.get('fileobj')
        if fileobj is None:
            fileobj = open(file_data['path'], 'rb')
        info = new_tarinfo(file_data['name'], file_data['size'], file_data['mtime'],
                           {key: value for key, value in file_data.items() if key not in CORE_KEYS})
        return info, HashFileObj(fileobj, self._hash_prototype.copy(), self)

    # -- md_obj bookkeeping -------------------------------------------------------------------

    def _previous_files(self) -> int:
        """How many FileObjs at the end of md_obj this bundler appended in an earlier stream()."""
        count = len(self._appended)
        md_obj = self._metadata()
        if not count or len(md_obj) < count:
            return 0
        tail = list(md_obj)[-count:]
        return count if all(tail[index] is mine for index, mine in enumerate(self._appended)) else 0

    def _caller_items(self) -> List[Any]:
        """md_obj without the FileObjs an earlier stream() appended."""
        items = list(self._metadata())
        previous = self._previous_files()
        if previous:
            del items[-previous:]
        return items

    def _finish_metadata(self, file_infos: List[Any]) -> Tuple[int, Iterable[bytes]]:
        """Append the FileObjs to md_obj (replacing an earlier stream's) and encode it; undone on failure.

        Returns metadata.txt's length, counted from the file records' fields, and its pieces, formatted a
        slice at a time as they are written (:func:`.metadatatext.counted_metadata_text`).
        ``file_infos`` becomes this bundler's record of what it appended.
        """
        items = self._caller_items()
        md_obj = self._metadata()
        del md_obj[len(items):]
        md_obj.extend(file_infos)
        self._appended = file_infos
        try:
            plains: List[Tuple[bool, ...]] = []  # each slice's json_plain flags, found once for both passes
            chars = file_objs_chars(file_infos, plains)
            return counted_metadata_text(items, file_infos, len(file_infos), chars, plains)
        except BaseException:
            del md_obj[len(md_obj) - len(file_infos):]
            self._appended = []
            raise

    def _records_chars(self) -> int:
        """The characters of the file records' fields in metadata.txt, counted without building them."""
        return records_chars(self._entries(), self._hashstr, self._hexlen, self._subdir, self._mimetype,
                             self._isotime)

    def content_length(self) -> int:
        """Exact number of bytes stream() writes, from names, sizes and mtimes alone (no file is read)."""
        entries = self._entries()
        metadata_size = metadata_length(self._caller_items(), len(entries), self._records_chars())
        return archive_length(entries, METADATA_MEMBER, metadata_size)

    def file_objs(self) -> Iterator[Any]:
        """The FileObjs of the last stream's files, in ``file_data`` order: the records of its metadata.txt.

        By default those appended to ``md_obj`` (none before a stream). With
        ``append_file_objs=False``, built now one at a time from ``file_data``
        and the digests kept; UsageError before a stream has read every file.
        """
        if self._append_file_objs:
            return iter(self._appended)
        if self._digests is None:
            raise UsageError('no stream of this Bundler has read its files yet: file_objs() needs their digests')
        return file_infos(self._file_info, self._entries(), self._digests)

    # -- the stream ---------------------------------------------------------------------------

    def _chunks(self, writer: TarWriter) -> Iterator[memoryview]:
        """The tar stream: the core's members, keeping the progress count and the FileObjs, then metadata.txt."""
        if not self._append_file_objs:
            yield from self._digest_chunks(writer)
            return
        infos: List[Any] = []
        # With a list and a maker, files() appends each file's FileObj to it and yields only chunks.
        yield from cast(Iterator[memoryview], writer.files(self._entries(), infos, self._file_info))
        size, pieces = self._finish_metadata(infos)
        yield from writer.finish(METADATA_MEMBER, exactly(pieces, size, METADATA_MEMBER), size)

    def _digest_chunks(self, writer: TarWriter) -> Iterator[memoryview]:
        """The same stream keeping only the digests: metadata.txt's records are built from them a slice at a time."""
        entries = self._entries()
        self._digests = None
        digests = DigestList(len(entries), self._hexlen // 2)
        for item in writer.files(entries):
            if isinstance(item, FileResult):
                digests.append(item.digest)
            else:
                yield item
        self._digests = digests
        size, pieces = counted_metadata_text(self._caller_items(), file_infos(self._file_info, entries, digests),
                                             len(entries), self._records_chars())
        yield from writer.finish(METADATA_MEMBER, exactly(pieces, size, METADATA_MEMBER), size)

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
        self._read_count = ByteCount()  # a new object: a report never sees another stream's count
        self._complete = False
        if callable(callback):
            notify_thread = self._setup_notify_thread(callback, sleeptime)
        try:
            with TarWriter(self._hashstr, chunk_size=self._config.chunk_size, read_ahead=self._config.read_ahead,
                           fileobj_starts=self._fileobj_starts, read_count=self._read_count) as writer:
                yield from self._chunks(writer)
            self._complete = True
        finally:
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
