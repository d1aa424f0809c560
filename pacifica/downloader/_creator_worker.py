"""The part-file process: creates the small part files a download sends it (standard library only).

Run as ``python -I -S _creator_worker.py`` by :mod:`._creator`, so that file
creation runs beside the download's tar reading and hashing on a core of its
own. It reads records from stdin, each :data:`RECORD` (path length, data
length, modification time or NaN) followed by the path (file-system bytes)
and the data, and creates each part file as :func:`create_part` does in the
download process. At the end of its input it writes :data:`DONE` and the
number of files made; on the first error :data:`FAILED`, that number, the
errno, the message and the path, and stops (its own half-made file removed). A record
cut short by the end of the input (the download gave up midway) is dropped,
never written.
"""
from __future__ import annotations

import errno
import math
import os
import signal
import stat
import struct
import sys
from typing import BinaryIO

GREETING = b'pacifica-part-creator 1\n'
#: Path length, data length, modification time (NaN: leave it).
RECORD = struct.Struct('<IQd')
DONE = b'K'
FAILED = b'E'
#: After DONE: files made. After FAILED: files made before the failing one, errno, the lengths of the
#: message and of the path that follow.
COUNT = struct.Struct('<Q')
PROBLEM = struct.Struct('<QiII')
BUFFER_SIZE = 256 * 1024

OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0) | getattr(os, 'O_NOFOLLOW', 0)
#: Whether os.utime can set times through a file descriptor here (not on Windows).
UTIME_FD = os.utime in os.supports_fd


class PartIsDirectory(OSError):
    """A directory stands where a part file goes (the download refuses to write there)."""


def create_part(part_path: str) -> int:
    """Open a fresh part file; a stale one from a killed run is removed first, a directory refused."""
    try:
        return os.open(part_path, OPEN_FLAGS, 0o666)
    except FileExistsError:
        info = os.lstat(part_path)
        if stat.S_ISDIR(info.st_mode):
            raise PartIsDirectory(errno.EISDIR, 'a directory stands where the part file goes', part_path) from None
        os.unlink(part_path)
        return os.open(part_path, OPEN_FLAGS, 0o666)


def _write_file(path: bytes, data: bytes, mtime: float) -> None:
    name = os.fsdecode(path)
    fd = create_part(name)
    try:
        view = memoryview(data)
        while len(view):
            view = view[os.write(fd, view):]
        if not math.isnan(mtime) and UTIME_FD:
            os.utime(fd, (mtime, mtime))
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    if not math.isnan(mtime) and not UTIME_FD:
        os.utime(name, (mtime, mtime))


def serve(source: BinaryIO, sink: BinaryIO) -> int:
    """Create the files ``source`` describes; report to ``sink``; 0 when all were made."""
    sink.write(GREETING)
    sink.flush()
    made = 0
    while True:
        head = source.read(RECORD.size)
        if len(head) < RECORD.size:
            break
        path_length, size, mtime = RECORD.unpack(head)
        path = source.read(path_length)
        data = source.read(size)
        if len(path) < path_length or len(data) < size:
            break
        try:
            _write_file(path, data, mtime)
        except OSError as err:
            text = str(err.strerror or err).encode('utf-8', 'replace')
            sink.write(FAILED + PROBLEM.pack(made, err.errno or 0, len(text), len(path)) + text + path)
            sink.flush()
            return 1
        made += 1
    sink.write(DONE + COUNT.pack(made))
    sink.flush()
    return 0


if __name__ == '__main__':
    # Ctrl-C reaches the whole process group: the download process decides, and ends the input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(0, 'rb', buffering=BUFFER_SIZE, closefd=False) as stdin, open(1, 'wb', closefd=False) as stdout:
        sys.exit(serve(stdin, stdout))
