"""Rules that several parts of the library apply, each written once.

- :func:`seconds` / :func:`seconds_or_none`: what a number of seconds is. Every
  timeout, interval and ``sleeptime`` the library takes goes through them, so
  ``True``, NaN, negative numbers and text fail the same way everywhere. Each
  call site says whether 0 and infinity mean something there (see the table in
  ``docs/configuration.rst``).
- :func:`new_hash`: a hashlib object for a file checksum. Checksums here detect
  damage, they protect no secret, so they are made with
  ``usedforsecurity=False``: a FIPS-mode Python then still computes the MD5 or
  SHA-1 sums that Pacifica records, on upload and on download alike.
- :func:`is_absolute`, :func:`is_plain_name`, :func:`relative_parts`: what a
  safe relative path is. Records, the ``filename`` option and cart members all
  name files below the download folder; a name that could leave it (``..``,
  an absolute path, a NUL byte, and on Windows a drive or a backslash) is
  refused by the same rule wherever it comes from.
- :func:`is_whole_number`: an int that is no bool (a count or a size).
"""
from __future__ import annotations

import hashlib
import math
import numbers
import os
import re
from typing import Any, Optional, Tuple

from .exceptions import ConfigurationError, UsageError

__all__ = ['seconds', 'seconds_or_none', 'new_hash', 'is_absolute', 'is_plain_name', 'relative_parts',
           'is_whole_number']


def _accepted(zero: bool, infinite: bool, none_means: Optional[str]) -> str:
    """What a call site accepts, in words, for the error message."""
    text = 'a number of seconds {}'.format('>= 0' if zero else '> 0')
    if infinite:
        text += ", float('inf') included"
    if none_means:
        text += ', or None ({})'.format(none_means)
    return text


def _checked(value: Any, name: str, zero: bool, infinite: bool, none_means: Optional[str]) -> float:
    # bool is an int, but True seconds is a mistake, not a duration.
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if ok else math.nan
    if not (number > 0 or (zero and number == 0)) or (math.isinf(number) and not infinite):
        # What is no number at all is also a TypeError, as time.sleep() and the old packages' arithmetic
        # raised; a number out of range is a ValueError only, as time.sleep(-1) is.
        error = ConfigurationError if ok else UsageError
        raise error('{} must be {}, not {!r}'.format(name, _accepted(zero, infinite, none_means), value))
    return number


def seconds(value: Any, *, name: str, zero: bool = False, infinite: bool = False, text: bool = False) -> float:
    """``value`` as a float number of seconds; ConfigurationError naming ``name`` and what it accepts.

    A number is an int or a float (any :class:`numbers.Real`) that is no bool.
    NaN and negative numbers are always refused; 0 only with ``zero``, and
    infinity only with ``infinite``, where the caller gives them a meaning.
    With ``text``, a number written as a string is taken too, for options an
    old package passed through ``int()``; a string that is no number is then a
    value that cannot be used (ConfigurationError, a ValueError), as ``int('soon')`` was.
    """
    if text and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ConfigurationError('{} must be {}, not {!r}'.format(
                name, _accepted(zero, infinite, None), value)) from None
        return _checked(number, name, zero, infinite, None)
    return _checked(value, name, zero, infinite, None)


def seconds_or_none(value: Any, *, name: str, none_means: str, zero: bool = False,
                    infinite: bool = False) -> Optional[float]:
    """Like :func:`seconds`, where None is a documented choice (``none_means`` says which, in the error)."""
    if value is None:
        return None
    return _checked(value, name, zero, infinite, none_means)


def new_hash(name: str) -> Any:
    """A new hashlib object of algorithm ``name``, made for checksums (``usedforsecurity=False``).

    ValueError (from hashlib) when this Python cannot compute ``name``.
    Interpreters whose hashlib does not know the keyword get the plain call.
    """
    try:
        return hashlib.new(name, usedforsecurity=False)
    except TypeError:
        return hashlib.new(name)


def is_whole_number(value: Any) -> bool:
    """Whether ``value`` is an int and no bool (True is no count of bytes)."""
    return isinstance(value, int) and not isinstance(value, bool)


#: Characters that make a path component unsafe here: NUL everywhere, and on Windows the separators of
#: its other path syntaxes (a backslash, or a colon for a drive or an alternate data stream).
_UNSAFE_CHARACTER = re.compile('[\x00\\\\:]' if os.name == 'nt' else '\x00')


def is_absolute(path: str) -> bool:
    """Whether ``path`` names a place from the root (or, on Windows, a drive) rather than below a folder."""
    return path.startswith('/') or (os.name == 'nt' and (path.startswith('\\') or path[1:2] == ':'))


def is_plain_name(part: str) -> bool:
    """Whether ``part`` is one path component that stays in its folder on this system.

    Not empty, not ``.`` or ``..``, no ``/``, and none of the unsafe
    characters (NUL; on Windows also a backslash or a colon).
    """
    return part not in ('', '.', '..') and '/' not in part and _UNSAFE_CHARACTER.search(part) is None


def relative_parts(path: str) -> Tuple[str, ...]:
    """The components of a ``/``-separated path, each a plain name; ValueError naming the first unsafe one.

    Empty and ``.`` components vanish, as they do when tar or cartd stores
    the path, so a leading ``/`` is dropped too: callers to whom an absolute
    path means something else check :func:`is_absolute` first. The result
    may be empty (the path names the folder itself).
    """
    parts = tuple(part for part in path.split('/') if part not in ('', '.'))
    if '..' in parts or _UNSAFE_CHARACTER.search(path) is not None:  # one look at the whole path, not per part
        unsafe = next(part for part in parts if not is_plain_name(part))
        raise ValueError('path {!r} has an unsafe component {!r}'.format(path, unsafe))
    return parts
