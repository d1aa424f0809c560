"""A shard's metadata: the dataset's own plus the two key/values, in the form Ingest reads."""
from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest

from pacifica.uploader import ConfigurationError, InvalidMetadataError
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.dataset.metadata import (
    DATASET_KEY, PART_KEY, DatasetTags, base_metadata, check_dataset_id, dataset_tags, new_dataset_id, parse_part,
    part_text, shard_metadata,
)
from pacifica.uploader.metadata import FileObj, MetaData, MetaObj, metadata_decode, metadata_encode

DATASET = '0b6a2f0e-8a53-4f47-9a55-2d7c1b3c4e5f'


def dataset_metadata() -> MetaData:
    return MetaData([
        MetaObj(destinationTable='Transactions.submitter', metaID='logon', value=10),
        MetaObj(destinationTable='Transactions.project', metaID='project', value='1234a'),
        MetaObj(destinationTable='TransactionKeyValue', metaID='tag', key='Tag', value='blue'),
    ])


def test_a_shard_carries_the_dataset_metadata_and_two_key_values() -> None:
    original = dataset_metadata()
    shard = shard_metadata(original, DATASET, 2, 6)
    assert isinstance(shard, MetaData)
    assert list(shard)[:3] == list(original)
    assert json.loads(metadata_encode(shard))[3:] == [
        {'destinationTable': 'TransactionKeyValue', 'metaID': 'pacifica.dataset', 'key': 'pacifica.dataset',
         'value': DATASET},
        {'destinationTable': 'TransactionKeyValue', 'metaID': 'pacifica.dataset.part', 'key': 'pacifica.dataset.part',
         'value': '2/6'},
    ]
    assert shard[DATASET_KEY].value == DATASET and shard[PART_KEY].value == '2/6'
    assert len(original) == 3, 'the caller\'s metadata is left as it was'


def test_each_shard_gets_its_own_copy_for_the_bundler_to_fill() -> None:
    original = dataset_metadata()
    shard = shard_metadata(original, DATASET, 1, 1)
    Bundler(shard, [{'name': 'data/a', 'size': 0, 'mtime': 0, 'fileobj': io.BytesIO()}]).stream(io.BytesIO())
    assert any(isinstance(item, FileObj) for item in shard)
    assert not any(isinstance(item, FileObj) for item in original)


def test_the_tags_read_back_from_metadata_txt() -> None:
    text = metadata_encode(shard_metadata(dataset_metadata(), DATASET, 3, 4))
    assert dataset_tags(json.loads(text)) == DatasetTags(DATASET, 3, 4)
    assert dataset_tags(metadata_decode(text)) == (DATASET, 3, 4)
    assert dataset_tags(dataset_metadata()) is None
    assert dataset_tags(None) is None


@pytest.mark.parametrize('items', [
    [{'destinationTable': 'TransactionKeyValue', 'key': DATASET_KEY, 'value': DATASET}],
    [{'destinationTable': 'TransactionKeyValue', 'key': PART_KEY, 'value': '1/2'}],
    [{'destinationTable': 'TransactionKeyValue', 'key': DATASET_KEY, 'value': DATASET},
     {'destinationTable': 'TransactionKeyValue', 'key': PART_KEY, 'value': '3/2'}],
    [{'destinationTable': 'TransactionKeyValue', 'key': DATASET_KEY, 'value': 'not-a-uuid'},
     {'destinationTable': 'TransactionKeyValue', 'key': PART_KEY, 'value': '1/2'}],
    [{'destinationTable': 'TransactionKeyValue', 'key': DATASET_KEY, 'value': DATASET},
     {'destinationTable': 'TransactionKeyValue', 'key': PART_KEY, 'value': '1/2'},
     {'destinationTable': 'TransactionKeyValue', 'key': PART_KEY, 'value': '2/2'}],
])
def test_half_or_malformed_tags_are_an_error(items: Any) -> None:
    with pytest.raises(ConfigurationError):
        dataset_tags(items)


def test_key_values_of_other_tables_are_not_tags() -> None:
    assert dataset_tags([{'destinationTable': 'Transactions.project', 'key': DATASET_KEY, 'value': 'x'}]) is None


@pytest.mark.parametrize('item', [
    MetaObj(destinationTable='TransactionKeyValue', key=DATASET_KEY, value=DATASET),
    MetaObj(destinationTable='TransactionKeyValue', key=PART_KEY, value='1/1'),
    MetaObj(destinationTable='Transactions.instrument', metaID=PART_KEY, value=54),
    FileObj(destinationTable='Files', name='a.txt', subdir='', size=1),
])
def test_metadata_that_would_clash_with_the_shard_is_refused(item: Any) -> None:
    metadata = dataset_metadata()
    metadata.append(item)
    with pytest.raises(InvalidMetadataError):
        shard_metadata(metadata, DATASET, 1, 1)


@pytest.mark.parametrize('metadata', [MetaData(),
                                      MetaData([MetaObj(destinationTable='Transactions.project', value='')])])
def test_metadata_the_bundler_would_refuse_is_refused_once_for_all_shards(metadata: MetaData) -> None:
    with pytest.raises(InvalidMetadataError, match='not valid'):
        base_metadata(metadata)


def test_metadata_must_be_a_list_of_items() -> None:
    with pytest.raises(ConfigurationError):
        base_metadata('[{"destinationTable": "x"}]')
    assert isinstance(base_metadata(list(dataset_metadata())), MetaData)


def test_dataset_ids_are_canonical_uuids() -> None:
    fresh = new_dataset_id()
    assert check_dataset_id(fresh) == fresh and uuid.UUID(fresh).version == 4
    assert new_dataset_id() != fresh
    for bad in (DATASET.upper(), DATASET.replace('-', ''), '{' + DATASET + '}', 'x', None, 42):
        with pytest.raises(ConfigurationError):
            check_dataset_id(bad)
    with pytest.raises(ConfigurationError):
        shard_metadata(dataset_metadata(), 'dataset-1', 1, 1)


@pytest.mark.parametrize('part, parts, text', [(1, 1, '1/1'), (6, 6, '6/6'), (10, 12, '10/12')])
def test_part_text_round_trips(part: int, parts: int, text: str) -> None:
    assert part_text(part, parts) == text
    assert parse_part(text) == (part, parts)


@pytest.mark.parametrize('text', ['0/3', '4/3', '1/0', '01/3', '1/3 ', '-1/3', '1', '1/2/3', 3, None, ' 1/3'])
def test_malformed_parts_are_refused(text: Any) -> None:
    with pytest.raises(ConfigurationError):
        parse_part(text)


@pytest.mark.parametrize('part, parts', [(0, 1), (2, 1), (True, 1), (1, 1.0)])
def test_part_numbers_must_be_in_range(part: Any, parts: Any) -> None:
    with pytest.raises(ConfigurationError):
        part_text(part, parts)
