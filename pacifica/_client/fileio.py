"""Writing a buffer out in pieces of a size the page cache takes fast.

Both data paths hold their bytes in large reused buffers (``chunk_size``,
1 MiB by default) because large reads and hash updates are cheap. Large
*writes* into a file are not always: on Linux 6.x with ext4, one ``write()``
of 1 MiB measured 3 to 5 times slower than the same bytes written 128 KiB at a
time (``benchmarks/README.md``, "bundle -> file"). Slicing costs eight system
calls per MiB, which no sink notices, so every write goes through here.
"""
from __future__ import annotations

from typing import Callable, Optional, Union

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
