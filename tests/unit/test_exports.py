"""The public names, pinned: removing or renaming one fails here, whatever module it moves to.

The packages' ``__all__`` are compared whole, as httpx pins its exports, so a
name added on purpose is added here too. The rest is contract sections 2 to 8:
the names old code imports from each module, and the attributes it calls.
"""
from __future__ import annotations

import importlib
import inspect
import logging
from typing import Dict, List

import pytest

#: The exception tree, exported by pacifica.uploader and pacifica.downloader.
EXCEPTIONS = [
    'PacificaError', 'ConfigurationError', 'UnsupportedHashError', 'UsageError',
    'MetadataError', 'MetadataEncodeError', 'MetadataDecodeError', 'UnknownMetaIDError', 'InvalidMetadataError',
    'MissingQueryResultsError',
    'BundleError', 'FileDataError', 'FileChangedError', 'RecordError',
    'TransportError', 'ServerConnectionError', 'RequestTimeout', 'HTTPStatusError', 'InvalidResponseError',
    'PacificaTimeoutError', 'JobTimeoutError', 'CartTimeoutError',
    'PolicyError', 'UnknownUserError', 'UnknownTransactionError', 'UnknownTransactionStatusError',
    'PolicyRejectedError',
    'IngestError', 'UploadRejectedError', 'UploadStatusError', 'UploadLengthError', 'IngestJobFailedError',
    'IngestVerificationError', 'DownloadError', 'CartRequestError', 'CartFailedError', 'CartDownloadError',
    'ArchiveError', 'UnsafeArchiveError', 'VerificationError',
    'VerificationDetail', 'ChecksumMismatch', 'SizeMismatch', 'FileMissing', 'UnexpectedFile',
]

#: The sharded dataset upload (issue 15), exported by pacifica.uploader from pacifica.uploader.dataset.
DATASET_UPLOAD = ['upload_dataset', 'DatasetSource', 'RunReport', 'ManifestError', 'DatasetChangedError',
                  'EmptyDatasetError']

#: Each public package's ``__all__``, whole.
ALL: Dict[str, List[str]] = {
    'pacifica.uploader': ['Uploader', 'bundler', 'TransferConfig', 'IgnoredKeywordWarning', '__version__',
                          *EXCEPTIONS, *DATASET_UPLOAD],
    'pacifica.uploader.dataset': [*DATASET_UPLOAD, 'ShardPlan', 'plan', 'plan_shards', 'entries_under', 'Manifest',
                                  'TransitionError', 'DATASET_KEY', 'PART_KEY', 'DatasetTags', 'dataset_tags',
                                  'shard_metadata'],
    'pacifica.downloader': ['Downloader', 'CartAPI', 'CloudEvent', 'TransactionInfo', 'fetch_transaction',
                            'download_parallel', 'download_transactions', 'manifest_transactions',
                            'dataset_transactions', 'ParallelResult',
                            'TransferConfig', 'IgnoredKeywordWarning', '__version__', *EXCEPTIONS],
    'pacifica.uploader.bundler': ['Bundler'],
    'pacifica.uploader.metadata': ['MetaData', 'MetaObj', 'FileObj', 'MetaUpdate', 'metadata_encode',
                                   'metadata_decode'],
}

#: Contract section 2: the names each module must offer (private ones included: old code imports them).
CONTRACT_NAMES: Dict[str, List[str]] = {
    'pacifica.uploader': ['Uploader', 'bundler'],
    'pacifica.uploader.uploader': ['Uploader', 'LOGGER'],
    'pacifica.uploader.common': ['CommonBase'],
    'pacifica.uploader.bundler': ['Bundler'],
    'pacifica.uploader.bundler.bundler': ['Bundler', 'HashFileObj'],
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
    'pacifica.downloader': ['Downloader'],
    'pacifica.downloader.downloader': ['Downloader'],
    'pacifica.downloader.cartapi': ['CartAPI', 'LOGGER'],
    'pacifica.downloader.cloudevent': ['CloudEvent'],
    'pacifica.downloader.policy': ['TransactionInfo', 'fetch_transaction'],  # the record look-up is public
    'pacifica.downloader.common': ['CommonBase'],
}

#: The same object under two names: (module, name) pairs that must be identical.
SAME_OBJECT = [
    [('pacifica.uploader', 'Uploader'), ('pacifica.uploader.uploader', 'Uploader')],
    [('pacifica.uploader.bundler', 'Bundler'), ('pacifica.uploader.bundler.bundler', 'Bundler')],
    [('pacifica.uploader.common', 'CommonBase'), ('pacifica.downloader.common', 'CommonBase')],
    [('pacifica.uploader.metadata', 'MetaUpdate'), ('pacifica.uploader.metadata.metaupdate', 'MetaUpdate')],
    [('pacifica.downloader', 'Downloader'), ('pacifica.downloader.downloader', 'Downloader')],
    [('pacifica.downloader', 'CartAPI'), ('pacifica.downloader.cartapi', 'CartAPI')],
    [('pacifica.downloader', 'CloudEvent'), ('pacifica.downloader.cloudevent', 'CloudEvent')],
    [('pacifica.downloader', 'TransactionInfo'), ('pacifica.downloader.policy', 'TransactionInfo')],
    [('pacifica.uploader', 'TransferConfig'), ('pacifica.downloader', 'TransferConfig')],
] + [[('pacifica.uploader.metadata', name), ('pacifica.uploader.metadata.metadata', name)]
     for name in ('MetaData', 'MetaObj', 'FileObj', 'metadata_encode', 'metadata_decode')] + [
    [('pacifica.uploader', name), ('pacifica.downloader', name), ('pacifica._client.exceptions', name)]
    for name in EXCEPTIONS] + [
    [('pacifica.uploader', name), ('pacifica.uploader.dataset', name)] for name in DATASET_UPLOAD]

#: Contract sections 3 to 8: the attributes callers use, on the class (instance attributes are checked below).
MEMBERS = {
    ('pacifica.uploader.common', 'CommonBase'): ['_server_url', '_setup_requests_session', 'session'],
    ('pacifica.uploader', 'Uploader'): ['upload', 'getstate', 'upload_bundle', 'wait'],
    ('pacifica.uploader.bundler', 'Bundler'): [
        'stream', '_save_total_size', '_setup_notify_thread', '_strip_subdir', '_build_file_info',
        '_tarinfo_from_file_data'],
    ('pacifica.uploader.bundler.bundler', 'HashFileObj'): ['read', 'hashdigest'],
    ('pacifica.uploader.metadata', 'MetaData'): ['is_valid', 'append', 'extend', 'insert', 'remove', 'pop'],
    ('pacifica.uploader.metadata', 'MetaUpdate'): [
        'get_auth', 'query_results', 'dependent_meta_id', 'update_parents', 'directory_prefix'],
    ('pacifica.uploader.metadata.policyquery', 'PolicyQuery'): [
        'get_user', 'set_user', 'tojson', 'fromjson', 'get_results', 'valid_metadata'],
    ('pacifica.downloader', 'Downloader'): ['transactioninfo', 'cloudevent', '_download_from_url'],
    ('pacifica.downloader', 'CartAPI'): ['setup_cart', 'wait_for_cart', 'auth', 'cart_api_url'],
    ('pacifica.downloader', 'CloudEvent'): ['yield_files'],
    ('pacifica.downloader', 'TransactionInfo'): ['yield_files'],
}

#: Contract sections 6 and 7: the namedtuples' fields, in order.
FIELDS = {
    'MetaObj': ['sourceTable', 'destinationTable', 'metaID', 'displayType', 'displayTitle', 'queryDependency',
                'valueField', 'queryFields', 'displayFormat', 'key', 'value', 'directoryOrder', 'query_results'],
    'FileObj': ['destinationTable', 'name', 'source', 'subdir', 'size', 'hashtype', 'hashsum', 'mimetype', 'ctime',
                'mtime'],
    'PolicyQueryData': ['user', 'columns', 'from_table', 'where'],
}


def _get(module: str, name: str) -> object:
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize('module', sorted(ALL))
def test_all_is_pinned(module: str) -> None:
    exported = importlib.import_module(module).__all__
    removed = sorted(set(ALL[module]) - set(exported))
    added = sorted(set(exported) - set(ALL[module]))
    assert not removed, '{} no longer exports {}'.format(module, removed)
    assert not added, '{} exports {} too: if on purpose, add them to the lists above'.format(module, added)
    assert len(set(exported)) == len(exported), 'a name is listed twice'


@pytest.mark.parametrize('module', sorted(ALL))
def test_every_exported_name_resolves_and_star_import_gives_exactly_them(module: str) -> None:
    namespace: Dict[str, object] = {}
    exec('from {} import *'.format(module), namespace)  # noqa: S102 - the star import is what is tested
    namespace.pop('__builtins__')
    assert sorted(namespace) == sorted(importlib.import_module(module).__all__)
    for name, value in namespace.items():
        assert value is _get(module, name)


@pytest.mark.parametrize('module', sorted(ALL))
def test_every_public_class_and_function_of_a_package_is_exported(module: str) -> None:
    """A class or function the package offers without a leading underscore is in its ``__all__``."""
    package = importlib.import_module(module)
    offered = {name for name, value in vars(package).items()
               if not name.startswith('_') and (inspect.isclass(value) or inspect.isfunction(value))
               and getattr(value, '__module__', '').startswith('pacifica.')}
    assert offered <= set(package.__all__)


@pytest.mark.parametrize('module', sorted(CONTRACT_NAMES))
def test_contract_names_import(module: str) -> None:
    missing = [name for name in CONTRACT_NAMES[module] if not hasattr(importlib.import_module(module), name)]
    assert not missing, '{} lacks {}'.format(module, missing)


@pytest.mark.parametrize('places', SAME_OBJECT, ids=lambda places: '{}.{}'.format(*places[0]))
def test_one_object_under_each_name(places: list) -> None:
    first = _get(*places[0])
    for place in places[1:]:
        assert _get(*place) is first, '{}.{}'.format(*place)


@pytest.mark.parametrize('owner', sorted(MEMBERS), ids='.'.join)
def test_contract_members(owner: tuple) -> None:
    cls = _get(*owner)
    missing = [name for name in MEMBERS[owner] if not hasattr(cls, name)]
    assert not missing, '{}.{} lacks {}'.format(*owner, missing)


def test_static_members_and_instance_attributes() -> None:
    from pacifica.downloader import CloudEvent, TransactionInfo
    from pacifica.uploader.bundler import Bundler
    from pacifica.uploader.common import CommonBase
    from pacifica.uploader.metadata import MetaData, MetaObj
    from pacifica.uploader.metadata.policyquery import PolicyQuery

    for cls, name in ((Bundler, '_strip_subdir'), (PolicyQuery, 'fromjson'), (CloudEvent, 'yield_files'),
                      (TransactionInfo, 'yield_files')):
        assert isinstance(inspect.getattr_static(cls, name), staticmethod), '{}.{}'.format(cls.__name__, name)
    assert CommonBase.session is None
    assert issubclass(MetaData, list)
    bundler = Bundler(MetaData([MetaObj(destinationTable='Transactions.submitter', value='10', metaID='a')]), [])
    assert bundler.md_obj[0].value == '10' and bundler.file_data == []
    assert PolicyQuery(10).pq_data.user == 10


@pytest.mark.parametrize('name', sorted(FIELDS))
def test_namedtuple_fields(name: str) -> None:
    module = 'pacifica.uploader.metadata.policyquery' if name == 'PolicyQueryData' else 'pacifica.uploader.metadata'
    assert list(_get(module, name)._fields) == FIELDS[name]


@pytest.mark.parametrize('module', ['pacifica.uploader.uploader', 'pacifica.uploader.metadata.policyquery',
                                    'pacifica.downloader.cartapi'])
def test_loggers_are_loggers(module: str) -> None:
    assert isinstance(_get(module, 'LOGGER'), logging.Logger)
