"""Making the per-file tuples of a bundle (FileObjs, the core's FileResults) without the namedtuple's frame.

:func:`tuple_maker` makes a function that builds the very object
``kind(*fields)`` builds; the unit tests (``test_per_file_fast_paths.py``)
hold the two equal, type included.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Tuple

from ..metadata import FileObj


def _plain_namedtuple(kind: type) -> bool:
    """True when ``kind(*fields)`` is exactly ``tuple.__new__(kind, fields)``.

    That holds for a namedtuple class, and for a subclass of one that adds no
    ``__new__`` of its own (the FileObj of this package).
    """
    base = kind if kind.__bases__ == (tuple,) else kind.__bases__[0]
    return (kind.__bases__ in ((tuple,), (base,)) and (base is kind or '__new__' not in vars(kind))
            and base.__bases__ == (tuple,) and getattr(base, '_fields', None) == getattr(kind, '_fields', ())
            and callable(getattr(base, '_make', None)))


def tuple_maker(kind: type) -> Callable[[Tuple[Any, ...]], Any]:
    """A function of ``fields`` that returns ``kind(*fields)``.

    The namedtuple's ``__new__`` is a Python function around ``tuple.__new__``;
    calling the latter makes the same object without that frame (it runs once
    per file). Any other class gets the plain call.
    """
    if _plain_namedtuple(kind):
        return functools.partial(tuple.__new__, kind)
    return lambda fields: kind(*fields)


#: A FileObj from its 10 fields in FILE_KEYS order.
new_file_obj = tuple_maker(FileObj)
