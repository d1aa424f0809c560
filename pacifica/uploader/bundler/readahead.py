"""Read and hash small files in a second process, so that bundling uses both cores.

A bundle of many small files spends about half its time in open, read, close
and hashing, and the other half in Python, packing the tar and the metadata.
Threads cannot split that work: each of the four calls per file gives the GIL
away and must win it back from the packing thread, so the two threads took
turns. A second process has its own GIL (the figures are in
``benchmarks/README.md``). :class:`ReadAhead` starts one
(:mod:`._readahead_worker`, standard library only), streams it the paths and
sizes of the small files, and takes back each file's size, digest
and bytes, in order, straight into the bundle's output buffer.

It is an optimisation, never a new way to fail:

- :attr:`TransferConfig.read_ahead <pacifica._client.config.TransferConfig>`
  decides whether it is tried: by default from :data:`AUTO_MIN_FILES` small
  files on. It is tried only where :data:`sys.executable` is a Python that
  can run the worker's file (:func:`can_start`);
- when the process cannot start, or ends or garbles its output midway, the
  bundler reads the remaining files itself (:class:`ReadAheadLost`);
- a file that changed since it was listed raises the same
  :class:`~pacifica._client.exceptions.FileChangedError` either way.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from typing import Any, Callable, List, Optional, Sequence

from . import _readahead_worker as worker
from .filechanged import problem_error

LOGGER = logging.getLogger(__name__)

#: Small files in a bundle from which the read-ahead process pays for its start (about 20 ms).
AUTO_MIN_FILES = 2000
#: Small files the bundler reads itself, by default, while the worker starts up.
STARTUP_FILES = 1000
#: Requests written to the worker at a time.
_FEED_BATCH = 1024
_WORKER_PATH = os.path.abspath(worker.__file__)


class ReadAheadLost(Exception):
    """The read-ahead process is gone or out of step: read the remaining files in this process."""


def can_start() -> bool:
    """True when sys.executable is a plain Python that can run the worker's file from disk.

    Frozen applications and programs that embed Python (a web server) have a
    sys.executable that is no interpreter; a zip import has no worker file.
    """
    executable = sys.executable or ''
    name = os.path.basename(executable).lower()
    return (not getattr(sys, 'frozen', False) and name.startswith(('python', 'pypy'))
            and os.path.isfile(executable) and os.path.isfile(_WORKER_PATH))


def _feed(stdin: Any, entries: Sequence[dict], start: int, wanted: Callable[[dict], bool]) -> None:
    """Write the requests for the ``wanted`` entries from ``start`` on, a batch at a time, then close stdin.

    A worker that died breaks the pipe; the reader notices that, so it is not reported here.
    """
    try:
        batch: List[bytes] = []
        for position in range(start, len(entries)):
            entry = entries[position]
            if wanted(entry):
                batch.append(b'%d %s\x00' % (entry['size'], os.fsencode(entry['path'])))
                if len(batch) == _FEED_BATCH:
                    stdin.write(b''.join(batch))
                    stdin.flush()
                    batch = []
        stdin.write(b''.join(batch))
        stdin.close()
    except (OSError, ValueError):
        pass


def _reported_problem(report: bytes, path: Any, name: str, size: int) -> Exception:
    """The FileChangedError of a worker's problem report (ReadAheadLost if the report is cut short)."""
    if len(report) < worker.PROBLEM.size:
        return ReadAheadLost('the read-ahead process ended in a problem report')
    code, number, length = worker.PROBLEM.unpack_from(report)
    if code not in worker.PROBLEMS:
        return ReadAheadLost('the read-ahead process reported problem {}'.format(code))
    text = report[worker.PROBLEM.size:worker.PROBLEM.size + length].decode('utf-8', 'replace')
    return problem_error((code, number, text), path, name, size)


class ReadAhead:
    """The read-ahead process of one stream: :meth:`take` the files in order, then :meth:`close`."""

    def __init__(self, hash_name: str, digest_bytes: int, entries: Sequence[dict], start: int,
                 wanted: Callable[[dict], bool]) -> None:
        """Start the worker for the ``wanted`` entries from ``start`` on; ReadAheadLost if it cannot start.

        Which entries those are is asked again as they come, so that the
        process holds nothing per file.

        A thread writes the requests while the bundler goes on, so the new
        interpreter's start-up costs the bundle nothing.
        """
        self._entries = entries
        self._wanted = wanted
        #: Where the search for the next file the worker sends begins.
        self._next = start
        self._greeted = False
        self._head_size = 1 + worker.SIZE.size + digest_bytes
        try:
            self._process: Optional[subprocess.Popen] = subprocess.Popen(
                [sys.executable, '-I', '-S', _WORKER_PATH, hash_name, str(digest_bytes)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                bufsize=worker.BUFFER_SIZE)
        except OSError as error:
            self._process = None
            raise ReadAheadLost('the read-ahead process did not start: {}'.format(error)) from None
        self._stdout: Any = self._process.stdout  # a BufferedReader of BUFFER_SIZE
        self._feeder = threading.Thread(target=_feed, args=(self._process.stdin, entries, start, wanted),
                                        name='pacifica-read-ahead-feeder', daemon=True)
        self._feeder.start()

    def serves(self, position: int) -> bool:
        """True when ``entries[position]`` is the next file the worker sends."""
        return position >= self._next and self._wanted(self._entries[position])

    def take(self, name: str, target: memoryview) -> bytes:
        """Fill ``target`` with the next file's bytes and return its digest (after :meth:`serves`).

        FileChangedError when the worker found the file changed since it was listed.
        """
        position = self._next
        while not self._wanted(self._entries[position]):
            position += 1
        self._next = position + 1
        size = len(target)
        try:
            if not self._greeted:
                if self._stdout.read(len(worker.GREETING)) != worker.GREETING:
                    raise ReadAheadLost('the read-ahead process did not start as a Python worker')
                self._greeted = True
            head = self._stdout.read(self._head_size)
            if head[:1] == worker.OK and len(head) == self._head_size:
                if worker.SIZE.unpack_from(head, 1)[0] != size:
                    raise ReadAheadLost('the read-ahead process sent {!r} with another size'.format(name))
                if self._stdout.readinto(target) != size:
                    raise ReadAheadLost('the read-ahead process ended in the middle of {!r}'.format(name))
                return head[1 + worker.SIZE.size:]
            if head[:1] != worker.FAILED:
                raise ReadAheadLost('the read-ahead process ended before {!r}'.format(name))
            report = head[1:] + self._stdout.read()  # the worker exits after a problem report
        except (OSError, ValueError) as error:
            raise ReadAheadLost('reading from the read-ahead process failed: {}'.format(error)) from None
        # Raised outside the try: FileChangedError is an OSError, and must not become ReadAheadLost.
        raise _reported_problem(report, self._entries[position]['path'], name, size)

    def close(self) -> None:
        """Stop the worker (it may still be reading ahead) and reap it; safe to call twice."""
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        self._feeder.join()  # the kill broke its pipe if it was still writing
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        process.wait()
