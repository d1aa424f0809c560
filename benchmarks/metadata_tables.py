"""The metadata stand-in's tables: transactions made from each upload's ``metadata.txt`` (see ``servers.py``)."""
from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii

BLOCK = 512
METADATA_MEMBER = b'metadata.txt'
METADATA_TABLES = ('keys', 'values', 'trans_key_value', 'files')
#: One row of the /files answer as ``json.dumps`` writes it (ASCII, ', ' and ': ' between fields).
FILE_ROW = ('{"_id": %d, "transaction": %d, "name": %s, "subdir": %s, "size": %d, "hashtype": %s, "hashsum": %s, '
            '"mimetype": %s}')


def last_metadata(tail: bytes | bytearray, received: int) -> list:
    """The decoded ``metadata.txt`` of a tar whose last ``len(tail)`` bytes are ``tail`` (of ``received``)."""
    start = received - len(tail)
    at = len(tail)
    while True:
        at = tail.rfind(METADATA_MEMBER + b'\0', 0, at)
        if at < 0:
            raise ValueError('metadata.txt is not in the last {} bytes of the body'.format(len(tail)))
        if (start + at) % BLOCK == 0 and tail[at + 257:at + 262] == b'ustar':
            size = int(tail[at + 124:at + 136].strip(b'\0 ') or b'0', 8)
            return json.loads(tail[at + BLOCK:at + BLOCK + size])


def file_rows(files: list, first_id: int, transaction_id: int) -> list:
    """The plain way: the ``/files`` rows of a transaction's Files records, ids from ``first_id``."""
    return [{'_id': first_id + number, 'transaction': transaction_id, 'name': item['name'],
             'subdir': item.get('subdir', ''), 'size': int(item['size']), 'hashtype': item.get('hashtype', ''),
             'hashsum': item.get('hashsum', ''), 'mimetype': item.get('mimetype', '')}
            for number, item in enumerate(files)]


def files_answer(files: list, first_id: int, transaction_id: int) -> bytes:
    """``json.dumps(file_rows(...))``, written row by row from a template without building the rows.

    Why: the stand-in shares the client's cores, and building 2,500 dicts
    to encode them took about half of its work on a shard of ``shards.py``
    (benchmarks/README.md, "Stand-in servers"). A record whose text fields
    are not all strings (or that lacks a field) goes the plain way, which
    answers or raises as before.
    """
    text = encode_basestring_ascii
    try:
        rows = [FILE_ROW % (first_id + number, transaction_id, text(item['name']), text(item.get('subdir', '')),
                            int(item['size']), text(item.get('hashtype', '')), text(item.get('hashsum', '')),
                            text(item.get('mimetype', ''))) for number, item in enumerate(files)]
    except (KeyError, TypeError, ValueError):
        return json.dumps(file_rows(files, first_id, transaction_id)).encode()
    return ('[' + ', '.join(rows) + ']').encode()


class Tables:
    """Transactions as pacifica-metadata's REST tables show them; the keys, values and links are few."""

    def __init__(self) -> None:
        self.ids: dict[tuple, int] = {}
        self.rows: dict[str, list] = {'keys': [], 'values': [], 'trans_key_value': []}
        self.files: dict[int, bytes] = {}
        self._next_file_id = 1

    def _id_of(self, table: str, field: str, text: str) -> int:
        if (table, text) not in self.ids:
            self.ids[table, text] = len(self.ids) + 1
            self.rows[table].append({'_id': self.ids[table, text], field: text})
        return self.ids[table, text]

    def add(self, transaction_id: int, metadata: list) -> None:
        """Transaction ``transaction_id`` as ingest writes it from a bundle's decoded metadata.txt.

        KeyError, TypeError or ValueError for a record without its fields, before any row is added.
        """
        items = [item for item in metadata if isinstance(item, dict)]
        pairs = [(str(item['key']), str(item['value'])) for item in items
                 if item.get('destinationTable') == 'TransactionKeyValue']
        files = [item for item in items if item.get('destinationTable') == 'Files']
        answer = files_answer(files, self._next_file_id, transaction_id)
        for key, value in pairs:
            self.rows['trans_key_value'].append({'transaction': transaction_id, 'key': self._id_of('keys', 'key', key),
                                                 'value': self._id_of('values', 'value', value)})
        self._next_file_id += len(files)
        self.files[transaction_id] = answer

    def answer(self, table: str, query: dict) -> bytes | None:
        """The JSON rows of ``table`` whose fields equal ``query``'s; None for a question not answered here."""
        if table == 'files':
            if set(query) != {'transaction'} or not query['transaction'].isdigit():
                return None
            return self.files.get(int(query['transaction']), b'[]')
        return json.dumps([row for row in self.rows[table]
                           if all(str(row.get(field)) == wanted for field, wanted in query.items())]).encode()
