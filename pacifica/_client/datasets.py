"""What the servers know about a dataset: its transactions, their part tags, and each transaction's files.

A sharded upload tags every transaction with two ``TransactionKeyValue``
items, ``pacifica.dataset`` (the dataset's UUID) and ``pacifica.dataset.part``
(``"i/N"``). :class:`DatasetLookup` reads them back from the metadata
service::

    lookup = DatasetLookup()                       # or metadata_url='http://metadata:8121'
    for found in lookup.transactions(dataset_id):  # DatasetTransaction(transaction_id, part, parts, part_text)
        files = lookup.files(found.transaction_id) # [ServerFile(path, size, hashtype, hashsum, ...)]

Why metadata and not policy: policy answers about one transaction at a time
(``/status/transactions/by_id/<id>``) and cannot search by key and value; the
metadata service's REST tables can (``GET /keys?key=``, ``/values?value=``,
``/trans_key_value?key=&value=``, ``/files?transaction=``), and they are
what pacifica-metadata 0.13 serves on its port in every deployment. Every
call is a GET (safe to repeat) through :class:`~.transport.HttpClient`.

The address is ``metadata_url`` when given, else ``METADATA_PROTO`` /
``METADATA_ADDR`` / ``METADATA_PORT`` from the environment, else
``http://127.0.0.1:8121``.
"""
from __future__ import annotations

import re
import uuid
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from .config import TimeoutArg, TransferConfig
from .endpoints import METADATA_SERVER, complete_url, server_parts
from .exceptions import ConfigurationError, InvalidResponseError
from .transport import HttpClient

__all__ = ['DatasetLookup', 'DatasetTransaction', 'ServerFile', 'DATASET_KEY', 'PART_KEY', 'PART_PATTERN',
           'check_dataset_id']

#: Key of the dataset's id, the same UUID in every shard's transaction.
DATASET_KEY = 'pacifica.dataset'
#: Key of a shard's place in its dataset, ``"i/N"`` (i from 1 to N).
PART_KEY = 'pacifica.dataset.part'
#: The text of a part tag.
PART_PATTERN = re.compile(r'([1-9][0-9]*)/([1-9][0-9]*)')


def check_dataset_id(dataset_id: Any) -> str:
    """``dataset_id`` when it is a UUID in canonical text (lower case, dashes); ConfigurationError otherwise."""
    try:
        canonical = str(uuid.UUID(dataset_id)) if isinstance(dataset_id, str) else None
    except ValueError:
        canonical = None
    if canonical is None or canonical != dataset_id:
        raise ConfigurationError('a dataset id is a UUID in canonical form, not {!r}'.format(dataset_id))
    return dataset_id


class DatasetTransaction(NamedTuple):
    """One transaction of a dataset. ``part``/``parts`` are None when its part tag is missing or malformed."""

    transaction_id: int
    part: Optional[int]
    parts: Optional[int]
    #: The part tag as the server holds it (None when the transaction has none).
    part_text: Optional[str]


class ServerFile(NamedTuple):
    """One file of a transaction as the metadata service records it."""

    #: ``<subdir>/<name>`` (just ``<name>`` when subdir is empty), as the Files record of the upload gave them.
    path: str
    size: int
    hashtype: str
    hashsum: str
    name: str
    subdir: str
    file_id: Any


def _parse_part(text: Optional[str]) -> Tuple[Optional[int], Optional[int]]:
    found = PART_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if found is None or int(found.group(1)) > int(found.group(2)):
        return None, None
    return int(found.group(1)), int(found.group(2))


class DatasetLookup:
    """Read-only queries of the metadata service about sharded datasets and transactions' files.

    ``config``, ``auth``, ``timeout`` and ``session`` are those of every
    client object (:class:`~.transport.HttpClient`).
    """

    def __init__(self, metadata_url: Optional[str] = None, *, config: Optional[TransferConfig] = None,
                 auth: Optional[Mapping[str, Any]] = None, timeout: TimeoutArg = None, session: Any = None,
                 **parts: Any) -> None:
        unknown = sorted(set(parts) - {name for name, _ in METADATA_SERVER})
        if unknown:
            raise ConfigurationError('DatasetLookup() takes no keyword {}'.format(', '.join(map(repr, unknown))))
        where = server_parts(METADATA_SERVER, 'METADATA', parts)
        self.url = complete_url(metadata_url, where['proto'], where['addr'], where['port'], '',
                                'metadata URL').rstrip('/')
        self._http = HttpClient(config, auth, timeout=timeout, session=session)

    @property
    def config(self) -> TransferConfig:
        """The TransferConfig of this object's calls (its ``poll_interval`` paces callers that poll)."""
        return self._http.config

    def __repr__(self) -> str:
        return 'DatasetLookup({!r})'.format(self._http.redact(self.url, self.url))

    def _rows(self, table: str, **where: Any) -> List[Dict[str, Any]]:
        """The rows of a metadata REST table matching ``where`` (not deleted ones)."""
        url = '{}/{}'.format(self.url, table)
        document = self._http.call('GET', url, document=True, params=where).document
        if not isinstance(document, list) or not all(isinstance(row, dict) for row in document):
            raise InvalidResponseError('GET {}: expected a JSON list of objects, got {}'.format(
                table, self._http.redact(document, url)))
        return document

    def _ids(self, table: str, **where: Any) -> List[int]:
        return sorted({_int_field(row, '_id', table) for row in self._rows(table, **where)})

    def _transactions_with(self, key_ids: Sequence[int], value_ids: Sequence[int]) -> List[int]:
        found: Set[int] = set()
        for key_id in key_ids:
            for value_id in value_ids:
                found.update(_int_field(row, 'transaction', 'trans_key_value')
                             for row in self._rows('trans_key_value', key=key_id, value=value_id))
        return sorted(found)

    def transaction_ids(self, dataset_id: str) -> List[int]:
        """The ids of the transactions tagged ``pacifica.dataset`` = ``dataset_id``, ascending."""
        key_ids = self._ids('keys', key=DATASET_KEY)
        value_ids = self._ids('values', value=str(dataset_id)) if key_ids else []
        return self._transactions_with(key_ids, value_ids) if value_ids else []

    def transactions_of_part(self, dataset_id: str, part: int, parts: int) -> List[int]:
        """The ids of the dataset's transactions tagged ``pacifica.dataset.part`` = ``"<part>/<parts>"``.

        A handful of calls however many transactions the dataset has: a
        re-run asks this for each shard whose outcome it does not know.
        """
        key_ids = self._ids('keys', key=PART_KEY)
        value_ids = self._ids('values', value='{}/{}'.format(part, parts)) if key_ids else []
        tagged = self._transactions_with(key_ids, value_ids) if value_ids else []
        if not tagged:
            return []
        of_dataset = set(self.transaction_ids(dataset_id))
        return [transaction_id for transaction_id in tagged if transaction_id in of_dataset]

    def _value_of(self, transaction_id: int, key_ids: Sequence[int]) -> Optional[str]:
        for key_id in key_ids:
            rows = self._rows('trans_key_value', transaction=transaction_id, key=key_id)
            for value_id in sorted({_int_field(row, 'value', 'trans_key_value') for row in rows}):
                for row in self._rows('values', _id=value_id):
                    return str(row.get('value'))
        return None

    def key_value(self, transaction_id: int, key: str) -> Optional[str]:
        """The value of ``key`` on transaction ``transaction_id`` (None when it has none)."""
        return self._value_of(int(transaction_id), self._ids('keys', key=key))

    def transactions(self, dataset_id: str) -> List[DatasetTransaction]:
        """Every transaction of the dataset with its part tag, by ascending transaction id."""
        transaction_ids = self.transaction_ids(dataset_id)
        part_key_ids = self._ids('keys', key=PART_KEY) if transaction_ids else []
        found = []
        for transaction_id in transaction_ids:
            text = self._value_of(transaction_id, part_key_ids)
            found.append(DatasetTransaction(transaction_id, *_parse_part(text), text))
        return found

    def files(self, transaction_id: int) -> List[ServerFile]:
        """The files transaction ``transaction_id`` holds, by path (an empty list for an unknown transaction)."""
        files = []
        for row in self._rows('files', transaction=int(transaction_id)):
            name, subdir = str(row.get('name', '')), str(row.get('subdir') or '')
            try:
                size = int(row['size'])
            except (KeyError, TypeError, ValueError):
                raise InvalidResponseError('GET files: file {!r} of transaction {} has no size'.format(
                    row.get('_id'), transaction_id)) from None
            path = '{}/{}'.format(subdir.rstrip('/'), name) if subdir else name
            files.append(ServerFile(path, size, str(row.get('hashtype') or ''), str(row.get('hashsum') or ''), name,
                                    subdir, row.get('_id')))
        return sorted(files)


def _int_field(row: Mapping[str, Any], field: str, table: str) -> int:
    value = row.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise InvalidResponseError('GET {}: a row without a numeric {!r}'.format(table, field))
    return int(value)
