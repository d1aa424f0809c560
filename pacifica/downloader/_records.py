"""Validated file entries from transaction infos and cloud events.

Both record kinds describe the same thing (which file, where it goes, how to
check it) in different shapes. They are reduced here to :class:`FileEntry`,
checked field by field, so that a bad record fails before any cart exists and
the error names the field and the file.
"""
from __future__ import annotations

import datetime
import math
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from pacifica._client.exceptions import RecordError
from pacifica._client.rules import is_plain_name, is_whole_number, new_hash, relative_parts

#: The dict shape cartd expects for each file of a cart request.
CartFile = Dict[str, Any]


class FileEntry(NamedTuple):
    """One file to download: the cart request fields plus what verification needs.

    A download may list 100,000 files, so an entry holds no text of its own:
    ``subdir``, ``name``, ``hashtype``, ``hashsum`` and ``mtime`` are the
    record's own objects, and ``parts`` shares its directory components (and
    the tuple of them) with every other file of the same directory.
    """

    id: Any
    subdir: str
    name: str
    hashtype: str
    hashsum: str
    size: Optional[int]
    parts: Tuple[str, ...]
    #: The record's ``mtime`` as it came (None when absent); read with :func:`modification_time`.
    mtime: Any = None

    @property
    def path(self) -> str:
        """``<subdir>/<name>``: the path cartd knows the file by."""
        return '{}/{}'.format(self.subdir, self.name)

    def cart_file(self) -> CartFile:
        """The ``{'id', 'path', 'hashtype', 'hashsum'}`` dict sent to cartd."""
        return {'id': self.id, 'path': self.path, 'hashtype': self.hashtype, 'hashsum': self.hashsum}


def path_parts(path: str, what: str) -> Tuple[str, ...]:
    """Split a ``/``-separated relative path into safe components (:func:`~pacifica._client.rules.relative_parts`).

    Empty and ``.`` components vanish, as they do when cartd stores the file;
    an unsafe component (``..``, NUL, on Windows a drive or a backslash)
    raises RecordError, since such a path could only point outside the download.
    """
    try:
        parts = relative_parts(path)
    except ValueError as err:
        raise RecordError('{}: {}'.format(what, err)) from None
    if not parts:
        raise RecordError('{}: path {!r} names no file'.format(what, path))
    return parts


_REQUIRED = object()


def _field(obj: Mapping[str, Any], key: str, what: str, check: Callable[[Any], bool], expected: str,
           default: Any = _REQUIRED) -> Any:
    """``obj[key]`` checked with ``check``; a missing key is ``default``, or RecordError when required."""
    if key not in obj:
        if default is not _REQUIRED:
            return default
        raise RecordError('{}: field {!r} is missing'.format(what, key))
    value = obj[key]
    if not check(value):
        raise RecordError('{}: field {!r} must be {}, not {!r}'.format(what, key, expected, value))
    return value


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value != ''


class _PartsCache:
    """Path components shared between the entries of one record (see :class:`FileEntry`), and its hash names.

    A record of many files repeats a few directories and one hash name: each
    is checked once.
    """

    def __init__(self) -> None:
        self._dirs: Dict[str, Tuple[str, ...]] = {}
        #: Hash names this Python computes, already tried.
        self.hashtypes: Set[str] = set()

    def parts(self, subdir: str, name: str, what: str) -> Tuple[str, ...]:
        """``path_parts('<subdir>/<name>', what)``, built from shared pieces when ``name`` is a plain name."""
        if not is_plain_name(name):
            return path_parts('{}/{}'.format(subdir, name), what)
        dir_parts = self._dirs.get(subdir)
        if dir_parts is None:
            dir_parts = self._dirs[subdir] = path_parts('{}/{}'.format(subdir, name), what)[:-1]
        return dir_parts + (name,)


def file_entry(file_id: Any, obj: Any, what: str, cache: Optional[_PartsCache] = None) -> FileEntry:
    """Check one file object (transaction info value or cloud event item) and return its entry."""
    if type(obj) is not dict and not isinstance(obj, Mapping):  # the ABC's check is slow: JSON gives dicts
        raise RecordError('{}: must be an object, not {}'.format(what, type(obj).__name__))
    if not (is_whole_number(file_id) or _nonempty_str(file_id)):
        raise RecordError('{}: the file id must be an integer or a string, not {!r}'.format(what, file_id))
    name = _field(obj, 'name', what, _nonempty_str, 'a non-empty string')
    # Records of files at the top of a transaction may have no subdir; the old downloader took it as ''.
    subdir = _field(obj, 'subdir', what, lambda value: isinstance(value, str), 'a string', default='')
    hashtype = _field(obj, 'hashtype', what, _nonempty_str, 'a non-empty string')
    hashsum = _field(obj, 'hashsum', what, _nonempty_str, 'a non-empty string')
    cache = cache or _PartsCache()
    if hashtype not in cache.hashtypes:
        try:
            new_hash(hashtype)
        except (ValueError, TypeError):
            raise RecordError('{}: field {!r} names a hash this Python lacks: {!r}'.format(
                what, 'hashtype', hashtype)) from None
        cache.hashtypes.add(hashtype)
    size = obj.get('size')
    if size is not None and not (is_whole_number(size) and size >= 0):
        raise RecordError('{}: field {!r} must be a whole number of bytes, not {!r}'.format(what, 'size', size))
    parts = cache.parts(subdir, name, what)
    return FileEntry(file_id, subdir, name, hashtype, hashsum, size, parts, obj.get('mtime'))


def modification_time(recorded: Any) -> Optional[float]:
    """Seconds since the epoch of a record's ``mtime``, or None when it gives none that can be used.

    Metadata keeps the ``mtime`` the uploader sent in ``metadata.txt``: ISO
    8601 text in UTC without a zone (``'2024-05-06T07:08:09'``), which is
    read as UTC; a zone suffix (``Z``, ``+02:00``) is honoured, and a number
    is taken as seconds since the epoch. Anything else, which the old
    downloaders never looked at, is ignored rather than refused.
    """
    if isinstance(recorded, (int, float)) and not isinstance(recorded, bool):
        seconds = float(recorded)
        return seconds if math.isfinite(seconds) else None
    if not isinstance(recorded, str):
        return None
    text = recorded.strip()
    if text[-1:] in ('Z', 'z'):
        text = text[:-1] + '+00:00'
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return (moment - _EPOCH).total_seconds()


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def transaction_entries(transinfo: Any) -> List[FileEntry]:
    """Entries of a Policy transaction info: ``transinfo['files']`` keyed by file id."""
    if not isinstance(transinfo, Mapping):
        raise RecordError('transaction info must be an object, not {}'.format(type(transinfo).__name__))
    if 'files' not in transinfo:
        raise RecordError('transaction info has no {!r} field (keys: {})'.format(
            'files', ', '.join(sorted(map(str, transinfo))) or 'none'))
    files = transinfo['files']
    if not isinstance(files, Mapping):
        raise RecordError("transaction info field 'files' must be an object keyed by file id, not {}".format(
            type(files).__name__))
    cache = _PartsCache()
    return [file_entry(file_id, obj, 'transaction info file {!r}'.format(file_id), cache)
            for file_id, obj in files.items()]


def cloudevent_entries(event: Any) -> List[FileEntry]:
    """Entries of a cloud event: the ``data`` items whose ``destinationTable`` is ``Files``."""
    if not isinstance(event, Mapping):
        raise RecordError('cloud event must be an object, not {}'.format(type(event).__name__))
    if 'data' not in event:
        raise RecordError("cloud event has no 'data' field")
    data = event['data']
    if not isinstance(data, list):
        raise RecordError("cloud event field 'data' must be a list, not {}".format(type(data).__name__))
    entries = []
    cache = _PartsCache()
    for index, obj in enumerate(data):
        if not isinstance(obj, Mapping):
            raise RecordError('cloud event data[{}] must be an object, not {}'.format(index, type(obj).__name__))
        if obj.get('destinationTable') != 'Files':
            continue
        what = 'cloud event data[{}] (file {!r})'.format(index, obj.get('_id', obj.get('name')))
        entries.append(file_entry(_field(obj, '_id', what, lambda value: True, ''), obj, what, cache))
    return entries


def unique_entries(entries: Sequence[FileEntry]) -> List[FileEntry]:
    """Drop exact repeats; refuse two different files for one path, or a file where a directory must be."""
    by_parts: Dict[Tuple[str, ...], FileEntry] = {}
    for entry in entries:
        other = by_parts.get(entry.parts)
        if other is None:
            by_parts[entry.parts] = entry
        elif other != entry:
            raise RecordError('files {!r} and {!r} both go to {!r}'.format(other.id, entry.id, '/'.join(entry.parts)))
    for parts, entry in by_parts.items():
        for depth in range(1, len(parts)):
            if parts[:depth] in by_parts:
                raise RecordError('file {!r} ({!r}) sits below file {!r}, which cannot also be a directory'.format(
                    entry.id, '/'.join(parts), by_parts[parts[:depth]].id))
    return list(by_parts.values())


def yield_cart_files(entries: List[FileEntry]) -> Callable[[], Iterator[CartFile]]:
    """The callable :meth:`CartAPI.setup_cart` takes, producing one cart dict per entry."""
    def cart_files() -> Iterator[CartFile]:
        for entry in entries:
            yield entry.cart_file()
    return cart_files
