"""Up-front checks of a Bundler's ``file_data``: every problem found at once, before any byte is written.

A bundle of 100,000 files that fails on file 73,512 after an hour is the
expensive way to learn that one entry lacked its ``mtime``. So the whole list
is checked when the :class:`~pacifica.uploader.bundler.Bundler` is made, and
all problems are reported together in one :class:`FileDataError` (its
``problems`` attribute lists ``(index, text)`` pairs), the way ``bagit``
reports a bag.
"""
from __future__ import annotations

import io
import math
import os
import stat
import tarfile
from typing import Any, Iterable, List, Optional, Set, Tuple

from pacifica._client.exceptions import FileDataError
from pacifica._client.rules import is_whole_number

from .tarformat import new_tarinfo, tarinfo_header

#: Keys the bundler itself reads; every other key is set on the member's TarInfo.
CORE_KEYS = frozenset(('name', 'size', 'mtime', 'fileobj', 'path'))
#: TarInfo attributes an entry may set (upstream set any key; tarfile refused unknown ones).
TARINFO_KEYS = frozenset(tarfile.TarInfo.__slots__) - {'name', 'size', 'mtime', 'tarfile'}
#: The member the bundler writes last; a file of that name would be shadowed by it.
METADATA_MEMBER = 'metadata.txt'
#: PAX records that would make the header contradict the entry's name or size.
_FORBIDDEN_PAX = frozenset(('path', 'size'))
_REGULAR_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE)
#: int(mtime) must give a datetime (years 1 to 9999) for the metadata's ISO text.
_MIN_MTIME = -62135596800
_MAX_MTIME = 253402300799
_READABLE_BY_ALL = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
#: How many problems the exception message spells out (``problems`` holds all).
_MESSAGE_LIMIT = 50

#: One bad ``file_data`` entry: (its index, what is wrong with it).
EntryProblem = Tuple[int, str]


def _check_name(name: Any, seen: Set[str]) -> Optional[str]:
    if name is None:
        return "missing 'name'"
    if not isinstance(name, str) or not name:
        return "'name' must be a non-empty str, not {!r}".format(name)
    if '\x00' in name:
        return "'name' contains a NUL character"
    if name.endswith('/'):
        return "'name' {!r} ends with '/' (a directory, not a file)".format(name)
    if name == METADATA_MEMBER:
        return "'name' {!r} is reserved for the bundle's metadata".format(name)
    if name in seen:
        return "'name' {!r} appears twice (the second would overwrite the first on extraction)".format(name)
    seen.add(name)
    return None


def _check_size(size: Any) -> Optional[str]:
    if size is None:
        return "missing 'size'"
    if not is_whole_number(size) or size < 0:
        return "'size' must be an int >= 0, not {!r}".format(size)
    return None


def _check_mtime(mtime: Any) -> Optional[str]:
    if mtime is None:
        return "missing 'mtime'"
    if isinstance(mtime, bool) or not isinstance(mtime, (int, float)) or not math.isfinite(mtime):
        return "'mtime' must be a finite number of seconds since the epoch, not {!r}".format(mtime)
    if not _MIN_MTIME <= int(mtime) <= _MAX_MTIME:
        return "'mtime' {!r} is outside the years 1 to 9999".format(mtime)
    return None


#: Reading methods of io's base classes that read nothing by themselves.
_IO_READ_STUBS = (io.RawIOBase.read, io.RawIOBase.readinto, io.BufferedIOBase.read, io.BufferedIOBase.readinto)


def _default_readable_of_a_reader(kind: type) -> bool:
    """True when ``kind`` implements read() or readinto() itself but not readable().

    io.IOBase.readable answers False for every class that does not override
    it, such as an io.RawIOBase subclass with just read(): from such a class
    that says nothing (0.3.1 never asked). io's own write-only classes inherit
    both the default readable() and stub read methods: their False is right.
    """
    if getattr(kind, 'readable', None) is not io.IOBase.readable:
        return False
    return any(getattr(kind, method, None) not in _IO_READ_STUBS for method in ('read', 'readinto'))


def _check_fileobj(fileobj: Any) -> Optional[str]:
    if not callable(getattr(fileobj, 'read', None)):
        return "'fileobj' has no read() method: {!r}".format(type(fileobj).__name__)
    if getattr(fileobj, 'closed', False) is True:
        return "'fileobj' is closed"
    readable = getattr(fileobj, 'readable', None)
    if callable(readable) and not _default_readable_of_a_reader(type(fileobj)):
        try:
            if not readable():
                return "'fileobj' is not open for reading"
        except (OSError, ValueError) as error:
            return "'fileobj' cannot be read: {}".format(error)
    return None


def _check_path(path: Any, size: Any) -> Optional[str]:
    try:
        fspath = os.fspath(path)
    except TypeError:
        return "'path' must be a str, bytes or os.PathLike, not {!r}".format(type(path).__name__)
    try:
        info = os.stat(fspath)
    except FileNotFoundError:
        return "'path' {!r} does not exist".format(fspath)
    except OSError as error:
        return "'path' {!r} cannot be examined: {}".format(fspath, error.strerror or error)
    if stat.S_ISDIR(info.st_mode):
        return "'path' {!r} is a directory".format(fspath)
    if not stat.S_ISREG(info.st_mode):
        return "'path' {!r} is not a regular file".format(fspath)
    if not os.access(fspath, os.R_OK):
        return "'path' {!r} is not readable".format(fspath)
    if is_whole_number(size) and info.st_size != size:
        return "'size' is {} but 'path' {!r} holds {} bytes".format(size, fspath, info.st_size)
    return None


def _check_source(entry: dict) -> Optional[str]:
    has_fileobj = entry.get('fileobj') is not None
    has_path = entry.get('path') is not None
    if has_fileobj and has_path:
        return "give either 'fileobj' or 'path', not both"
    if has_fileobj:
        return _check_fileobj(entry['fileobj'])
    if has_path:
        return _check_path(entry['path'], entry.get('size'))
    return "missing 'fileobj' or 'path'"


def _check_extra_keys(entry: dict) -> List[str]:
    """Problems with the keys that go onto the TarInfo (checked by building its header)."""
    extra = [key for key in entry if key not in CORE_KEYS]
    unknown = [key for key in extra if key not in TARINFO_KEYS]
    if unknown:
        return ['unknown key(s) {} (a member can only set tarfile.TarInfo attributes)'.format(
            ', '.join(repr(key) for key in unknown))]
    problems = []
    if entry.get('type', tarfile.REGTYPE) not in _REGULAR_TYPES:
        problems.append("'type' {!r} is not a regular file".format(entry['type']))
    pax = entry.get('pax_headers', {})
    if not isinstance(pax, dict) or _FORBIDDEN_PAX.intersection(pax):
        problems.append("'pax_headers' must be a dict without 'path' or 'size' records")
    if problems:
        return problems
    try:
        tarinfo_header(new_tarinfo(entry['name'], entry['size'], entry['mtime'], {key: entry[key] for key in extra}))
    except (TypeError, ValueError, UnicodeError, AttributeError) as error:
        return ['the TarInfo keys cannot be written into a tar header: {}'.format(error)]
    return []


def _entry_problems(entry: Any, seen: Set[str]) -> List[str]:
    if not isinstance(entry, dict):
        return ['must be a dict, not {}'.format(type(entry).__name__)]
    problems = [problem for problem in (
        _check_name(entry.get('name'), seen),
        _check_size(entry.get('size')),
        _check_mtime(entry.get('mtime')),
        _check_source(entry),
    ) if problem]
    if not problems and len(entry) > 4:  # 4 = name, size, mtime and one source
        problems.extend(_check_extra_keys(entry))
    return problems


def _plain_entry_is_fine(entry: Any, seen: Set[str]) -> bool:
    """The common entry (name, size, mtime, path or fileobj) in one pass; False sends it to the full checks.

    A 100,000-file bundle pays this per file, so it is flat and makes one
    system call (stat) per path; ``os.access`` is only asked when the mode
    bits alone do not make the file readable for everyone.
    """
    if type(entry) is not dict or len(entry) != 4:
        return False
    name, size, mtime = entry.get('name'), entry.get('size'), entry.get('mtime')
    if not (type(name) is str and name and type(size) is int and size >= 0
            and (type(mtime) is int or type(mtime) is float) and _MIN_MTIME <= mtime <= _MAX_MTIME
            and name not in seen and name != METADATA_MEMBER and name[-1] != '/' and '\x00' not in name):
        return False
    path = entry.get('path')
    if path is None:
        if _check_fileobj(entry.get('fileobj')) is not None:
            return False
    elif not _plain_path_is_fine(path, size):
        return False
    seen.add(name)
    return True


def _plain_path_is_fine(path: Any, size: int) -> bool:
    """A readable regular file of ``size`` bytes, in one stat where the mode bits tell."""
    try:
        info = os.stat(path)
    except (OSError, TypeError, ValueError):
        return False
    return (stat.S_ISREG(info.st_mode) and info.st_size == size
            and (info.st_mode & _READABLE_BY_ALL == _READABLE_BY_ALL or os.access(path, os.R_OK)))


def _label(index: int, entry: Any) -> str:
    name = entry.get('name') if isinstance(entry, dict) else None
    return 'file_data[{}]'.format(index) + (' ({!r})'.format(name) if isinstance(name, str) else '')


def check_file_data(file_data: Iterable[Any]) -> None:
    """Raise one FileDataError listing every unusable entry of ``file_data``."""
    if isinstance(file_data, (str, bytes, dict)) or not hasattr(file_data, '__iter__'):
        raise FileDataError('file_data must be a list of dicts, not {}'.format(type(file_data).__name__))
    problems: List[EntryProblem] = []
    lines: List[str] = []
    seen: Set[str] = set()
    for index, entry in enumerate(file_data):
        if _plain_entry_is_fine(entry, seen):
            continue
        for problem in _entry_problems(entry, seen):
            problems.append((index, problem))
            if len(lines) < _MESSAGE_LIMIT:
                lines.append('{}: {}'.format(_label(index, entry), problem))
    if problems:
        more = len(problems) - len(lines)
        if more:
            lines.append('... and {} more (see the exception\'s problems attribute)'.format(more))
        raise FileDataError('{} problem(s) in file_data:\n  {}'.format(len(problems), '\n  '.join(lines)), problems)
