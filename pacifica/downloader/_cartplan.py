"""Which files go into which cart: the entries of several transactions, merged and cut by bytes and count.

A parallel download first merges the files of every transaction it was given
into one list for one download folder (:func:`merge_transactions`): two
transactions that put different files at one path are refused, naming both,
since one would silently replace the other. The files still missing are then
cut into carts (:func:`split_carts`), greedily in record order: a cart closes
before the file that would take it past ``max_bytes`` or ``max_files``, and a
file larger than ``max_bytes`` travels alone. The same entries and limits
always give the same carts.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from pacifica._client.exceptions import ConfigurationError, RecordError
from pacifica._client.rules import is_whole_number

from ._records import FileEntry, transaction_entries, unique_entries
from ._target import Parts

#: Bytes a cart holds at most by default (a file larger than this is a cart of its own).
DEFAULT_MAX_CART_BYTES = 4 * 1024 ** 3
#: Files a cart holds at most by default.
DEFAULT_MAX_CART_FILES = 10_000


def check_limit(value: Any, name: str) -> Optional[int]:
    """``value`` as a cart limit: None (no limit) or a whole number >= 1; ConfigurationError otherwise."""
    if value is None:
        return None
    if not is_whole_number(value) or value < 1:
        raise ConfigurationError('{} must be a whole number >= 1 or None, not {!r}'.format(name, value))
    return int(value)


def record_label(record: Any, index: int) -> str:
    """How errors name a transaction record: ``transaction 67`` from its ``transaction._id``, else its position."""
    if isinstance(record, Mapping):
        transaction = record.get('transaction')
        if isinstance(transaction, Mapping) and transaction.get('_id') is not None:
            return 'transaction {}'.format(transaction['_id'])
    return 'record {}'.format(index + 1)


def merge_transactions(records: Iterable[Any]) -> List[FileEntry]:
    """The files of every record, for one download folder; RecordError when two put different files at one path.

    A file listed twice alike (same id and fields) is kept once. The error
    names both transactions, both file ids and the path.
    """
    owners: Dict[Parts, Tuple[str, FileEntry]] = {}
    merged: List[FileEntry] = []
    for index, record in enumerate(records):
        label = record_label(record, index)
        for entry in unique_entries(transaction_entries(record)):
            seen = owners.get(entry.parts)
            if seen is None:
                owners[entry.parts] = (label, entry)
                merged.append(entry)
            elif seen[1] != entry:
                raise RecordError('{} (file {!r}) and {} (file {!r}) both put a file at {!r}; download them into '
                                  'different folders'.format(seen[0], seen[1].id, label, entry.id,
                                                             '/'.join(entry.parts)))
    return unique_entries(merged)  # also refuses a file where another transaction needs a directory


def split_carts(entries: Sequence[FileEntry], max_bytes: Optional[int] = DEFAULT_MAX_CART_BYTES,
                max_files: Optional[int] = DEFAULT_MAX_CART_FILES) -> List[List[FileEntry]]:
    """Cut ``entries`` into carts of at most ``max_bytes`` and ``max_files`` each (None: no such limit).

    Record order is kept; a file without a recorded size counts as 0 bytes
    (its cart then still respects ``max_files``).
    """
    max_bytes = check_limit(max_bytes, 'max_bytes')
    max_files = check_limit(max_files, 'max_files')
    carts: List[List[FileEntry]] = []
    current: List[FileEntry] = []
    size = 0
    for entry in entries:
        entry_size = entry.size or 0
        full = (max_files is not None and len(current) >= max_files) or (
            max_bytes is not None and size + entry_size > max_bytes)
        if current and full:
            carts.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        carts.append(current)
    return carts


def total_size(entries: Iterable[FileEntry]) -> Optional[int]:
    """The bytes of ``entries``, or None when one of them has no recorded size."""
    total = 0
    for entry in entries:
        if entry.size is None:
            return None
        total += entry.size
    return total
