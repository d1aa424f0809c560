"""The errors for a file that changed between the up-front check and its turn in the bundle, built here only.

Every way the bundler reads a file (a small ``path`` file whole, a large one
piece by piece, a caller's ``fileobj``, the read-ahead process) reports a
change with a :class:`~pacifica._client.exceptions.FileChangedError` from
this module, so the wording is the same whichever way found it. Each message
names the member, says what was found and, where there is one, the path.
"""
from __future__ import annotations

import os
import stat
from typing import Any, Optional, Tuple

from pacifica._client.exceptions import FileChangedError

from . import _readahead_worker as worker

#: How a small file is read whole, here and in the read-ahead process alike (standard library only there).
read_whole_file = worker.read_whole

#: A problem of :func:`read_whole_file`: (kind, number, text).
ReadProblem = Tuple[int, int, str]


def _shown(path: Any) -> str:
    return os.fsdecode(os.fspath(path))


def unopenable(name: str, path: Any, errno: Optional[int], strerror: Optional[str]) -> FileChangedError:
    """The file cannot be opened (or read) any more: deleted, or its permissions changed."""
    return FileChangedError(errno, '{!r} cannot be opened any more ({}): {}'.format(name, _shown(path), strerror))


def not_regular(name: str, path: Any) -> FileChangedError:
    """Something else (a FIFO, a directory) took the regular file's place."""
    return FileChangedError('{!r} is no longer a regular file ({})'.format(name, _shown(path)))


def shrank(name: str, found: int, size: int,
           since: str = 'it shrank or was replaced since it was listed') -> FileChangedError:
    """The file ended before its listed size."""
    return FileChangedError('{!r} ended after {} of its {} bytes: {}'.format(name, found, size, since))


def grew(name: str, size: int, since: str = 'it grew since it was listed') -> FileChangedError:
    """The file holds more than its listed size."""
    return FileChangedError('{!r} holds more than its {} bytes: {}'.format(name, size, since))


def shrank_while_read(name: str, found: int, size: int) -> FileChangedError:
    """A file read piece by piece ended early."""
    return shrank(name, found, size, 'it shrank while it was bundled')


def grew_while_read(name: str, size: int) -> FileChangedError:
    """A file read piece by piece went on past its size."""
    return grew(name, size, 'it grew while it was bundled')


def problem_error(problem: ReadProblem, path: Any, name: str, size: int) -> FileChangedError:
    """The error for a problem that :func:`read_whole_file` (or the read-ahead process) reported."""
    code, number, text = problem
    if code == worker.CANNOT_OPEN:
        return unopenable(name, path, number, text)
    if code == worker.SHRANK:
        return shrank(name, number, size)
    if code == worker.GREW:
        return grew(name, size)
    return not_regular(name, path)


def read_small_file(path: Any, size: int, name: str) -> bytes:
    """All ``size`` bytes of a small ``path`` file; FileChangedError if it holds fewer or more now."""
    data, problem = read_whole_file(path, size)
    if problem is not None:
        raise problem_error(problem, path, name, size)
    return data


def open_for_reading(path: Any, name: str) -> int:
    """A descriptor of the regular file ``path``; FileChangedError naming the member otherwise."""
    try:
        fd = os.open(path, worker.OPEN_FLAGS)
    except OSError as error:
        raise unopenable(name, path, error.errno, error.strerror) from error
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise not_regular(name, path)
    return fd
