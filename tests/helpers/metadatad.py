"""A loopback stand-in for the metadata service's REST tables that the dataset lookup reads.

It answers ``GET /keys``, ``/values``, ``/trans_key_value`` (TransactionKeyValue) and
``/files`` with rows filtered by the query's fields, as pacifica-metadata's
ORM endpoints do (exact matches, ``_id`` for the row's id). Transactions are
added by hand, or taken from an :class:`~tests.helpers.ingestd.IngestServer`:
every job that ended well becomes a transaction with the job's id, its
``TransactionKeyValue`` items and its ``Files`` records, as real ingest
writes them::

    metadata = MetadataServer(LoopbackServer(), ingest=ingest)
    metadata.add_transaction(7, {'pacifica.dataset': uid, 'pacifica.dataset.part': '1/2'}, files)
"""
from __future__ import annotations

import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional

from tests.helpers.server import LoopbackServer, Request


class MetadataServer:
    """The four tables on a loopback server; ``hidden`` transactions are not reported (not ingested yet)."""

    def __init__(self, server: LoopbackServer, ingest: Any = None) -> None:
        self.server = server
        self.ingest = ingest
        self.keys: Dict[str, int] = {}
        self.values: Dict[str, int] = {}
        self.links: List[Dict[str, int]] = []
        self.files: List[Dict[str, Any]] = []
        self.transactions: set = set()
        #: Ingest job ids not (yet) turned into transactions: the job is still running.
        self.hidden: set = set()
        self._lock = threading.Lock()
        self._file_ids = iter(range(5000, 10 ** 9))
        for table in ('keys', 'values', 'trans_key_value', 'files'):
            server.route('GET', '/' + table, self._handler(table))

    @property
    def url(self) -> str:
        return self.server.url

    def _id_of(self, table: Dict[str, int], text: str) -> int:
        if text not in table:
            table[text] = len(self.keys) + len(self.values) + 1
        return table[text]

    def add_transaction(self, transaction_id: int, key_values: Mapping[str, Any],
                        files: Iterable[Mapping[str, Any]]) -> None:
        with self._lock:
            self._add(transaction_id, key_values, files)

    def _add(self, transaction_id: int, key_values: Mapping[str, Any], files: Iterable[Mapping[str, Any]]) -> None:
        self.transactions.add(transaction_id)
        for key, value in key_values.items():
            self.links.append({'transaction': transaction_id, 'key': self._id_of(self.keys, key),
                               'value': self._id_of(self.values, str(value))})
        for record in files:
            self.files.append({'_id': next(self._file_ids), 'transaction': transaction_id,
                               'name': record['name'], 'subdir': record.get('subdir', ''),
                               'size': int(record['size']), 'hashtype': record.get('hashtype', 'sha1'),
                               'hashsum': record.get('hashsum', ''), 'mimetype': 'application/octet-stream'})

    def _sync(self) -> None:
        """Make every ingest job that ended well a transaction (once)."""
        if self.ingest is None:
            return
        for job_id, job in list(self.ingest.jobs.items()):
            if job.ok and job_id not in self.transactions and job_id not in self.hidden:
                items = [item for item in job.metadata or () if isinstance(item, dict)]
                key_values = {item['key']: item['value'] for item in items
                              if item.get('destinationTable') == 'TransactionKeyValue'}
                self._add(job_id, key_values, [item for item in items if item.get('destinationTable') == 'Files'])

    def _rows(self, table: str) -> List[Dict[str, Any]]:
        if table == 'keys':
            return [{'_id': ident, 'key': key} for key, ident in self.keys.items()]
        if table == 'values':
            return [{'_id': ident, 'value': value} for value, ident in self.values.items()]
        if table == 'trans_key_value':
            return [dict(link) for link in self.links]
        return [dict(row) for row in self.files]

    def _handler(self, table: str) -> Any:
        def handle(request: Request) -> Any:
            with self._lock:
                self._sync()
                rows = self._rows(table)
            return [row for row in rows if _matches(row, request.query)]
        return handle

    def file_row(self, transaction_id: int, name: str) -> Optional[Dict[str, Any]]:
        """The stored row of a file, for tests that alter what the server reports."""
        for row in self.files:
            if row['transaction'] == transaction_id and row['name'] == name:
                return row
        return None


def _matches(row: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    for field, wanted in query.items():
        if field not in row:
            return False
        if str(row[field]) != wanted:
            return False
    return True

