"""Write a cart's files safely, verify them, and only then put them in place.

Rules, whatever the cart sends:

- Files land only under the target directory ``<location>/<filename>/``.
  A member is written only if it is a regular file whose normalised name is
  one of the requested paths; absolute names, ``..``, links, devices, FIFOs,
  unrequested or duplicate members raise :class:`UnsafeArchiveError`. An
  existing symbolic link (or non-directory) where a directory of the target
  should be is refused, never followed.
- Each file is written to ``.<name>.pacifica-part`` beside its final name and
  hashed while it is written. Once complete it gets the modification time
  the record gives it (else the cart member's, as ``tar -x`` would). A
  member whose size differs from the record's is hashed to its end but never
  written. Every problem (wrong hash, wrong size, file not delivered) is
  collected and the stream read on, so that one :class:`VerificationError`
  lists them all. Final names appear only after the whole cart was read and
  every file verified; then each part is renamed into place.
- On any failure, unverified parts are deleted and verified ones are kept as
  ``.<name>.pacifica-verified`` (hidden, never under the final name), so that
  the next call with the same record re-checks and reuses them instead of
  downloading them again.
"""
from __future__ import annotations

import errno
import functools
import os
import queue
import stat
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from pacifica._client.exceptions import (
    ChecksumMismatch, FileMissing, SizeMismatch, UnsafeArchiveError, VerificationDetail, VerificationError,
)
from pacifica._client.fileio import reserve_space, write_all
from pacifica._client.rules import new_hash

from ._records import FileEntry, modification_time
from ._tarstream import Member, TarStreamReader

Parts = Tuple[str, ...]
Progress = Callable[[int, Optional[int]], Any]

PART_SUFFIX = '.pacifica-part'
VERIFIED_SUFFIX = '.pacifica-verified'
#: Longer names get a hashed hidden name, to stay within file-name length limits.
SHORT_NAME_LIMIT = 200
#: Seconds between two progress callbacks (the first and the last are always made).
PROGRESS_INTERVAL = 0.1
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0) | getattr(os, 'O_NOFOLLOW', 0)
_HASH_READ_SIZE = 1024 * 1024
#: Whether os.utime can set times through a file descriptor here (not on Windows).
_UTIME_FD = os.utime in os.supports_fd


def _hidden_name(name: str, suffix: str) -> str:
    if len(name.encode('utf-8', 'surrogateescape')) > SHORT_NAME_LIMIT:
        digest = new_hash('sha1')
        digest.update(name.encode('utf-8', 'surrogateescape'))
        name = digest.hexdigest()
    return '.{}{}'.format(name, suffix)


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
    """The download directory ``<location>/<filename>``, created component by component.

    Every directory at or below the target is checked with ``lstat`` once:
    a symbolic link or a non-directory there raises UnsafeArchiveError.
    The directories it makes are listed in :attr:`created`, so that a failed
    download can take them away again (:meth:`remove_created`).
    """

    def __init__(self, location: str, filename_parts: Parts) -> None:
        self.location = location
        self.filename_parts = filename_parts
        self.root = os.path.join(location, *filename_parts)
        self._known: Dict[Parts, bool] = {}  # relative to location -> exists as a real directory
        self._dir_paths: Dict[Parts, str] = {(): self.root}
        self._location_made = False
        #: Directories this object made, each after its parent.
        self.created: List[str] = []

    def path(self, parts: Parts) -> str:
        """Path of ``parts`` relative to the target root."""
        dir_parts = parts[:-1]
        dir_path = self._dir_paths.get(dir_parts)
        if dir_path is None:
            dir_path = self._dir_paths[dir_parts] = os.path.join(self.root, *dir_parts)
        return os.path.join(dir_path, parts[-1]) if parts else self.root

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
            except FileExistsError:
                return self._probe_again(rel, path)
            self.created.append(path)
            self._known[rel] = True
            return True
        self._check_dir(info, path)
        self._known[rel] = True
        return True

    def _probe_again(self, rel: Parts, path: str) -> bool:
        self._check_dir(os.lstat(path), path)
        self._known[rel] = True
        return True

    @staticmethod
    def _check_dir(info: os.stat_result, path: str) -> None:
        if stat.S_ISLNK(info.st_mode):
            raise UnsafeArchiveError('{} is a symbolic link; refusing to write through it'.format(path), path)
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafeArchiveError('{} exists and is not a directory'.format(path), path)

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


    def remove_created(self) -> None:
        """Remove the directories :attr:`created` lists that are empty, deepest first; keep any with content."""
        for path in reversed(self.created):
            try:
                os.rmdir(path)
            except OSError:  # not empty (a parked file, someone else's file) or already gone
                pass
        self.created = []


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


def _shown(entry: FileEntry) -> str:
    """The entry's path as problems and messages show it: its safe components joined by '/'."""
    return '/'.join(entry.parts)


def _ancestors(parts: Parts) -> Iterable[Parts]:
    return (parts[:depth] for depth in range(len(parts)))


class ExistingFiles:
    """What a previous call left: files already in place or parked as verified."""

    def __init__(self) -> None:
        self.in_place: List[FileEntry] = []
        self.parked: List[FileEntry] = []
        self.missing: List[FileEntry] = []


def scan_existing(target: Target, entries: Sequence[FileEntry]) -> ExistingFiles:
    """Sort ``entries`` by whether a correct copy already exists (resume support).

    A file counts as present only if its hash matches; a stale or corrupt one
    is downloaded again. Each directory is listed once, so a fresh download
    into an empty directory costs almost nothing.
    """
    found = ExistingFiles()
    listings: Dict[Parts, Optional[Set[str]]] = {}
    for entry in entries:
        dir_parts, name = entry.parts[:-1], entry.parts[-1]
        if dir_parts not in listings:
            listings[dir_parts] = set(os.listdir(target.path(dir_parts))) if target.directory(
                dir_parts, create=False) else None
        names = listings[dir_parts]
        if names is None:
            found.missing.append(entry)
        elif name in names and _holds(target.path(entry.parts), entry):
            found.in_place.append(entry)
        elif _hidden_name(name, VERIFIED_SUFFIX) in names and _holds(
                target.path(dir_parts + (_hidden_name(name, VERIFIED_SUFFIX),)), entry):
            found.parked.append(entry)
        else:
            found.missing.append(entry)
    return found


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


class Extraction:
    """Apply the rules in this module's docstring to one cart stream.

    ``entries`` are the files asked for (``None`` accepts every safe regular
    file, unverified: the legacy ``_download_from_url`` call has no list).
    ``prefixes`` are the first name components cartd may put before the
    paths (the ``filename``, and the cart's UUID for pre-bundled carts).
    """

    def __init__(self, target: Target, entries: Optional[Sequence[FileEntry]], prefixes: Sequence[Parts],
                 progress: Optional[Progress] = None) -> None:
        self.target = target
        self.wanted: Optional[Dict[Parts, FileEntry]] = None
        self.wanted_dirs: Set[Parts] = {()}
        total: Optional[int] = None
        if entries is not None:
            self.wanted = {entry.parts: entry for entry in entries}
            for parts in self.wanted:
                self.wanted_dirs.update(_ancestors(parts))
            sizes = [entry.size for entry in entries if entry.size is not None]
            total = sum(sizes) if len(sizes) == len(entries) else None
        self.prefixes = sorted(set(prefixes), key=len, reverse=True)
        self.written: List[Parts] = []  # part files made, in stream order
        self.unverified: Set[Parts] = set()
        self.seen: Set[Parts] = set()
        self.problems: List[VerificationDetail] = []
        self._writer: Optional[PartWriter] = None
        self._part: Optional[_PartFile] = None
        self._progress = progress
        self._total = total
        self._done = 0
        self._last_report = 0.0

    # -- progress ----------------------------------------------------------
    def report(self, final: bool = False) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if final or now - self._last_report >= PROGRESS_INTERVAL:
            self._last_report = now
            self._progress(self._done, self._total)

    # -- names ---------------------------------------------------------------
    def _relative(self, member: Member) -> Parts:
        """The member's path below the prefix, or UnsafeArchiveError."""
        name = member.name
        if name.startswith('/') or (os.name == 'nt' and (name.startswith('\\') or name[1:2] == ':')):
            raise UnsafeArchiveError('cart member {!r} has an absolute name'.format(name), name)
        raw = name.split('/')
        if '..' in raw:
            raise UnsafeArchiveError('cart member {!r} contains ".." (path traversal)'.format(name), name)
        if '\x00' in name or (os.name == 'nt' and ('\\' in name or ':' in name)):
            raise UnsafeArchiveError('cart member {!r} has characters not allowed in a path'.format(name), name)
        parts = tuple(part for part in raw if part not in ('', '.'))
        for prefix in self.prefixes:
            if parts[:len(prefix)] == prefix:
                return parts[len(prefix):]
        raise UnsafeArchiveError('cart member {!r} is outside the requested directory {!r}'.format(
            name, '/'.join(self.target.filename_parts)), name)

    # -- members -------------------------------------------------------------
    def run(self, reader: TarStreamReader, give_back: Optional[Callable[[memoryview], None]] = None) -> None:
        """Read every member of the stream, writing the requested files as parts.

        ``give_back(chunk)``, when given, returns a receive buffer to its
        owner; it is called only after every write from that chunk is done.
        """
        self.report(final=True)
        self._writer = writer = PartWriter()
        if give_back is not None:
            reader.release = lambda chunk: writer.recycle(lambda: give_back(chunk))
        for member in reader.members():
            rel = self._relative(member)
            if member.is_dir:
                if self.wanted is not None and rel not in self.wanted_dirs:
                    raise UnsafeArchiveError('cart member {!r} is a directory nobody asked for'.format(
                        member.name), member.name)
                continue
            if not member.is_file:
                raise UnsafeArchiveError('cart member {!r} is {}; only regular files are accepted'.format(
                    member.name, member.kind()), member.name)
            if not rel:
                raise UnsafeArchiveError('cart member {!r} is a file where the download directory belongs'.format(
                    member.name), member.name)
            if rel in self.seen:
                raise UnsafeArchiveError('cart member {!r} appears twice'.format(member.name), member.name)
            entry = None
            if self.wanted is not None:
                entry = self.wanted.get(rel)
                if entry is None:
                    raise UnsafeArchiveError('cart member {!r} was not requested'.format(member.name), member.name)
                rel = entry.parts  # the record's tuple: the bookkeeping below then holds no copies
            self.seen.add(rel)
            if entry is not None and entry.size is not None and member.size != entry.size:
                self._skip_wrong_size(reader, member, entry)
            else:
                self._write(reader, member, rel, entry)
        self._writer.finish()
        self.report(final=True)

    def _write(self, reader: TarStreamReader, member: Member, rel: Parts, entry: Optional[FileEntry]) -> None:
        self.target.directory(rel[:-1], create=True)
        self.written.append(rel)  # before the file exists, so that abort() always removes it
        self.unverified.add(rel)
        hasher = new_hash(entry.hashtype) if entry is not None else None
        writer = self._writer
        assert writer is not None
        self._part = part = writer.begin(self.hidden_path(rel, PART_SUFFIX), _file_mtime(entry, member), member.size)
        for piece in reader.data(member):
            if hasher is not None:
                hasher.update(piece)
            writer.write(part, piece)
            self._done += len(piece)
            if self._progress is not None:
                self.report()
        writer.end(part)
        self._part = None
        if entry is not None and hasher is not None:
            found = hasher.hexdigest()
            if found != entry.hashsum.lower():
                self.problems.append(ChecksumMismatch(_shown(entry), entry.hashtype, entry.hashsum, found,
                                                      entry.size, member.size))
                return
        self.unverified.discard(rel)

    def _skip_wrong_size(self, reader: TarStreamReader, member: Member, entry: FileEntry) -> None:
        """Hash a member whose size is not the record's to its end, write none of it, and note the problem.

        Reading on keeps the stream in step, so the members after it are
        still written and checked.
        """
        hasher = new_hash(entry.hashtype)
        for piece in reader.data(member):
            hasher.update(piece)
        self.problems.append(SizeMismatch(_shown(entry), entry.hashtype, entry.hashsum, hasher.hexdigest(),
                                          entry.size, member.size))

    # -- outcome -------------------------------------------------------------
    def verify(self) -> None:
        """Raise VerificationError listing every mismatch, wrong size and requested file not delivered."""
        problems = list(self.problems)
        if self.wanted is not None:
            problems.extend(FileMissing(_shown(entry), entry.hashtype, entry.hashsum, None, entry.size)
                            for parts, entry in self.wanted.items() if parts not in self.seen)
        if problems:
            raise VerificationError(problems)

    def hidden_path(self, parts: Parts, suffix: str) -> str:
        """Where the part (or parked) file of ``parts`` lives: a hidden name beside the final one."""
        return self.target.path(parts[:-1] + (_hidden_name(parts[-1], suffix),))

    def commit(self, parked: Sequence[FileEntry] = ()) -> List[Parts]:
        """Rename every part (and parked file) to its final name; undo them all if one rename fails.

        Returns the paths (as parts) now in place.
        """
        placed: List[Parts] = []
        try:
            for parts in self.written:
                os.replace(self.hidden_path(parts, PART_SUFFIX), self.target.path(parts))
                placed.append(parts)
            for entry in parked:
                os.replace(self.hidden_path(entry.parts, VERIFIED_SUFFIX), self.target.path(entry.parts))
                placed.append(entry.parts)
        except OSError:
            for parts in placed:
                os.replace(self.target.path(parts), self.hidden_path(parts, VERIFIED_SUFFIX))
            raise
        self.written = []
        return placed

    def abort(self) -> None:
        """After a failure: delete unverified parts, park verified ones for the next call."""
        incomplete: Set[str] = set()
        if self._writer is not None:
            self._writer.abandon(self._part)
            incomplete = self._writer.incomplete
        for parts in self.written:
            part_path = self.hidden_path(parts, PART_SUFFIX)
            if parts not in self.unverified and self.wanted is not None and part_path not in incomplete:
                try:
                    os.replace(part_path, self.hidden_path(parts, VERIFIED_SUFFIX))
                    continue
                except OSError:
                    pass
            _unlink_quietly(part_path)
        self.written = []


def _file_mtime(entry: Optional[FileEntry], member: Member) -> Optional[float]:
    """The modification time a file gets: the record's, else the cart member's (as ``tar -x``), else none."""
    recorded = modification_time(entry.mtime) if entry is not None else None
    if recorded is not None:
        return recorded
    return member.mtime if member.mtime > 0 else None


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise


class _PartFile:
    """One part file being written."""

    __slots__ = ('background', 'fd', 'mtime', 'path', 'size')

    def __init__(self, path: str, mtime: Optional[float], size: int, background: bool) -> None:
        self.path = path
        self.mtime = mtime
        self.size = size
        self.background = background
        self.fd: Optional[int] = None

    def open(self) -> None:
        self.fd = _create(self.path)
        if self.background:  # big: worth a system call to get its blocks at once
            reserve_space(self.fd, self.size, self.path)

    def write(self, piece: memoryview) -> None:
        fd = self.fd
        assert fd is not None, 'write before open'
        write_all(functools.partial(os.write, fd), piece)

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            if self.mtime is not None and _UTIME_FD:
                os.utime(fd, (self.mtime, self.mtime))
        finally:
            os.close(fd)
        if self.mtime is not None and not _UTIME_FD:
            os.utime(self.path, (self.mtime, self.mtime))


class PartWriter:
    """Writes part files; big ones on a thread of its own.

    For a big member the extracting thread hashes a piece while this
    thread writes the previous ones (both release the GIL), so the two
    overlap on two cores. Small members are written directly: handing their
    few system calls to another thread costs more than it saves.
    Background operations travel in batches; at most ``depth`` batches of
    about ``BATCH_BYTES`` wait, which bounds memory. The first background
    error is re-raised in the extracting thread.
    """

    #: Members at least this big are written in the background.
    BACKGROUND_SIZE = 1024 * 1024
    BATCH_BYTES = 1024 * 1024

    def __init__(self, depth: int = 4) -> None:
        self._queue: 'queue.Queue[Optional[List[Tuple[str, Any, Any]]]]' = queue.Queue(depth)
        self._batch: List[Tuple[str, Any, Any]] = []
        self._batch_bytes = 0
        self._error: Optional[BaseException] = None
        self._abandoned = False
        self._thread: Optional[threading.Thread] = None
        #: Part files of which an operation failed or was dropped: their hash may have matched
        #: on the extracting thread, but their bytes are not all on disk. Read it after abandon().
        self.incomplete: Set[str] = set()

    def _run(self) -> None:
        assert self._thread is not None
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            for operation, part, piece in batch:
                if operation == 'recycle':  # every earlier write of this buffer is done
                    piece()
                    continue
                if self._error is not None or self._abandoned:
                    self.incomplete.add(part.path)
                    part.close()
                    continue
                try:
                    getattr(part, operation)(*((piece,) if operation == 'write' else ()))
                except BaseException as err:  # noqa: BLE001 - handed to the extracting thread
                    self._error = err
                    self.incomplete.add(part.path)
                    part.close()

    def _background(self, operation: str, part: Optional[_PartFile], piece: Any = None) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name='pacifica-part-writer', daemon=True)
            self._thread.start()
        self._batch.append((operation, part, piece))
        self._batch_bytes += len(piece) if operation == 'write' else 0
        if operation != 'write' or self._batch_bytes >= self.BATCH_BYTES:
            self._queue.put(self._batch)
            self._batch = []
            self._batch_bytes = 0

    def recycle(self, give_back: Callable[[], None]) -> None:
        """Call ``give_back`` (which lets a receive buffer be refilled) once every queued write is done."""
        if self._thread is None or self._abandoned:
            give_back()
        else:
            self._background('recycle', None, give_back)

    def begin(self, path: str, mtime: Optional[float], size: int) -> _PartFile:
        """Start the part file ``path`` (a stale one is replaced) for a member of ``size`` bytes.

        When it is complete the file gets ``mtime`` as its access and modification time (None: left as is).
        """
        part = _PartFile(path, mtime, size, size >= self.BACKGROUND_SIZE)
        if part.background:
            self._background('open', part)
        else:
            part.open()
        return part

    def write(self, part: _PartFile, piece: memoryview) -> None:
        if part.background:
            self._background('write', part, piece)
        else:
            part.write(piece)

    def end(self, part: _PartFile) -> None:
        """Close the part file (and give it its mtime)."""
        if part.background:
            self._background('close', part)
        else:
            part.close()

    def finish(self) -> None:
        """Wait until everything is on disk; raise the background error if there was one."""
        self._stop()
        if self._error is not None:
            raise self._error

    def abandon(self, part: Optional[_PartFile]) -> None:
        """Skip whatever is still queued and stop; afterwards no part file is open or being created."""
        self._abandoned = True
        self._batch = []
        self._stop()
        if part is not None and not part.background:
            part.close()

    def _stop(self) -> None:
        if self._thread is not None:
            if self._batch:
                self._queue.put(self._batch)
                self._batch = []
            self._queue.put(None)
            self._thread.join()
            self._thread = None


def _create(part_path: str) -> int:
    """Open a fresh part file; a stale one from a killed run is removed first."""
    try:
        return os.open(part_path, _OPEN_FLAGS, 0o666)
    except FileExistsError:
        info = os.lstat(part_path)
        if stat.S_ISDIR(info.st_mode):
            raise UnsafeArchiveError('{} is a directory'.format(part_path), part_path) from None
        os.unlink(part_path)
        return os.open(part_path, _OPEN_FLAGS, 0o666)
