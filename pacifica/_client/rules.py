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
"""
from __future__ import annotations

import hashlib
import math
import numbers
from typing import Any, Optional

from .exceptions import ConfigurationError, UsageError

__all__ = ['seconds', 'seconds_or_none', 'new_hash']


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


def seconds(value: Any, *, name: str, zero: bool = False, infinite: bool = False) -> float:
    """``value`` as a float number of seconds; ConfigurationError naming ``name`` and what it accepts.

    A number is an int or a float (any :class:`numbers.Real`) that is no bool.
    NaN and negative numbers are always refused; 0 only with ``zero``, and
    infinity only with ``infinite``, where the caller gives them a meaning.
    """
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
