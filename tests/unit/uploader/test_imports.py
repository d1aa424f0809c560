"""The uploader's exports beyond the pinned lists of tests/unit/test_exports.py: one CommonBase, lazy bundler."""
from __future__ import annotations

import logging
import sys
import types

import pytest

import pacifica._client.exceptions as exceptions_module


def test_loggers_and_shared_common_base():
    from pacifica._client.common import CommonBase
    from pacifica.uploader.common import CommonBase as UploaderCommonBase
    from pacifica.uploader.metadata.policyquery import LOGGER as POLICY_LOGGER
    from pacifica.uploader.uploader import LOGGER

    assert UploaderCommonBase is CommonBase
    assert isinstance(LOGGER, logging.Logger) and isinstance(POLICY_LOGGER, logging.Logger)


def test_the_whole_exception_tree_is_exported():
    import pacifica.uploader as package

    for name in exceptions_module.__all__:
        assert getattr(package, name) is getattr(exceptions_module, name)
        assert name in package.__all__
    assert issubclass(package.UploadLengthError, package.PacificaError)


def test_bundler_is_imported_on_demand(monkeypatch):
    """``from pacifica.uploader import Uploader, bundler`` goes through the package's lazy attribute."""
    import pacifica.uploader as package

    stand_in = types.ModuleType('pacifica.uploader.bundler')
    monkeypatch.setitem(sys.modules, 'pacifica.uploader.bundler', stand_in)
    if 'bundler' in vars(package):  # already imported for real
        monkeypatch.delattr(package, 'bundler')
    from pacifica.uploader import Uploader, bundler  # noqa: F401

    assert bundler is stand_in
    with pytest.raises(AttributeError):
        package.no_such_thing  # noqa: B018
