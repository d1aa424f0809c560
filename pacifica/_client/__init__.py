"""Internals shared by :mod:`pacifica.uploader` and :mod:`pacifica.downloader`.

One HTTP client (:mod:`.transport`), one redaction rule (:mod:`.redact`), one exception tree
(:mod:`.exceptions`) and one configuration object (:mod:`.config`). Import the public names from
``pacifica.uploader`` or ``pacifica.downloader``; this package's layout may
change.
"""
from .config import TransferConfig
from .exceptions import *  # noqa: F401,F403 - the tree is the public surface
from .exceptions import __all__ as _exception_names
from .common import CommonBase
from .redact import redact_auth, redact_url
from .keywords import IgnoredKeywordWarning

__all__ = ['CommonBase', 'IgnoredKeywordWarning', 'TransferConfig', 'redact_auth', 'redact_url', *_exception_names]
