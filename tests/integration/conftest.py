"""Fixtures for the suite that runs against the real Pacifica services.

The services come from ``scripts/pacifica-stack up``. Their addresses are read
from the environment (``eval "$(scripts/pacifica-stack env)"``) or, when it
is not set, from ``scripts/pacifica-stack env`` itself. When the stack does
not answer, every test here fails with a message that says how to start it:
a missing stack must never look like a passing (or skipped) suite.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO / 'scripts' / 'pacifica-stack'

#: Variables the library and these tests read; see `scripts/pacifica-stack env`.
ENDPOINT_VARIABLES = (
    'INGEST_UPLOAD_URL', 'INGEST_STATUS_URL', 'INGEST_ADDR', 'INGEST_PORT', 'POLICY_UPLOADER_URL',
    'POLICY_INGEST_URL', 'POLICY_ADDR', 'POLICY_PORT', 'CARTD_CART_API_URL', 'CARTD_ADDR', 'CARTD_PORT',
    'PACIFICA_POLICY_URL', 'PACIFICA_METADATA_URL', 'PACIFICA_INGEST_URL',
    'PACIFICA_CARTD_URL', 'PACIFICA_ARCHIVEINTERFACE_URL', 'PACIFICA_UNIQUEID_URL', 'PACIFICA_STACK_FIXTURES',
    'METADATA_ADDR', 'METADATA_PORT', 'PACIFICA_NOTIFICATIONS_URL',
)


def _stack_endpoints() -> Dict[str, str]:
    """Endpoints from the environment, else from the stack script (read before any test edits os.environ)."""
    found = {name: os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)}
    if len(found) == len(ENDPOINT_VARIABLES):
        return found
    # `env` fails, printing nothing, when the stack is not running: the `stack` fixture then fails every test.
    listed = subprocess.run([sys.executable, str(STACK_SCRIPT), 'env'], capture_output=True, text=True, check=False)
    for line in listed.stdout.splitlines():
        name, _, value = line.replace('export ', '', 1).partition('=')
        if name in ENDPOINT_VARIABLES:
            found.setdefault(name, value)
    return found


ENDPOINTS = _stack_endpoints()


class Stack:
    """Where the services are, plus small helpers to look at what they hold."""

    def __init__(self, endpoints: Dict[str, str]) -> None:
        self.env = dict(endpoints)
        self.ingest = endpoints['PACIFICA_INGEST_URL']
        self.policy = endpoints['PACIFICA_POLICY_URL']
        self.metadata = endpoints['PACIFICA_METADATA_URL']
        self.cartd = endpoints['CARTD_CART_API_URL']
        self.archive = endpoints['PACIFICA_ARCHIVEINTERFACE_URL']
        self.notifications = endpoints['PACIFICA_NOTIFICATIONS_URL']
        self.fixtures = json.loads(Path(endpoints['PACIFICA_STACK_FIXTURES']).read_text(encoding='utf-8'))

    def not_answering(self) -> List[str]:
        checks = {
            'metadata': (self.metadata + '/keys', (200,)),
            'policy': (self.policy + '/', (200,)),
            'ingest': (self.ingest + '/get_state?job_id=42', (404,)),
            'cartd': (self.cartd + '/', (200,)),
            'archive interface': (self.archive + '/', (200,)),
            'notifications': (self.notifications + '/eventmatch', (403,)),  # 403: no rules of the default user
        }
        silent = []
        for name, (url, good) in checks.items():
            try:
                if requests.get(url, timeout=5).status_code not in good:
                    silent.append(name)
            except requests.RequestException:
                silent.append(name)
        return silent

    def transaction(self, transaction_id: int) -> Dict[str, Any]:
        """Policy's transaction document (the downloader's input)."""
        reply = requests.get('{}/status/transactions/by_id/{}'.format(self.policy, transaction_id), timeout=30)
        reply.raise_for_status()
        return reply.json()

    def fixture_rows(self, name: str) -> List[Dict[str, Any]]:
        return [row for step in self.fixtures['objects'] if step['object'] == name for row in step['rows']]


@pytest.fixture(scope='session')
def stack() -> Stack:
    """The running stack; fails (never skips) every test when it is not up."""
    try:
        found = Stack(ENDPOINTS)
    except (KeyError, OSError, ValueError) as exc:
        pytest.fail('cannot find the Pacifica stack endpoints ({}); start it with '
                    '`scripts/pacifica-stack up`'.format(exc), pytrace=False)
    silent = found.not_answering()
    if silent:
        pytest.fail('the Pacifica stack is not up ({} do not answer); start it with '
                    '`scripts/pacifica-stack up`'.format(', '.join(silent)), pytrace=False)
    return found


@pytest.fixture(autouse=True)
def _stack_environment(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the endpoint variables back: the suite-wide conftest clears them for unit tests."""
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)


# --------------------------------------------------------------------------- upload material

UPLOADER_ID = 3001
UPLOADER_NETWORK_ID = 'zoe.h'
PROJECT = 'stk1001'
INSTRUMENT = 3101

#: A tree with non-ASCII names, an empty file and nested folders: relative path -> bytes.
TREE_FILES = {
    'résumé.txt': 'Zoë wrote this. ✓\n'.encode('utf-8'),
    'empty.dat': b'',
    'deep/er/still/núcleo.bin': bytes(range(256)) * 40,
    'deep/notes – draft.md': b'# Notes\n\nEn dash in the file name.\n',
    'Ωmega/日本語.txt': 'こんにちは\n'.encode('utf-8'),
}


def make_tree(root: Path) -> Path:
    """Write TREE_FILES under root."""
    for relative, data in TREE_FILES.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


@pytest.fixture
def upload_tree(tmp_path: Path) -> Path:
    """A fresh directory holding TREE_FILES."""
    return make_tree(tmp_path / 'upload-tree')


def upload_directory(root: Path, md_update: Any = None) -> int:
    """Bundle root with the fixture metadata, stream it to ingest with upload_bundle; return the job id."""
    from pacifica.uploader import Uploader
    from pacifica.uploader.bundler import Bundler
    entries = file_data_for(root)
    try:
        return Uploader().upload_bundle(Bundler(md_update or transaction_metadata(), entries))
    finally:
        close_file_data(entries)


def cloud_event_for(transaction: Dict[str, Any]) -> Dict[str, Any]:
    """The event metadata emits after an ingest: its data is the ingested metadata list."""
    data: List[Dict[str, Any]] = [
        {'destinationTable': 'Transactions._id', 'value': transaction['_id']},
        {'destinationTable': 'Transactions.submitter', 'value': transaction['submitter']},
        {'destinationTable': 'Transactions.project', 'value': transaction['project']},
        {'destinationTable': 'Transactions.instrument', 'value': transaction['instrument']},
    ]
    for record in transaction['files'].values():
        data.append({key: record[key] for key in (
            '_id', 'name', 'subdir', 'size', 'hashtype', 'hashsum', 'mimetype', 'ctime', 'mtime')})
        data[-1]['destinationTable'] = 'Files'
    return {
        'cloudEventsVersion': '0.1', 'eventType': 'org.pacifica.metadata.ingest',
        'source': '/pacifica/metadata/ingest', 'eventID': 'metadata.ingest.{}'.format(transaction['_id']),
        'eventTime': '2021-03-04T05:06:07', 'extensions': {}, 'contentType': 'application/json', 'data': data,
    }


def tree_on_disk(root: Path) -> Dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob('*') if path.is_file()}


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def file_data_for(root: Path, prefix: str = 'data') -> List[Dict[str, Any]]:
    """Bundler file_data for every file under root, named <prefix>/<relative path>."""
    entries = []
    for path in sorted(p for p in root.rglob('*') if p.is_file()):
        stat = path.stat()
        entries.append({
            'name': '{}/{}'.format(prefix, path.relative_to(root).as_posix()),
            'size': stat.st_size,
            'mtime': stat.st_mtime,
            'fileobj': open(path, 'rb'),  # noqa: SIM115 - closed by close_file_data
        })
    return entries


def close_file_data(entries: List[Dict[str, Any]]) -> None:
    for entry in entries:
        entry['fileobj'].close()


def transaction_metadata(submitter: Any = UPLOADER_ID, project: Any = PROJECT, instrument: Any = INSTRUMENT,
                         tag: str = 'intégration') -> Any:
    """A MetaUpdate that policy accepts for the fixture uploader."""
    from pacifica.uploader.metadata import MetaObj, MetaUpdate
    return MetaUpdate(str(UPLOADER_ID), [
        MetaObj(destinationTable='Transactions.submitter', metaID='logon', value=submitter),
        MetaObj(destinationTable='Transactions.project', metaID='project', value=project),
        MetaObj(destinationTable='Transactions.instrument', metaID='instrument', value=instrument),
        MetaObj(destinationTable='TransactionKeyValue', metaID='tag', key='Tag', value=tag),
    ])


def files_by_path(transaction: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """The transaction's files keyed by '<subdir>/<name>' without a leading slash."""
    return {'/'.join(part for part in (record['subdir'], record['name']) if part): record
            for record in transaction['files'].values()}


def wait_for_transaction(stack: Stack, job_id: int, deadline: float = 60.0) -> Dict[str, Any]:
    """Metadata gets the files at the very end of the job: poll policy until they are there."""
    end = time.monotonic() + deadline
    while True:
        document = stack.transaction(job_id)
        if document.get('files'):
            return document
        if time.monotonic() > end:
            raise AssertionError('transaction {} has no files in metadata after {}s: {}'.format(
                job_id, deadline, document))
        time.sleep(0.5)

