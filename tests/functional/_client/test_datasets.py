"""DatasetLookup against a loopback stand-in of the metadata service's REST tables."""
from __future__ import annotations

import uuid
from typing import Iterator

import pytest

from pacifica._client.datasets import DATASET_KEY, PART_KEY, DatasetLookup, DatasetTransaction, ServerFile
from pacifica._client.exceptions import HTTPStatusError, InvalidResponseError
from pacifica.uploader import TransferConfig
from tests.helpers.metadatad import MetadataServer
from tests.helpers.server import LoopbackServer, Reply

CONFIG = TransferConfig(connect_timeout=2, read_timeout=5, retries=1, backoff_factor=0.01)


@pytest.fixture
def metadata() -> Iterator[MetadataServer]:
    server = LoopbackServer()
    try:
        yield MetadataServer(server)
    finally:
        server.close()


def _file(name: str, size: int, subdir: str = 'data/a') -> dict:
    return {'name': name, 'subdir': subdir, 'size': size, 'hashtype': 'sha1', 'hashsum': 'ab' * 20}


def test_transactions_of_a_dataset_with_their_parts(metadata: MetadataServer) -> None:
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    metadata.add_transaction(12, {DATASET_KEY: mine, PART_KEY: '2/3'}, [_file('b', 2)])
    metadata.add_transaction(11, {DATASET_KEY: mine, PART_KEY: '1/3', 'other': 'x'}, [_file('a', 1)])
    metadata.add_transaction(13, {DATASET_KEY: other, PART_KEY: '3/3'}, [])
    metadata.add_transaction(14, {DATASET_KEY: mine, PART_KEY: 'seven'}, [])
    metadata.add_transaction(15, {DATASET_KEY: mine}, [])
    lookup = DatasetLookup(metadata.url, config=CONFIG)
    assert lookup.transactions(mine) == [
        DatasetTransaction(11, 1, 3, '1/3'), DatasetTransaction(12, 2, 3, '2/3'),
        DatasetTransaction(14, None, None, 'seven'), DatasetTransaction(15, None, None, None)]
    assert lookup.transaction_ids(other) == [13]
    assert lookup.key_value(11, 'other') == 'x'
    assert lookup.key_value(11, 'absent') is None


def test_an_unknown_dataset_has_no_transactions(metadata: MetadataServer) -> None:
    lookup = DatasetLookup(metadata.url, config=CONFIG)
    assert lookup.transactions(str(uuid.uuid4())) == []  # not even the key exists yet
    metadata.add_transaction(3, {DATASET_KEY: str(uuid.uuid4())}, [])
    assert lookup.transactions(str(uuid.uuid4())) == []  # the key exists, the value does not


def test_files_of_a_transaction(metadata: MetadataServer) -> None:
    metadata.add_transaction(21, {}, [_file('z.bin', 7), _file('top', 0, subdir='')])
    metadata.add_transaction(22, {}, [_file('elsewhere', 1)])
    found = DatasetLookup(metadata.url, config=CONFIG).files(21)
    assert [(f.path, f.size, f.hashtype, f.hashsum, f.name, f.subdir) for f in found] == [
        ('data/a/z.bin', 7, 'sha1', 'ab' * 20, 'z.bin', 'data/a'), ('top', 0, 'sha1', 'ab' * 20, 'top', '')]
    assert all(isinstance(f, ServerFile) and f.file_id is not None for f in found)
    assert DatasetLookup(metadata.url, config=CONFIG).files(99) == []


def test_the_address_from_the_environment(metadata: MetadataServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('METADATA_ADDR', '127.0.0.1')
    monkeypatch.setenv('METADATA_PORT', str(metadata.server.port))
    lookup = DatasetLookup(config=CONFIG)
    assert lookup.url == metadata.url
    metadata.add_transaction(5, {}, [_file('x', 1)])
    assert [f.name for f in lookup.files(5)] == ['x']


def test_a_reply_that_is_not_a_list_of_rows(metadata: MetadataServer) -> None:
    metadata.server.route('GET', '/files', lambda request: {'files': []})
    with pytest.raises(InvalidResponseError, match='JSON list'):
        DatasetLookup(metadata.url, config=CONFIG).files(1)
    metadata.server.route('GET', '/keys', lambda request: [{'key': DATASET_KEY}])
    with pytest.raises(InvalidResponseError, match="'_id'"):
        DatasetLookup(metadata.url, config=CONFIG).transactions(str(uuid.uuid4()))


def test_a_server_error_is_an_http_status_error(metadata: MetadataServer) -> None:
    metadata.server.route('GET', '/keys', lambda request: Reply(500, b'database down'))
    with pytest.raises(HTTPStatusError) as caught:
        DatasetLookup(metadata.url, config=CONFIG).transactions(str(uuid.uuid4()))
    assert caught.value.status_code == 500 and 'database down' in caught.value.body
