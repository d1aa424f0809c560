"""Reading a caller's file object: ``readinto`` where it works, ``read()`` where not, exact sizes either way.

``fileobj`` entries need nothing but ``read()``. Binary file objects that
really have ``readinto`` are read straight into the output buffer, the rest
(text, objects that only inherited io.RawIOBase's stub) with ``read()``.
"""
from __future__ import annotations

import io
from typing import Any, Callable, Optional

from .filechanged import grew_while_read, shrank_while_read

#: What a first readinto call raises when the object only inherited the method (io.RawIOBase's
#: stub raises NotImplementedError) or cannot serve it: such an object is read with read().
READINTO_MISSING = (NotImplementedError, AttributeError, io.UnsupportedOperation)


class ReadintoMissing(Exception):
    """The first readinto call of a file object failed before reading anything."""


def checked_readinto(readinto: Callable[[Any], Optional[int]]) -> Callable[[Any], Optional[int]]:
    """``readinto`` whose first call, if it fails as in :data:`READINTO_MISSING`, raises ReadintoMissing.

    Nothing was read then, so the member can start over with read(); once a
    call succeeded, later errors are the object's own and pass through.
    """
    proven = False

    def call(buffer: Any) -> Optional[int]:
        nonlocal proven
        if proven:
            return readinto(buffer)
        try:
            count = readinto(buffer)
        except READINTO_MISSING as error:
            raise ReadintoMissing() from error
        proven = True
        return count
    return call


def as_bytes(data: Any) -> Any:
    """What a read() returned, as something with a byte length: str encoded as UTF-8, buffers as bytes views."""
    if isinstance(data, (bytes, type(None))):
        return data
    if isinstance(data, str):
        return data.encode('utf-8')
    return memoryview(data).cast('B')


def fill_from_readinto(readinto: Callable[[Any], Optional[int]], target: memoryview, name: str,
                       probe: bytearray) -> bool:
    """Fill all of ``target`` with ``readinto`` and make sure EOF follows (read into the 1-byte ``probe``).

    False, with nothing read, when the first call fails as in
    :data:`READINTO_MISSING`: the caller then reads the object with read().
    A file of another size raises what :mod:`.filechanged` says.
    """
    size = len(target)
    try:
        count = readinto(target if size else probe)  # an empty file's first read is the EOF check
    except READINTO_MISSING:
        return False
    if not size:
        if count:
            raise grew_while_read(name, size)
        return True
    finish_filling(readinto, target, count, name, probe)
    return True


def finish_filling(readinto: Callable[[Any], Optional[int]], target: memoryview, count: Optional[int], name: str,
                   probe: bytearray) -> None:
    """The rest of :func:`fill_from_readinto` once its first call into a non-empty ``target`` returned ``count``.

    ``TarWriter._fileobj_in_place`` makes the first call itself and checks
    the common case (one call filled ``target``, the next finds EOF) inline;
    every other first outcome comes here.
    """
    size = len(target)
    filled = count or 0
    while count and filled < size:
        count = readinto(target[filled:])
        filled += count or 0
    if filled < size:
        raise shrank_while_read(name, filled, size)
    if readinto(probe):
        raise grew_while_read(name, size)
