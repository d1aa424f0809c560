"""Building the FileObjs of a bundle: one per file, so the plain namedtuple call is made cheaper.

:data:`new_file_obj` makes the very object ``FileObj(*fields)`` makes; the
unit tests (``test_per_file_fast_paths.py``) hold the two equal, type included.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Tuple

from ..metadata import FileObj


def _plain_file_obj() -> bool:
    """True when ``FileObj(*fields)`` is exactly ``tuple.__new__(FileObj, fields)``.

    That holds for a namedtuple subclass that adds no ``__new__`` of its own,
    the FileObj of this package.
    """
    base = FileObj.__bases__[0]
    return (FileObj.__bases__ == (base,) and '__new__' not in vars(FileObj) and base.__bases__ == (tuple,)
            and getattr(base, '_fields', None) == FileObj._fields and callable(getattr(base, '_make', None)))


def _file_obj_from_fields(fields: Tuple[Any, ...]) -> Any:
    """The plain way: ``FileObj(*fields)``."""
    return FileObj(*fields)


#: A FileObj from its 10 fields in FILE_KEYS order. The namedtuple's ``__new__`` is a Python
#: function around ``tuple.__new__``; calling the latter makes the same object without that frame.
new_file_obj: Callable[[Tuple[Any, ...]], Any] = (functools.partial(tuple.__new__, FileObj) if _plain_file_obj()
                                                  else _file_obj_from_fields)
