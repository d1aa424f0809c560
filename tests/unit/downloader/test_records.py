"""CloudEvent.yield_files and TransactionInfo.yield_files: exact cart dicts, clear errors."""
from __future__ import annotations

import copy

import pytest

from pacifica.downloader import RecordError
from pacifica.downloader.cloudevent import CloudEvent
from pacifica.downloader.policy import TransactionInfo
from tests.helpers.cartd import cloud_event, sha1, transaction_info

FILES = {103: ('a/b', 'foo.txt', b'foo'), 104: ('', 'top.txt', b'top')}


def test_transaction_info_yields_contract_dicts():
    produce = TransactionInfo.yield_files(transaction_info(FILES))
    assert callable(produce)
    assert list(produce()) == [
        {'id': '103', 'path': 'a/b/foo.txt', 'hashtype': 'sha1', 'hashsum': sha1(b'foo')},
        {'id': '104', 'path': '/top.txt', 'hashtype': 'sha1', 'hashsum': sha1(b'top')},
    ]
    assert list(produce()) == list(produce())  # callable more than once


def test_cloud_event_yields_only_files_with_id_from__id():
    produce = CloudEvent.yield_files(cloud_event(FILES))
    assert list(produce()) == [
        {'id': 103, 'path': 'a/b/foo.txt', 'hashtype': 'sha1', 'hashsum': sha1(b'foo')},
        {'id': 104, 'path': '/top.txt', 'hashtype': 'sha1', 'hashsum': sha1(b'top')},
    ]


def test_subdir_is_kept_verbatim_in_path():
    info = transaction_info({1: ('a/b/', 'x', b'1')})
    assert list(TransactionInfo.yield_files(info)())[0]['path'] == 'a/b//x'


@pytest.mark.parametrize('field', ['name', 'hashtype', 'hashsum'])
def test_transaction_info_missing_field_names_field_and_file(field):
    info = transaction_info(FILES)
    del info['files']['103'][field]
    with pytest.raises(RecordError) as caught:
        TransactionInfo.yield_files(info)
    assert repr(field) in str(caught.value) and '103' in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TypeError)


@pytest.mark.parametrize('field, value', [('name', 7), ('name', ''), ('subdir', None), ('hashsum', 12),
                                          ('hashtype', 'not-a-hash'), ('size', -1), ('size', '12'),
                                          ('size', True)])
def test_cloud_event_mistyped_field_is_refused(field, value):
    event = cloud_event(FILES)
    event['data'][2][field] = value
    with pytest.raises(RecordError) as caught:
        CloudEvent.yield_files(event)
    assert repr(field) in str(caught.value) and 'data[2]' in str(caught.value)


def test_missing_subdir_means_a_file_at_the_top():
    """Upstream took a missing subdir as '' (path '/name'); records of top-level files may lack it."""
    info = transaction_info(FILES)
    del info['files']['104']['subdir']
    event = cloud_event(FILES)
    for item in event['data']:
        item.pop('subdir', None)
    assert [item['path'] for item in TransactionInfo.yield_files(info)()] == ['a/b/foo.txt', '/top.txt']
    assert [item['path'] for item in CloudEvent.yield_files(event)()] == ['/foo.txt', '/top.txt']


@pytest.mark.parametrize('value', [None, 3, ['a']])
def test_transaction_info_mistyped_subdir_is_refused(value):
    info = transaction_info(FILES)
    info['files']['103']['subdir'] = value
    with pytest.raises(RecordError, match="'subdir' must be a string"):
        TransactionInfo.yield_files(info)


def test_cloud_event_file_without__id_is_refused():
    event = cloud_event(FILES)
    del event['data'][1]['_id']
    with pytest.raises(RecordError, match="'_id' is missing"):
        CloudEvent.yield_files(event)


@pytest.mark.parametrize('record', [None, [], 'text', {'no': 'files'}, {'files': []}, {'files': {'1': 'x'}},
                                    {'files': {'1': {'name': 'a/../../x', 'subdir': '', 'hashtype': 'sha1',
                                                     'hashsum': 'ab'}}}])
def test_bad_transaction_infos(record):
    with pytest.raises(RecordError):
        TransactionInfo.yield_files(record)


@pytest.mark.parametrize('event', [None, {'data': {}}, {}, {'data': ['x']},
                                   {'data': [{'destinationTable': 'Files', '_id': [1], 'name': 'x', 'subdir': '',
                                              'hashtype': 'sha1', 'hashsum': 'ab'}]}])
def test_bad_cloud_events(event):
    with pytest.raises(RecordError):
        CloudEvent.yield_files(event)


def test_parent_traversal_in_subdir_is_refused():
    info = transaction_info({1: ('../..', 'passwd', b'')})
    with pytest.raises(RecordError, match='unsafe'):
        TransactionInfo.yield_files(info)


def test_records_are_not_modified():
    info = transaction_info(FILES)
    before = copy.deepcopy(info)
    list(TransactionInfo.yield_files(info)())
    assert info == before


#: The shape notifications 0.5.2 posts to a webhook after an ingest (captured from the stack of
#: scripts/pacifica-stack): metadata's CloudEvent 0.1 envelope around the ingest's metadata list as
#: uploaded, with `metaID`s, a key/value without `_id`, and the transaction id appended last.
REAL_INGEST_EVENT = {
    'cloudEventsVersion': '0.1', 'eventType': 'org.pacifica.metadata.ingest',
    'source': 'http://metadata.pacifica.org/transactions?_id=1001', 'eventID': 'metadata.ingest.1001',
    'eventTime': '2026-12-03T21:36:10', 'extensions': {}, 'contentType': 'application/json',
    'data': [
        {'destinationTable': 'Transactions.submitter', 'metaID': 'logon', 'value': 3001},
        {'destinationTable': 'Transactions.project', 'metaID': 'project', 'value': 'stk1001'},
        {'destinationTable': 'Transactions.instrument', 'metaID': 'instrument', 'value': 3101},
        {'destinationTable': 'TransactionKeyValue', 'key': 'Tag', 'metaID': 'tag', 'value': 'x'},
        {'_id': 1005, 'ctime': '2026-12-03T21:36:09', 'destinationTable': 'Files',
         'hashsum': sha1(bytes(range(256)) * 40), 'hashtype': 'sha1', 'mimetype': 'application/octet-stream',
         'mtime': '2026-12-03T21:36:09', 'name': 'núcleo.bin', 'size': 10240, 'subdir': 'deep/er/still'},
        {'_id': 1007, 'ctime': '2026-12-03T21:36:09', 'destinationTable': 'Files', 'hashsum': sha1(b''),
         'hashtype': 'sha1', 'mimetype': 'application/octet-stream', 'mtime': '2026-12-03T21:36:09',
         'name': 'empty.dat', 'size': 0, 'subdir': ''},
        {'destinationTable': 'Transactions._id', 'value': 1001},
    ],
}


def test_the_event_notifications_sends_yields_its_files():
    assert list(CloudEvent.yield_files(copy.deepcopy(REAL_INGEST_EVENT))()) == [
        {'id': 1005, 'path': 'deep/er/still/núcleo.bin', 'hashtype': 'sha1', 'hashsum': sha1(bytes(range(256)) * 40)},
        {'id': 1007, 'path': '/empty.dat', 'hashtype': 'sha1', 'hashsum': sha1(b'')},
    ]
