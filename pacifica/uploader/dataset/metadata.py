"""The metadata of one shard: the dataset's own, plus two key/values that tie the shard to it.

Every shard is its own ingest transaction. So that the transactions of one
dataset can be found again (by a person, by a re-run that must learn whether
a shard arrived), each carries two ``TransactionKeyValue`` items, in the
form Ingest reads from ``metadata.txt``::

    {"destinationTable": "TransactionKeyValue", "key": "pacifica.dataset", "value": "<uuid4>", ...}
    {"destinationTable": "TransactionKeyValue", "key": "pacifica.dataset.part", "value": "2/6", ...}

``i`` counts from 1 to ``N``. :func:`shard_metadata` builds a shard's
:class:`~pacifica.uploader.metadata.MetaData` (a copy: the Bundler appends
its file records to it), :func:`dataset_tags` reads the two back from
metadata items or decoded ``metadata.txt`` dicts.
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable, NamedTuple, Optional, Tuple

from pacifica._client.datasets import DATASET_KEY, PART_KEY, PART_PATTERN, check_dataset_id
from pacifica.uploader import ConfigurationError, InvalidMetadataError
from pacifica.uploader.metadata import MetaData, MetaObj

__all__ = ['DATASET_KEY', 'PART_KEY', 'KEY_VALUE_TABLE', 'DatasetTags', 'new_dataset_id', 'check_dataset_id',
           'part_text', 'parse_part', 'base_metadata', 'shard_metadata', 'dataset_tags']

#: The destination table of key/value pairs in an upload's metadata.
KEY_VALUE_TABLE = 'TransactionKeyValue'
_RESERVED = (DATASET_KEY, PART_KEY)


class DatasetTags(NamedTuple):
    """The two key/values of a shard, read back."""

    dataset_id: str
    part: int
    parts: int


def new_dataset_id() -> str:
    """A fresh dataset id: a random UUID in its canonical text."""
    return str(uuid.uuid4())


def part_text(part: int, parts: int) -> str:
    """``"i/N"``; ConfigurationError unless 1 <= i <= N."""
    for number in (part, parts):
        if isinstance(number, bool) or not isinstance(number, int):
            raise ConfigurationError('a shard part and count are ints, not {!r}'.format(number))
    if not 1 <= part <= parts:
        raise ConfigurationError('shard part {} of {} is out of range (parts count from 1)'.format(part, parts))
    return '{}/{}'.format(part, parts)


def parse_part(text: Any) -> Tuple[int, int]:
    """``(i, N)`` from ``"i/N"``; ConfigurationError for anything else, ``"0/3"`` and ``"4/3"`` included."""
    found = PART_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ConfigurationError('a shard part is "i/N", not {!r}'.format(text))
    part, parts = int(found.group(1)), int(found.group(2))
    part_text(part, parts)
    return part, parts


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def base_metadata(metadata: Iterable[Any]) -> MetaData:
    """The dataset's metadata, checked once for every shard: a copy as a MetaData.

    Refused (InvalidMetadataError): ``Files`` records (each shard's bundle
    writes its own), items that already hold one of the two dataset keys, and
    metadata the Bundler would refuse (no MetaObj, or one without a value).
    """
    if isinstance(metadata, (str, bytes, dict)):
        raise ConfigurationError('metadata must be a MetaData (a list of MetaObj), not {}'.format(
            type(metadata).__name__))
    copy = MetaData(list(metadata))
    for item in copy:
        table = _field(item, 'destinationTable')
        if table == 'Files':
            raise InvalidMetadataError('the dataset metadata holds a Files record ({!r}): each shard lists its own '
                                       'files'.format(_field(item, 'name')))
        if table == KEY_VALUE_TABLE and _field(item, 'key') in _RESERVED:
            raise InvalidMetadataError('the dataset metadata already sets {!r}: that key is given to every shard '
                                       'by the dataset upload'.format(_field(item, 'key')))
        if _field(item, 'metaID') in _RESERVED:
            raise InvalidMetadataError('the dataset metadata already uses metaID {!r}'.format(_field(item, 'metaID')))
    if not copy.is_valid():
        raise InvalidMetadataError('the dataset metadata is not valid yet: it needs at least one MetaObj and every '
                                   'MetaObj a value')
    return copy


def shard_metadata(metadata: Iterable[Any], dataset_id: str, part: int, parts: int) -> MetaData:
    """A new MetaData: ``metadata`` (checked by :func:`base_metadata`) and the shard's two key/values."""
    copy = base_metadata(metadata)
    copy.append(MetaObj(destinationTable=KEY_VALUE_TABLE, metaID=DATASET_KEY, key=DATASET_KEY,
                        value=check_dataset_id(dataset_id)))
    copy.append(MetaObj(destinationTable=KEY_VALUE_TABLE, metaID=PART_KEY, key=PART_KEY,
                        value=part_text(part, parts)))
    return copy


def dataset_tags(items: Optional[Iterable[Any]]) -> Optional[DatasetTags]:
    """The shard's tags among metadata ``items`` (MetaObj or decoded dicts), None when it has none.

    ConfigurationError when only one of the two is there, a key appears twice,
    or a value is malformed: such a transaction cannot be placed in a dataset.
    """
    found = {}
    for item in items or ():
        key = _field(item, 'key')
        if _field(item, 'destinationTable') != KEY_VALUE_TABLE or key not in _RESERVED:
            continue
        if key in found:
            raise ConfigurationError('the metadata sets {!r} twice'.format(key))
        found[key] = _field(item, 'value')
    if not found:
        return None
    if len(found) != len(_RESERVED):
        raise ConfigurationError('the metadata sets {} without {}'.format(*(
            sorted(found) + [key for key in _RESERVED if key not in found])))
    part, parts = parse_part(found[PART_KEY])
    return DatasetTags(check_dataset_id(found[DATASET_KEY]), part, parts)
