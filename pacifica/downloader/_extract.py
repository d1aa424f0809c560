"""Write a cart's files safely, verify them, and only then put them in place.

Rules, whatever the cart sends:

- Files land only under the target directory ``<location>/<filename>/``.
  A member is written only if it is a regular file whose normalised name is
  one of the requested paths; absolute names, ``..``, links, devices, FIFOs,
  unrequested or duplicate members raise :class:`UnsafeArchiveError`. An
  existing symbolic link (or non-directory) where a directory of the target
  should be is refused, never followed.
- Each file is written below the cart's hidden staging folder
  (:mod:`._stage`: ``<target>/.pacifica-stage-.../<path>``; :mod:`._target`,
  :mod:`._partwriter`) and hashed while it is written. Once complete it
  gets the modification time the record gives it (else the cart member's,
  as ``tar -x`` would). A member whose size differs from the record's is
  hashed to its end but never written. Every problem (wrong hash, wrong
  size, file not delivered) is collected and the stream read on, so that
  one :class:`VerificationError` lists them all. Final names appear only
  after the whole cart was read and every file verified; then the staged
  subtrees are moved into place (one rename per subtree whose name is new,
  a merge where a folder exists), checked again as they go. If a move
  fails, every file placed is taken back to a hidden name.
- On any failure, unverified files are deleted and verified ones are kept
  as ``.<name>.pacifica-verified`` beside their final names (hidden, never
  under the final name), so that the next call with the same record
  re-checks and reuses them instead of downloading them again; the stage
  is removed. A verified file whose folder is blocked by a link or a file
  is kept with its path below ``<target>/.pacifica-verified/`` instead
  (:class:`~._target.ParkedTree`).
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set

from pacifica._client.exceptions import (
    ChecksumMismatch, FileMissing, SizeMismatch, UnsafeArchiveError, VerificationDetail, VerificationError,
)
from pacifica._client.rules import is_absolute, new_hash, relative_parts

from ._partwriter import PartWriter, _PartFile
from ._records import FileEntry, modification_time
from ._stage import Stage
from ._tarstream import Member, TarStreamReader
from ._target import VERIFIED_SUFFIX, ParkedTree, Parts, Target

LOGGER = logging.getLogger(__name__)

#: The ``callback`` of the download methods: called with ``(bytes_done, bytes_total or None)``.
ProgressCallback = Callable[[int, Optional[int]], Any]

#: Seconds between two progress callbacks (the first and the last are always made).
PROGRESS_INTERVAL = 0.1


def _shown(entry: FileEntry) -> str:
    """The entry's path as problems and messages show it: its safe components joined by '/'."""
    return '/'.join(entry.parts)


def _ancestors(parts: Parts) -> Iterable[Parts]:
    return (parts[:depth] for depth in range(len(parts)))


class Extraction:
    """Apply the rules in this module's docstring to one cart stream.

    ``entries`` are the files asked for (``None`` accepts every safe regular
    file, unverified: the legacy ``_download_from_url`` call has no list).
    ``prefixes`` are the first name components cartd may put before the
    paths (the ``filename``, and the cart's UUID for pre-bundled carts).
    ``writer`` writes the parts; it borrows the stream's pieces, whose owner
    asks it when they are free again (:meth:`PartWriter.fence`).
    """

    def __init__(self, target: Target, entries: Optional[Sequence[FileEntry]], prefixes: Sequence[Parts],
                 progress: Optional[ProgressCallback] = None, writer: Optional[PartWriter] = None) -> None:
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
        self.written: List[Parts] = []  # files staged, in stream order
        self._stage: Optional[Stage] = None  # made with the first file
        self._folders: Set[Parts] = set()  # folders of the files staged so far, checked and made
        self.unverified: Set[Parts] = set()
        # The requested files not delivered yet, in the record's order: popped as they come, what is left is
        # missing. A copy of ``wanted`` takes a third of the memory of a set of the delivered paths.
        self._undelivered: Dict[Parts, FileEntry] = dict(self.wanted) if self.wanted is not None else {}
        self._delivered_unlisted: Set[Parts] = set()  # without a list: the paths written, to refuse a second copy
        self.problems: List[VerificationDetail] = []
        self._writer = writer if writer is not None else PartWriter()
        self._part: Optional[_PartFile] = None
        self._progress = progress
        self._total = total
        self._done = 0
        self._last_report = 0.0
        self._hash_factories: Dict[str, Callable[[], Any]] = {}

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
        if is_absolute(name):
            raise UnsafeArchiveError('cart member {!r} has an absolute name'.format(name), name)
        try:
            parts = relative_parts(name)
        except ValueError as err:
            raise UnsafeArchiveError('cart member {!r} would leave the download folder: {}'.format(
                name, err), name) from None
        for prefix in self.prefixes:
            if parts[:len(prefix)] == prefix:
                return parts[len(prefix):]
        raise UnsafeArchiveError('cart member {!r} is outside the requested directory {!r}'.format(
            name, '/'.join(self.target.filename_parts)), name)

    # -- members -------------------------------------------------------------
    def run(self, reader: TarStreamReader) -> None:
        """Read every member of the stream, writing the requested files as parts."""
        self.report(final=True)
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
            entry = self._first_delivery(rel, member.name)
            if entry is not None:
                rel = entry.parts  # the record's tuple: the bookkeeping below then holds no copies
            if entry is not None and entry.size is not None and member.size != entry.size:
                self._skip_wrong_size(reader, member, entry)
            else:
                self._write(reader, member, rel, entry)
        self._writer.finish()
        self.report(final=True)

    def _first_delivery(self, rel: Parts, name: str) -> Optional[FileEntry]:
        """The record's entry of a member delivered for the first time (None without a list), else raise."""
        if self.wanted is None:
            if rel in self._delivered_unlisted:
                raise UnsafeArchiveError('cart member {!r} appears twice'.format(name), name)
            self._delivered_unlisted.add(rel)
            return None
        entry = self._undelivered.pop(rel, None)
        if entry is None:
            if rel in self.wanted:
                raise UnsafeArchiveError('cart member {!r} appears twice'.format(name), name)
            raise UnsafeArchiveError('cart member {!r} was not requested'.format(name), name)
        return entry

    def _write(self, reader: TarStreamReader, member: Member, rel: Parts, entry: Optional[FileEntry]) -> None:
        stage = self._stage
        if stage is None:
            stage = self._stage = Stage(self.target)
        if rel[:-1] not in self._folders:
            # a link or a file in the way is refused now, not after the whole cart (and again at commit)
            self.target.directory(rel[:-1], create=False)
            stage.files.directory(rel[:-1], create=True)
            self._folders.add(rel[:-1])
        self.written.append(rel)  # before the file exists, so that abort() always removes it
        self.unverified.add(rel)
        hasher = self._hasher(entry.hashtype) if entry is not None else None
        writer = self._writer
        self._part = part = writer.begin(stage.path(rel), _file_mtime(entry, member),
                                         member.size, rel)
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

    def _hasher(self, hashtype: str) -> Any:
        """A new hash object of ``hashtype``, made through a constructor looked up once per hash name."""
        factory = self._hash_factories.get(hashtype)
        if factory is None:
            factory = self._hash_factories[hashtype] = hash_factory(hashtype)
        return factory()

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
                            for entry in self._undelivered.values())
        if problems:
            raise VerificationError(problems)

    def commit(self, parked: Sequence[FileEntry] = ()) -> List[Parts]:
        """Move the staged files (and parked ones) to their final names; on a failure take them all back.

        Returns the paths (as parts) now in place.
        """
        moved: List[Parts] = []
        restored: List[Parts] = []
        try:
            if self._stage is not None:
                self._stage.place(self.written, moved)
            self.target.forget()  # the folders are checked again now: one may have become a link since the scan
            for entry in parked:
                self.target.directory(entry.parts[:-1], create=False)  # raises for a link or a file
                os.replace(self.target.hidden_path(entry.parts, VERIFIED_SUFFIX), self.target.path(entry.parts))
                restored.append(entry.parts)
        except (OSError, UnsafeArchiveError):
            self._hide_placed(moved, restored)
            raise
        placed = self.written + restored
        self.written = []
        self._remove_stage()
        return placed

    def _hide_placed(self, moved: Sequence[Parts], restored: Sequence[Parts]) -> None:
        """Give every file a failed commit placed its hidden parked name again, file by file.

        A folder moved into place is not moved back whole: another cart may have merged files into it.
        """
        moved_set = set(moved)
        placed = [parts for parts in self.written
                  if any(parts[:depth] in moved_set for depth in range(1, len(parts) + 1))]
        for parts in placed + list(restored):
            try:
                os.replace(self.target.path(parts), self.target.hidden_path(parts, VERIFIED_SUFFIX))
            except OSError as err:
                LOGGER.warning('could not take %s back after the failed download: %s', self.target.path(parts), err)

    def abort(self) -> None:
        """After a failure: delete unverified files, park verified ones for the next call, remove the stage."""
        self._writer.abandon(self._part)
        incomplete = self._writer.incomplete
        stage = self._stage
        if stage is not None and self.wanted is not None:
            self.target.forget()
            tree = ParkedTree(self.target)
            in_tree = sum(self._park(stage, parts, tree) for parts in self.written
                          if parts not in self.unverified and parts not in incomplete)
            if in_tree:
                LOGGER.warning('%d verified file(s) whose folder was blocked kept below %s for the next call',
                               in_tree, tree.files.root)
        self.written = []
        self._remove_stage()

    def _park(self, stage: Stage, parts: Parts, tree: ParkedTree) -> bool:
        """Keep a verified staged file as ``.<name>.pacifica-verified`` beside its final name.

        Where its folder cannot be had (a link or a file in the way), the file
        goes to the target's parked ``tree`` instead (True), so that the next
        call finds it once the way is clear.
        """
        try:
            self.target.directory(parts[:-1], create=True)
            os.replace(stage.path(parts), self.target.hidden_path(parts, VERIFIED_SUFFIX))
        except FileNotFoundError:  # placed, then parked already by the failed commit
            pass
        except (OSError, UnsafeArchiveError) as err:
            try:
                tree.park(stage.path(parts), parts)
            except (OSError, UnsafeArchiveError) as tree_err:  # deleted with the stage; the next call fetches it
                LOGGER.warning('could not keep the verified %s for the next call: %s; %s', '/'.join(parts), err,
                               tree_err)
                return False
            LOGGER.debug('verified %s kept in the parked tree: %s', '/'.join(parts), err)
            return True
        return False

    def _remove_stage(self) -> None:
        stage, self._stage = self._stage, None
        if stage is not None:
            stage.remove()


def hash_factory(name: str) -> Callable[[], Any]:
    """What makes new hash objects of ``name`` as :func:`~pacifica._client.rules.new_hash` does.

    hashlib's own constructor where it has one: ``hashlib.new`` looks the
    name up again on every call, once per cart member.
    """
    constructor = getattr(hashlib, name) if name in hashlib.algorithms_guaranteed else None
    if constructor is not None:
        try:
            constructor(usedforsecurity=False)
        except TypeError:  # an interpreter without the keyword
            pass
        else:
            return functools.partial(constructor, usedforsecurity=False)
    return functools.partial(new_hash, name)


def _file_mtime(entry: Optional[FileEntry], member: Member) -> Optional[float]:
    """The modification time a file gets: the record's, else the cart member's (as ``tar -x``), else none."""
    recorded = modification_time(entry.mtime) if entry is not None else None
    if recorded is not None:
        return recorded
    return member.mtime if member.mtime > 0 else None
