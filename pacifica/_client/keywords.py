"""Keyword arguments a call does not know: warned about, then ignored.

pacifica-uploader 0.3 and pacifica-downloader 0.3/0.4 read their keywords
with ``kwargs.get(...)`` and silently ignored the rest, so programs written
against them may pass keywords that never did anything. Such programs must
keep running, but a typo (``hashfun='sha256'``) should not go unnoticed: the
unknown names are dropped with one :class:`IgnoredKeywordWarning` that names
them, the closest accepted name, and every accepted one.
"""
from __future__ import annotations

import difflib
import warnings
from typing import Any, Collection, Dict, Mapping

__all__ = ['IgnoredKeywordWarning', 'drop_unknown_keywords']


class IgnoredKeywordWarning(UserWarning):
    """A keyword argument the call does not understand was ignored."""


def drop_unknown_keywords(owner: str, kwargs: Mapping[str, Any], accepted: Collection[str],
                          stacklevel: int = 2) -> Dict[str, Any]:
    """Return the items of ``kwargs`` whose names are in ``accepted``; warn once about the others.

    ``owner`` names the call in the message (``'Bundler()'``). ``stacklevel``
    counts as for :func:`warnings.warn` issued by the function calling this
    helper: 2 points the warning at that function's caller.
    """
    unknown = [name for name in kwargs if name not in accepted]
    if not unknown:
        return dict(kwargs)
    choices = sorted(accepted)
    described = []
    for name in unknown:
        close = difflib.get_close_matches(name, choices, n=1)
        described.append('{!r} (did you mean {!r}?)'.format(name, close[0]) if close else repr(name))
    warnings.warn('{} ignores unknown keyword argument(s) {}; it accepts {}'.format(
        owner, ', '.join(described), ', '.join(choices)), IgnoredKeywordWarning, stacklevel=stacklevel + 1)
    return {name: value for name, value in kwargs.items() if name in accepted}
