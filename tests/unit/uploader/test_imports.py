"""Every name of contract section 2 for the uploader, and the package's exports."""
from __future__ import annotations

import importlib
import logging
import sys
import types

import pytest

import pacifica._client.exceptions as exceptions_module

NAMES = {
    'pacifica.uploader': ['Uploader', 'TransferConfig', 'PacificaError', '__version__'],
    'pacifica.uploader.uploader': ['Uploader', 'LOGGER'],
    'pacifica.uploader.common': ['CommonBase'],
    'pacifica.uploader.metadata': ['MetaData', 'MetaObj', 'FileObj', 'MetaUpdate', 'metadata_encode',
                                   'metadata_decode'],
    'pacifica.uploader.metadata.metadata': [
        'MetaData', 'MetaObj', 'FileObj', 'metadata_encode', 'metadata_decode', 'META_KEYS', 'FILE_KEYS',
        '_MetaObj', '_FileObj', 'file_or_meta_obj', 'MetaDataEncoder', 'MetaDataDecoder', 'MetaObjEncoder',
        'FileObjEncoder', 'MetaObjDecoder'],
    'pacifica.uploader.metadata.metaupdate': ['MetaUpdate'],
    'pacifica.uploader.metadata.mjson': ['strip_obj', 'generate_namedtuple_encoder', 'generate_namedtuple_decoder'],
    'pacifica.uploader.metadata.policyquery': [
        'PolicyQuery', 'PolicyQueryData', '_PolicyQueryData', 'QUERY_KEYS', 'PolicyQueryDataEncoder',
        'PolicyQueryDataDecoder', '_mangle_encode', '_mangle_decode', 'LOGGER'],
    # the downloader's public additions
    'pacifica.downloader': ['Downloader', 'CartAPI', 'CloudEvent', 'TransactionInfo', 'fetch_transaction',
                            'UnknownTransactionError'],
    'pacifica.downloader.policy': ['TransactionInfo', 'fetch_transaction'],
}


@pytest.mark.parametrize('module_name', sorted(NAMES))
def test_contract_names_import(module_name):
    module = importlib.import_module(module_name)
    for name in NAMES[module_name]:
        assert hasattr(module, name), '{}.{}'.format(module_name, name)


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
