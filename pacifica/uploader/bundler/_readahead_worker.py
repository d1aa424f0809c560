"""The read-ahead process: reads and hashes small files for a Bundler in another process.

Run as ``python -I -S _readahead_worker.py HASHNAME DIGEST_BYTES`` by
:mod:`.readahead`; it imports nothing but the standard library, so that it
starts fast and runs no site or user code. The protocol:

- stdout: the line :data:`GREETING` as soon as the worker runs.
- stdin: one request per file, ``<size in decimal ASCII> <path>\\0`` (the path
  in the file system encoding; no path holds a NUL), until end of file. They
  are read as they come, so memory stays flat however many files there are.
- stdout: one record per request, in order: ``0x00 <size (Q)><digest><the
  file's bytes>`` for a file read whole, or ``0x01 <problem (q)><number
  (q)><text length (I)><text (UTF-8)>`` for the first file that cannot be
  read as listed, after which the worker exits. Integers are little endian.
  Problems: :data:`CANNOT_OPEN` (number: errno, text: strerror),
  :data:`SHRANK` (number: bytes found), :data:`GREW`, :data:`NOT_REGULAR`.
"""
import hashlib
import os
import signal
import struct
import sys

GREETING = b'pacifica read-ahead 2\n'
SIZE = struct.Struct('<Q')
PROBLEM = struct.Struct('<qqI')
OK, FAILED = b'\x00', b'\x01'
CANNOT_OPEN, SHRANK, GREW, NOT_REGULAR = PROBLEMS = (1, 2, 3, 4)
#: Pipe size on Linux: with 1 MiB instead of 64 KiB the processes wake each other far less often.
PIPE_SIZE = 1 << 20
#: The buffers on each side of the pipe: a quarter of it, so the writer refills while the reader drains.
BUFFER_SIZE = PIPE_SIZE // 4
_REQUEST_READ = 1 << 16
#: O_NONBLOCK: a FIFO or device swapped in for a listed file must not block open(2) for ever
#: (regular files ignore the flag).
OPEN_FLAGS = (os.O_RDONLY | getattr(os, 'O_BINARY', 0) | getattr(os, 'O_CLOEXEC', 0)
               | getattr(os, 'O_NONBLOCK', 0))


def _requests(fd):
    """(path, size) of each request on ``fd``, read as they arrive."""
    tail = b''
    while True:
        chunk = os.read(fd, _REQUEST_READ)
        if not chunk:
            return
        parts = (tail + chunk).split(b'\x00')
        tail = parts.pop()
        for part in parts:
            size, _, path = part.partition(b' ')
            yield path, int(size)


def _read_rest(fd, data, size):
    """``data`` completed to ``size`` bytes after a short first read, or a problem."""
    while len(data) < size:
        more = os.read(fd, size + 1 - len(data))
        if not more:
            return None, (SHRANK, len(data), '')
        data += more
    return (None, (GREW, 0, '')) if len(data) > size else (data, None)


def read_whole(path, size):
    """(data, None) or (None, (problem, number, text)) for one file that should hold ``size`` bytes.

    The first read asks for one byte more than the size: a regular file
    returns fewer bytes than asked only at its end, so the short read that
    completes the size also proves that nothing follows. The bundler uses
    this for the small files it reads itself, too.
    """
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as error:
        return None, (CANNOT_OPEN, error.errno or 0, error.strerror or str(error))
    try:
        data = os.read(fd, size + 1)
        if len(data) == size:  # the short read that proves the end: nearly every file
            return data, None
        return _read_rest(fd, data, size)
    except BlockingIOError:  # a FIFO swapped in for the listed file
        return None, (NOT_REGULAR, 0, '')
    except OSError as error:
        return None, (CANNOT_OPEN, error.errno or 0, error.strerror or str(error))
    finally:
        os.close(fd)


def _prepare_pipes(*fds):
    """Binary pipes on Windows (no newline translation, ever); 1 MiB pipes on Linux."""
    if sys.platform == 'win32':
        import msvcrt
        for fd in fds:
            msvcrt.setmode(fd, os.O_BINARY)
    if sys.platform.startswith('linux'):
        import fcntl
        for fd in fds:
            try:
                fcntl.fcntl(fd, getattr(fcntl, 'F_SETPIPE_SZ', 1031), PIPE_SIZE)
            except OSError:
                pass


def main(hash_name, digest_bytes):
    """Serve the files requested on stdin."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    _prepare_pipes(stdin, stdout)
    out = os.fdopen(stdout, 'wb', buffering=BUFFER_SIZE, closefd=False)
    out.write(GREETING)
    out.flush()
    prototype = hashlib.new(hash_name, usedforsecurity=False)
    shake = prototype.digest_size == 0
    for path, size in _requests(stdin):
        data, problem = read_whole(path, size)
        if problem is not None:
            code, number, text = problem
            encoded = text.encode('utf-8', 'replace')
            out.write(FAILED + PROBLEM.pack(code, number, len(encoded)) + encoded)
            break
        hashval = prototype.copy()
        hashval.update(data)
        out.write(OK + SIZE.pack(size) + (hashval.digest(digest_bytes) if shake  # type: ignore[call-arg]
                                          else hashval.digest()))
        out.write(data)
    out.flush()


if __name__ == '__main__':
    try:
        main(sys.argv[1], int(sys.argv[2]))
    except BrokenPipeError:  # the bundler stopped reading: nothing left to do
        sys.exit(1)
