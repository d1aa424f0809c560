"""Create the small part files of a download in a second process, so that it uses both cores.

A cart of many small files costs the download process a few system calls
per file (open, write, utime, close) on top of its Python work per member
(tar headers, paths, hashing). Threads cannot take those calls off its core
(each one gives the GIL away and must win it back); a second process can
(the figures are in ``benchmarks/README.md``). :class:`PartCreator` starts
one (:mod:`._creator_worker`, standard library only) and sends it each small
member's part path, modification time and bytes, in batches over a pipe.

Nothing about what the download promises changes:

- the process only makes *part* files; the download process still verifies
  every file and gives it its final name, after :meth:`PartCreator.finish`
  has confirmed that every part was made;
- when the process reports an error, or ends without its report, the
  download fails with an error, and the parts it did not confirm count as
  incomplete (deleted, never kept for a resume);
- where the process cannot start (no plain Python interpreter, or a failed
  start), the download writes the files itself (:func:`start_creator`).
"""
from __future__ import annotations

import errno
import logging
import math
import os
import subprocess
import sys
from typing import Hashable, List, Optional, Tuple

from pacifica._client.exceptions import ArchiveError, UnsafeArchiveError

from . import _creator_worker as worker

LOGGER = logging.getLogger(__name__)

#: Small files in a cart from which the process pays for its start.
AUTO_MIN_FILES = 1000
#: Bytes gathered before they are written into the pipe.
BATCH_BYTES = 256 * 1024
#: Seconds a finishing or abandoned process gets to report before it is killed.
REPORT_TIMEOUT = 60.0
_WORKER_PATH = os.path.abspath(worker.__file__)
#: Bytes the pipe holds (Linux; kernel memory, not the process's): batches go ahead while the worker waits
#: for its core, so neither process stalls the other at once.
PIPE_BYTES = 1024 * 1024
#: fcntl's F_SETPIPE_SZ (Linux).
_F_SETPIPE_SZ = 1031


def can_start() -> bool:
    """True when sys.executable is a plain Python that can run the worker's file from disk."""
    executable = sys.executable or ''
    name = os.path.basename(executable).lower()
    return (not getattr(sys, 'frozen', False) and name.startswith(('python', 'pypy'))
            and os.path.isfile(executable) and os.path.isfile(_WORKER_PATH))


def _widen_pipe(fd: int) -> None:
    try:
        import fcntl
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, OSError):  # not Linux, or above the system's limit: the default pipe works too
        pass


class PartCreator:
    """The part-file process of one cart: :meth:`begin` a file, :meth:`write` its bytes, then :meth:`finish`."""

    def __init__(self) -> None:
        """Start the process; OSError when it cannot start."""
        self._process: Optional[subprocess.Popen] = subprocess.Popen(
            [sys.executable, '-I', '-S', _WORKER_PATH], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, bufsize=0)
        assert self._process.stdin is not None
        self._stdin = self._process.stdin.fileno()
        _widen_pipe(self._stdin)
        self._batch = bytearray()
        #: The keys of the parts sent, in order: those the process does not confirm are incomplete.
        self._keys: List[Hashable] = []
        #: Keys of the parts of which the bytes may not all be on disk; filled by finish() and abandon().
        self.incomplete: List[Hashable] = []

    def begin(self, path: str, mtime: Optional[float], size: int, key: Optional[Hashable] = None) -> None:
        """Start the part file ``path`` of ``size`` bytes, which gets ``mtime`` when complete (None: left).

        ``key`` (default: the path) names the part in :attr:`incomplete`.
        """
        encoded = os.fsencode(path)
        self._batch += worker.RECORD.pack(len(encoded), size, math.nan if mtime is None else mtime)
        self._batch += encoded
        self._keys.append(path if key is None else key)

    def write(self, piece: memoryview) -> None:
        """Add bytes of the current file (copied: the piece may be reused at once)."""
        self._batch += piece
        if len(self._batch) >= BATCH_BYTES:
            self._send()

    def _send(self) -> None:
        if self._process is None:  # reaped after a failure: nothing more goes out
            del self._batch[:]
            return
        view = memoryview(self._batch)
        try:
            while len(view):
                view = view[os.write(self._stdin, view):]
        except OSError:  # the process is gone: its report says why
            view.release()
            del self._batch[:]
            self._collect()
            raise ArchiveError('the part-file process ended before the download did') from None
        view.release()
        del self._batch[:]

    def finish(self) -> None:
        """Wait until every part file is made; raise the process's error (OSError) if one was not."""
        self._send()
        self._collect()

    def abandon(self) -> None:
        """Stop after the files sent complete; afterwards the process is gone and :attr:`incomplete` holds the rest."""
        try:
            self.finish()
        except Exception:  # noqa: BLE001 - the download is failing already; incomplete says what is lost
            pass

    def _collect(self) -> None:
        """Close the input, read the report, reap the process; raise unless every file sent was made."""
        process, self._process = self._process, None
        if process is None:
            return
        process.stdin.close()  # type: ignore[union-attr]
        process.stdin = None  # closed: communicate() only reads the report
        try:
            report, _ = process.communicate(timeout=REPORT_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            report, _ = process.communicate()
            report = b''
        made, problem = _read_report(report)
        self.incomplete = self._keys[made:]
        self._keys = []
        if problem is not None:
            raise problem
        if self.incomplete:
            raise ArchiveError('the part-file process made {} of {} files'.format(made, made + len(self.incomplete)))


def _read_report(report: bytes) -> Tuple[int, Optional[Exception]]:
    """``(files made, error or None)`` of the worker's output; an unreadable one made nothing."""
    if not report.startswith(worker.GREETING):
        return 0, ArchiveError('the part-file process did not start as a Python worker')
    body = report[len(worker.GREETING):]
    if body[:1] == worker.DONE and len(body) == 1 + worker.COUNT.size:
        return worker.COUNT.unpack_from(body, 1)[0], None
    if body[:1] == worker.FAILED and len(body) >= 1 + worker.PROBLEM.size:
        made, code, text_length, path_length = worker.PROBLEM.unpack_from(body, 1)
        start = 1 + worker.PROBLEM.size
        text = body[start:start + text_length].decode('utf-8', 'replace')
        path = os.fsdecode(body[start + text_length:start + text_length + path_length])
        if code == errno.EISDIR:
            return made, UnsafeArchiveError('{} is a directory'.format(path), path)
        return made, OSError(code, text, path)
    return 0, ArchiveError('the part-file process ended without its report')


def start_creator(small_files: int) -> Optional[PartCreator]:
    """A PartCreator when ``small_files`` make it pay and it starts; None: write the files in this process."""
    if small_files < AUTO_MIN_FILES or not can_start():
        return None
    try:
        return PartCreator()
    except OSError as err:
        LOGGER.debug('the part-file process did not start (%s): writing the files in this process', err)
        return None
