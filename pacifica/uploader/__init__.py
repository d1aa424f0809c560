"""Upload data sets to Pacifica: metadata, bundles, the Ingest server.

A drop-in for pacifica-uploader 0.3.1 (``from pacifica.uploader import
Uploader, bundler``) with streaming uploads (:meth:`Uploader.upload_bundle`),
job following (:meth:`Uploader.wait`), one exception tree under
:class:`PacificaError` and every tunable in :class:`TransferConfig`.

A dataset too large for one bundle goes up in shards, each ingested exactly
once and resumable from its manifest: :func:`upload_dataset` (see
:mod:`pacifica.uploader.dataset`).
"""
from __future__ import annotations

import importlib
from typing import Any

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import *  # noqa: F401,F403 - the exception tree is public API
from pacifica._client.exceptions import __all__ as _exception_names
from pacifica._client.keywords import IgnoredKeywordWarning
from pacifica._client.version import __version__

from .uploader import Uploader

#: The sharded dataset upload's names, imported from .dataset on first use (importing the uploader stays light).
_DATASET_NAMES = ('upload_dataset', 'DatasetSource', 'RunReport', 'ManifestError', 'DatasetChangedError',
                  'EmptyDatasetError')

__all__ = ['Uploader', 'bundler', 'TransferConfig', 'IgnoredKeywordWarning', '__version__', *_exception_names,
           *_DATASET_NAMES]


def __getattr__(name: str) -> Any:
    """Import the ``bundler`` subpackage and the dataset upload's names on first use."""
    if name == 'bundler':
        return importlib.import_module('.bundler', __name__)
    if name in _DATASET_NAMES:
        return getattr(importlib.import_module('.dataset', __name__), name)
    raise AttributeError('module {!r} has no attribute {!r}'.format(__name__, name))
