"""The download folder ``<location>/<filename>/``: its directories, the hidden names, and what is already there.

Every directory at or below the folder is checked with ``lstat`` before it
is used: a symbolic link or a non-directory where a directory belongs is
refused, never followed. A file arrives below the cart's hidden staging
folder (:mod:`._stage`); one that verified but could not be put in place
because the download failed is parked under a hidden name beside its final
one (``.<name>.pacifica-verified``), so that no half-written or unchecked
file ever carries its final name. Where a link or a file blocks its folder,
it is parked in the target's parked tree instead
(``<target>/.pacifica-verified/<path>``, :class:`ParkedTree`), and moved
beside its final name by the first call that needs it once the folder is
free. The scan of what is there also removes the ``.<name>.pacifica-part``
files a killed download of version 0.1.0 left beside the names it asks for
(:func:`remove_old_part`).
"""
from __future__ import annotations

import logging
import os
import stat
from typing import Dict, List, Optional, Sequence, Set, Tuple

from pacifica._client.exceptions import UnsafeArchiveError
from pacifica._client.rules import new_hash

from ._records import FileEntry

LOGGER = logging.getLogger(__name__)

#: A path below the download folder, as its components.
Parts = Tuple[str, ...]

VERIFIED_SUFFIX = '.pacifica-verified'
#: The hidden name version 0.1.0 wrote a file under while it arrived (before the stage): ``.<name>.pacifica-part``.
PART_SUFFIX = '.pacifica-part'
#: The folder below the target that keeps verified files whose own folder was blocked, with their paths.
PARKED_TREE = '.pacifica-verified'
#: Longer names get a hashed hidden name, to stay within file-name length limits.
SHORT_NAME_LIMIT = 200
_HASH_READ_SIZE = 1024 * 1024


def hidden_name(name: str, suffix: str) -> str:
    """The hidden name beside ``name`` (``suffix``: :data:`VERIFIED_SUFFIX`, or 0.1.0's :data:`PART_SUFFIX`)."""
    # No character takes more than 4 bytes in UTF-8: most names are short without being encoded.
    if len(name) * 4 > SHORT_NAME_LIMIT and len(name.encode('utf-8', 'surrogateescape')) > SHORT_NAME_LIMIT:
        digest = new_hash('sha1')
        digest.update(name.encode('utf-8', 'surrogateescape'))
        name = digest.hexdigest()
    return '.' + name + suffix


def file_digest(path: str, hashtype: str) -> str:
    """Hex digest of a file on disk."""
    hasher = new_hash(hashtype)
    with open(path, 'rb', buffering=0) as handle:
        buf = bytearray(_HASH_READ_SIZE)
        view = memoryview(buf)
        while True:
            count = handle.readinto(buf)
            if not count:
                break
            hasher.update(view[:count])
    return hasher.hexdigest()


class Target:
    """The download folder ``<location>/<filename>``, created component by component.

    The directories it makes are listed in :attr:`created`, so that a failed
    download can take them away again (:meth:`remove_created`).
    """

    def __init__(self, location: str, filename_parts: Parts) -> None:
        self.location = location
        self.filename_parts = filename_parts
        self.root = os.path.join(location, *filename_parts)
        self._known: Dict[Parts, bool] = {}  # relative to location -> exists as a real directory
        #: Directory parts -> its path with a trailing separator: a file's path is one concatenation.
        self._dir_prefixes: Dict[Parts, str] = {}
        self._location_made = False
        #: Directories this object made, each after its parent.
        self.created: List[str] = []

    def path(self, parts: Parts) -> str:
        """Path of ``parts`` relative to the target root."""
        if not parts:
            return self.root
        dir_parts = parts[:-1]
        prefix = self._dir_prefixes.get(dir_parts)
        if prefix is None:
            prefix = self._dir_prefixes[dir_parts] = os.path.join(self.root, *dir_parts, '')
        return prefix + parts[-1]

    def hidden_path(self, parts: Parts, suffix: str) -> str:
        """Where the parked file of ``parts`` lives: a hidden name beside the final one."""
        return self.path(parts[:-1] + (hidden_name(parts[-1], suffix),))

    def _probe(self, rel: Parts, create: bool) -> bool:
        """Whether ``location/rel`` is a real directory (made when ``create``)."""
        known = self._known.get(rel)
        if known or (known is False and not create):
            return known
        path = os.path.join(self.location, *rel)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            if not create:
                self._known[rel] = False
                return False
            try:
                os.mkdir(path)
            except FileExistsError:  # made by someone else meanwhile: check what it is
                info = os.lstat(path)
            else:
                self.created.append(path)
                self._known[rel] = True
                return True
        _check_dir(info, path)
        self._known[rel] = True
        return True

    def directory(self, dir_parts: Parts, create: bool) -> bool:
        """Check (and with ``create`` make) the target directory ``dir_parts``; False if it is missing."""
        if create and not self._location_made:
            missing = _missing_directories(self.location)
            os.makedirs(self.location, exist_ok=True)
            self.created.extend(missing)
            self._location_made = True
        full = self.filename_parts + dir_parts
        if self._known.get(full):
            return True
        for depth in range(1, len(full) + 1):
            if not self._probe(full[:depth], create):
                return False
        return True

    def forget(self) -> None:
        """Drop the directory checks made so far: the next use checks each directory again."""
        self._known.clear()

    def remove_created(self) -> None:
        """Remove the directories :attr:`created` lists that are empty, deepest first; keep any with content."""
        for path in reversed(self.created):
            try:
                os.rmdir(path)
            except OSError:  # not empty (a parked file, someone else's file) or already gone
                pass
        self.created = []


def _check_dir(info: os.stat_result, path: str) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeArchiveError('{} is a symbolic link; refusing to write through it'.format(path), path)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeArchiveError('{} exists and is not a directory'.format(path), path)


def _missing_directories(path: str) -> List[str]:
    """``path`` and those of its ancestors that do not exist, outermost first."""
    missing: List[str] = []
    path = os.path.normpath(path)
    while path and not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing[::-1]


class ExistingFiles:
    """What a previous call left: files already in place or parked as verified, and the rest."""

    def __init__(self) -> None:
        self.in_place: List[FileEntry] = []
        self.parked: List[FileEntry] = []
        self.missing: List[FileEntry] = []


def scan_existing(target: Target, entries: Sequence[FileEntry]) -> ExistingFiles:
    """Sort ``entries`` by whether a correct copy already exists (resume support).

    A file counts as present only if its hash matches; a stale or corrupt one
    is downloaded again. Each directory is listed once, so a fresh download
    into an empty directory costs almost nothing. A verified copy in the
    parked tree is moved beside its final name and counted as parked; an old
    ``.<name>.pacifica-part`` beside a name asked for is removed.
    """
    found = ExistingFiles()
    listings: Dict[Parts, Optional[Set[str]]] = {}
    tree = ParkedTree.find(target)
    for entry in entries:
        dir_parts, name = entry.parts[:-1], entry.parts[-1]
        if dir_parts not in listings:
            listings[dir_parts] = set(os.listdir(target.path(dir_parts))) if target.directory(
                dir_parts, create=False) else None
        names = listings[dir_parts]
        if names is not None:
            if hidden_name(name, PART_SUFFIX) in names:
                remove_old_part(target.hidden_path(entry.parts, PART_SUFFIX))
            if name in names and _holds(target.path(entry.parts), entry):
                found.in_place.append(entry)
                continue
            if hidden_name(name, VERIFIED_SUFFIX) in names and _holds(
                    target.hidden_path(entry.parts, VERIFIED_SUFFIX), entry):
                found.parked.append(entry)
                continue
        if tree is not None and tree.take(entry):
            found.parked.append(entry)
        else:
            found.missing.append(entry)
    return found


def remove_old_part(path: str) -> None:
    """Delete ``path``, the partial file a killed download of 0.1.0 left, if it is a regular file.

    Only the part of a name the record asks for is removed (0.1.0 replaced
    such a part when it fetched that file again); a link or a folder of that
    name is left alone, and a link is never followed.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return
        os.unlink(path)
    except OSError as err:
        if not isinstance(err, FileNotFoundError):
            LOGGER.warning('could not remove %s, left by a download of an earlier version: %s', path, err)
        return
    LOGGER.info('removed %s, left by a killed download of an earlier version', path)


class ParkedTree:
    """``<target>/.pacifica-verified/<path>``: verified files of failed downloads whose folder was blocked.

    A failed download parks a verified file beside its final name; where a
    symbolic link or a file stands in the way of its folder, the file is
    kept here with its path instead (the link is never followed, never
    removed). The next call that asks for it, once the folder is free, checks
    its hash and moves it beside its final name; folders of the tree left
    empty are removed.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        #: The tree as a target of its own: its folders are checked (and made) with ``lstat`` as the target's.
        self.files = Target(target.location, target.filename_parts + (PARKED_TREE,))

    @classmethod
    def find(cls, target: Target) -> Optional['ParkedTree']:
        """The target's parked tree, or None when there is no such folder (a link or a file of its name is not one)."""
        if not target.directory((), create=False):
            return None
        try:
            info = os.lstat(target.path((PARKED_TREE,)))
        except FileNotFoundError:
            return None
        return cls(target) if stat.S_ISDIR(info.st_mode) else None

    def park(self, source: str, parts: Parts) -> None:
        """Move the verified file ``source`` into the tree as ``parts``."""
        self.files.directory(parts[:-1], create=True)
        os.replace(source, self.files.path(parts))

    def take(self, entry: FileEntry) -> bool:
        """Move the entry's file beside its final name if the tree holds it verified; False if it does not."""
        parts = entry.parts
        path = self.files.path(parts)
        try:
            if not self.files.directory(parts[:-1], create=False) or not _holds(path, entry):
                return False
        except (FileNotFoundError, UnsafeArchiveError):  # not there, or a link in the tree: fetched again
            return False
        self.target.directory(parts[:-1], create=True)
        os.replace(path, self.target.hidden_path(parts, VERIFIED_SUFFIX))
        for depth in range(len(parts) - 1, -1, -1):  # the folders it leaves empty, the tree's own last
            try:
                os.rmdir(self.files.path(parts[:depth]))
            except OSError:
                break
        return True


def _holds(path: str, entry: FileEntry) -> bool:
    """Whether ``path`` is a regular file with the entry's content."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeArchiveError('{} is a symbolic link; refusing to replace or read it'.format(path), path)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeArchiveError('{} exists and is not a regular file'.format(path), path)
    if entry.size is not None and info.st_size != entry.size:
        return False
    return file_digest(path, entry.hashtype) == entry.hashsum.lower()
