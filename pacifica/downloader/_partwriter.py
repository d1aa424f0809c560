"""Writing one cart member into its staged part file, big ones on a thread of their own, small ones maybe in a process.

A part file is opened fresh (a stale one of a killed run is replaced, a
symbolic link is never followed), big ones get their blocks reserved at
once, and a complete one gets its modification time before it is closed.
"""
from __future__ import annotations

import errno
import functools
import os
import queue
import threading
from typing import Any, Hashable, List, Optional, Set, Tuple

from pacifica._client.exceptions import UnsafeArchiveError
from pacifica._client.fileio import reserve_space, write_all

from ._creator import PartCreator
from ._creator_worker import UTIME_FD as _UTIME_FD
from ._creator_worker import PartIsDirectory, create_part


class _PartFile:
    """One part file being written."""

    __slots__ = ('background', 'fd', 'key', 'mtime', 'path', 'remote', 'size')

    def __init__(self, path: str, mtime: Optional[float], size: int, background: bool,
                 key: Optional[Hashable] = None) -> None:
        self.path = path
        #: What :attr:`PartWriter.incomplete` names the part by.
        self.key: Hashable = path if key is None else key
        self.mtime = mtime
        self.size = size
        self.background = background
        #: Made by the part-file process (:mod:`._creator`), not here.
        self.remote = False
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


#: One queued operation: ('open' | 'write' | 'close', part, piece) or ('fence', None, event).
_Operation = Tuple[str, Any, Any]


class PartWriter:
    """Writes part files; big ones on a thread of its own, small ones through ``creator`` when given.

    For a big member the extracting thread hashes a piece while this
    thread writes the previous ones (both release the GIL), so the two
    overlap on two cores. Small members are written directly: handing their
    few system calls to another thread costs more than it saves. With a
    :class:`~._creator.PartCreator`, a second process makes them instead.
    Background operations travel in batches; at most ``depth`` batches of
    about ``BATCH_BYTES`` wait, which bounds memory. The first background
    error is re-raised in the extracting thread. The pieces written are
    borrowed: :meth:`fence` tells their owner when the writer is done with them.
    """

    #: Members at least this big are written in the background.
    BACKGROUND_SIZE = 1024 * 1024
    BATCH_BYTES = 1024 * 1024

    def __init__(self, depth: int = 4, creator: Optional[PartCreator] = None) -> None:
        self._creator = creator
        self._queue: 'queue.Queue[Optional[List[_Operation]]]' = queue.Queue(depth)
        self._batch: List[_Operation] = []
        self._batch_bytes = 0
        self._error: Optional[BaseException] = None
        self._abandoned = False
        self._thread: Optional[threading.Thread] = None
        #: Part files (their keys) of which an operation failed or was dropped: their hash may have
        #: matched on the extracting thread, but their bytes are not all on disk. Read it after abandon().
        self.incomplete: Set[Hashable] = set()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            for operation, part, piece in batch:
                if operation == 'fence':  # every operation queued before it is done
                    piece.set()
                elif self._error is not None or self._abandoned:
                    self.incomplete.add(part.key)
                    part.close()
                else:
                    self._apply(operation, part, piece)

    def _apply(self, operation: str, part: _PartFile, piece: Any) -> None:
        try:
            if operation == 'write':
                part.write(piece)
            else:
                getattr(part, operation)()
        except BaseException as err:  # noqa: BLE001 - handed to the extracting thread
            self._error = err
            self.incomplete.add(part.key)
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

    def fence(self) -> Optional[threading.Event]:
        """An event set once every write handed over so far is done; None when none is pending.

        The owner of the pieces waits for it before it reuses their memory.
        """
        if self._thread is None or self._abandoned:
            return None
        done = threading.Event()
        self._background('fence', None, done)
        return done

    def begin(self, path: str, mtime: Optional[float], size: int, key: Optional[Hashable] = None) -> _PartFile:
        """Start the part file ``path`` (a stale one is replaced) for a member of ``size`` bytes.

        When it is complete the file gets ``mtime`` as its access and modification time (None: left as is).
        ``key`` (default: the path) names it in :attr:`incomplete`; a key the caller holds anyway costs
        no memory per file.
        """
        part = _PartFile(path, mtime, size, size >= self.BACKGROUND_SIZE, key)
        if part.background:
            self._background('open', part)
        elif self._creator is not None:
            part.remote = True
            self._creator.begin(path, mtime, size, part.key)
        else:
            part.open()
        return part

    def write(self, part: _PartFile, piece: memoryview) -> None:
        if part.background:
            self._background('write', part, piece)
        elif part.remote:
            self._creator.write(piece)  # type: ignore[union-attr]  # remote only with a creator
        else:
            part.write(piece)

    def end(self, part: _PartFile) -> None:
        """Close the part file (and give it its mtime)."""
        if part.background:
            self._background('close', part)
        elif not part.remote:
            part.close()

    def finish(self) -> None:
        """Wait until everything is on disk; raise the background error (or the creator's) if there was one."""
        self._stop()
        if self._error is not None:
            raise self._error
        if self._creator is not None:
            self._creator.finish()

    def abandon(self, part: Optional[_PartFile]) -> None:
        """Skip whatever is still queued and stop; afterwards no part file is open or being created."""
        self._abandoned = True
        for operation, _part, piece in self._batch:
            if operation == 'fence':  # the dropped writes no longer need the pieces
                piece.set()
        self._batch = []
        self._stop()
        if part is not None and not part.background and not part.remote:
            part.close()
        if self._creator is not None:
            self._creator.abandon()
            self.incomplete.update(self._creator.incomplete)

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
        return create_part(part_path)
    except PartIsDirectory:
        raise UnsafeArchiveError('{} is a directory'.format(part_path), part_path) from None


def unlink_quietly(path: str) -> None:
    """Delete ``path``; one that is already gone is no error."""
    try:
        os.unlink(path)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise
