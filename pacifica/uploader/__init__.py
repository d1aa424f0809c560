"""Upload data sets to Pacifica: metadata, bundles, the Ingest server.

A drop-in for pacifica-uploader 0.3.1 (``from pacifica.uploader import
Uploader, bundler``) with streaming uploads (:meth:`Uploader.upload_bundle`),
job following (:meth:`Uploader.wait`), one exception tree under
:class:`PacificaError` and every tunable in :class:`TransferConfig`.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import *  # noqa: F401,F403 - the exception tree is public API
from pacifica._client.exceptions import __all__ as _exception_names
from pacifica._client.keywords import IgnoredKeywordWarning
from pacifica._client.version import __version__

from .uploader import Uploader

__all__ = ['Uploader', 'bundler', 'TransferConfig', 'IgnoredKeywordWarning', '__version__', *_exception_names]


def __getattr__(name: str) -> ModuleType:
    """Import the ``bundler`` subpackage on first use (``pacifica.uploader.bundler``)."""
    if name == 'bundler':
        return importlib.import_module('.bundler', __name__)
    raise AttributeError('module {!r} has no attribute {!r}'.format(__name__, name))
