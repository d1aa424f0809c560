"""Writing files fast: pieces of a size the page cache takes well, and space reserved up front.

Both data paths hold their bytes in large reused buffers (``chunk_size``,
1 MiB by default) because large reads and hash updates are cheap. Large
*writes* into a file are not always: on Linux with ext4, one ``write()`` of
1 MiB is slower than the same bytes written in smaller pieces (the figures are
in ``benchmarks/README.md``, "bundle -> file"), so every write goes through here.

:func:`reserve_space` asks the file system for a big file's blocks before
its bytes arrive (``fallocate(2)``, Linux only): a full disk then fails the
file at its start, and ext4 hands out the blocks in one extent instead of
piece by piece (measured in ``benchmarks/README.md``).
"""
from __future__ import annotations

import errno
import functools
import os
import sys
from typing import Any, Callable, Optional, Union

#: The largest piece handed to one ``write()`` call.
WRITE_SIZE = 128 * 1024

Buffer = Union[bytes, bytearray, memoryview]


def write_all(write: Callable[[Buffer], Optional[int]], data: Buffer) -> None:
    """Write every byte of ``data`` through ``write``, at most WRITE_SIZE bytes per call.

    ``write`` may take part of a piece (raw files, sockets) and say so by its
    return value; ``None`` counts as "all of it", which is what most
    file-like writers without a return value mean.
    """
    view = data  # made a memoryview only when it has to be sliced
    while len(view):
        piece = view if len(view) <= WRITE_SIZE else memoryview(view)[:WRITE_SIZE]
        written = write(piece)
        if written is None:
            written = len(piece)
        elif written <= 0:
            raise OSError('the output accepted no bytes: is it non-blocking?')
        if written == len(view):
            return
        view = memoryview(view)[written:]


@functools.lru_cache(maxsize=None)
def _fallocate() -> Optional[Any]:
    """libc's ``fallocate`` on Linux, looked up on first use; None elsewhere.

    Not :func:`os.posix_fallocate`: where the file system cannot reserve
    blocks, glibc emulates it by writing into every block, which would double
    the writes on NFS and the like. ``fallocate`` just says it cannot.
    ctypes is imported here, not with the module: only big downloads need it.
    """
    if not sys.platform.startswith('linux'):
        return None
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols, libc's among them
    except OSError:
        return None
    function = getattr(libc, 'fallocate64', None)
    if function is None and ctypes.sizeof(ctypes.c_long) == 8:  # musl: off_t is 64-bit anyway
        function = getattr(libc, 'fallocate', None)
    if function is None:
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    function.restype = ctypes.c_int
    return function


#: fallocate mode: reserve blocks but leave the file's size alone, so it still tells how much was written.
_FALLOC_FL_KEEP_SIZE = 1


def reserve_space(fd: int, size: int, path: Optional[str] = None) -> None:
    """Reserve ``size`` bytes for the new file ``fd`` (at ``path``) where the file system does so natively.

    Raises OSError (ENOSPC, EDQUOT, EFBIG, naming ``path``) when the space
    is not there; does nothing where reserving is not supported (other
    systems, file systems without it).
    """
    fallocate = _fallocate() if size > 0 else None
    if fallocate is None or fallocate(fd, _FALLOC_FL_KEEP_SIZE, 0, size) == 0:
        return
    import ctypes
    code = ctypes.get_errno()
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        raise OSError(code, '{} (reserving {} bytes)'.format(os.strerror(code), size), path)
