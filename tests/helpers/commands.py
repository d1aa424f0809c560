"""Loopback stand-ins for ingest, policy and cartd, and helpers to run the commands.

The fixtures ``services`` and ``cart`` are registered by ``tests/functional/conftest.py``.
"""
from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
from typing import Any, Dict, List, Optional, Sequence

import pytest

from tests.helpers.ingestd import read_metadata
from tests.helpers.metadatad import MetadataServer
from tests.helpers.server import LoopbackServer, Reply, Request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Metadata that policy accepts in these tests (the upstream test data's ids).
GOOD_META = ['--meta', 'Transactions.submitter=10', '--meta', 'Transactions.project=1234a',
             '--meta', 'Transactions.instrument=54']


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_module(module: str, args: Sequence[str], cwd: str, env: Optional[Dict[str, str]] = None
               ) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` in a process of its own, as a user would."""
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(('INGEST_', 'POLICY_', 'CARTD_'))}
    environ['PYTHONPATH'] = ROOT + os.pathsep + environ.get('PYTHONPATH', '')
    environ.update(env or {})
    return subprocess.run([sys.executable, '-m', module, *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=60)


class FakeIngestPolicy:
    """Ingest (``/upload``, ``/get_state``) and policy (``/ingest``, ``/uploader``) on one server."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.url = server.url
        self.job_id = 1234
        self.validation: Any = {'status': 'success'}
        self.final_state: Dict[str, Any] = {'state': 'OK', 'task': 'ingest metadata', 'task_percent': '100.0',
                                            'exception': ''}
        self.users = {'dmlb2001': 10}
        server.route('POST', '/ingest', lambda req: self.validation)
        server.route('POST', '/upload', self._upload)
        server.route('GET', '/get_state', self._state)
        server.route('POST', '/uploader', self._query)
        #: The metadata tables ``--wait`` verifies against: each upload's Files records, as ingest records them.
        self.metadata = MetadataServer(server)

    def _upload(self, req: Request) -> Any:
        if self.job_id not in self.metadata.transactions:
            self.metadata.add_ingested(self.job_id, read_metadata(req.body))
        return {'job_id': self.job_id}

    def _state(self, req: Request) -> Any:
        return dict(self.final_state, job_id=int(req.query['job_id']), complete=True,
                    created='2024-01-01 00:00:00', updated='2024-01-01 00:00:01')

    def _query(self, req: Request) -> Any:
        query = req.json()
        network_id = (query.get('where') or {}).get('network_id')
        return [{'_id': self.users[network_id]}] if network_id in self.users else []

    def bodies(self, path: str) -> List[bytes]:
        return [req.body for req in self.server.requests if req.method == 'POST' and req.path == path]

    def flags(self) -> List[str]:
        return ['--ingest-url', self.url, '--policy-url', self.url, '--metadata-url', self.url]


@pytest.fixture
def services(server: LoopbackServer) -> FakeIngestPolicy:
    return FakeIngestPolicy(server)


def tar_bytes(files: Dict[str, bytes], prefix: str = 'data') -> bytes:
    """An uncompressed tar as cartd streams it: members ``<prefix>/<path>``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w|') as tar:
        for path, data in files.items():
            info = tarfile.TarInfo('{}/{}'.format(prefix, path))
            info.size = len(data)
            info.mtime = 1545127200
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class FakeCart:
    """cartd (cart POST, HEAD, GET) and the policy transaction lookup on one server."""

    def __init__(self, server: LoopbackServer, files: Dict[str, bytes]) -> None:
        self.server = server
        self.url = server.url
        self.files = dict(files)
        self.served = dict(files)  # what the cart's tar holds (tests may corrupt it)
        self.transinfo = {
            '_id': 67, 'submitter': 10, 'project': '1234a', 'instrument': 54,
            'files': {str(100 + index): self.file_record(path, data) for index, (path, data) in
                      enumerate(sorted(self.files.items()))},
        }
        server.route('GET', '/status/transactions/by_id/67', lambda req: self.transinfo)
        server.route('POST', '*', Reply(201, b'{"message": "Pulling files"}', {'Content-Type': 'application/json'}))
        server.route('HEAD', '*', Reply(204, b'', {'X-Pacifica-Status': 'ready', 'X-Pacifica-Message': ''}))
        server.route('GET', '*', self._get)

    def _get(self, req: Request) -> Any:
        if req.path.startswith('/status/'):  # policy answers unknown ids with 200 and an error document
            return {'status': '404 Not Found', 'message': 'No Transaction with an ID of {} was found'.format(
                req.path.rsplit('/', 1)[1])}
        return Reply(200, iter([tar_bytes(self.served, req.query.get('filename', 'data'))]))

    @staticmethod
    def file_record(path: str, data: bytes) -> Dict[str, Any]:
        subdir, _, name = path.rpartition('/')
        return {'name': name, 'subdir': subdir, 'size': len(data), 'hashtype': 'sha1',
                'hashsum': hashlib.sha1(data).hexdigest()}

    def cloudevent(self) -> Dict[str, Any]:
        return {'specversion': '0.3', 'type': 'org.pacifica.metadata.ingest', 'source': '/pacifica/metadata/ingest',
                'id': 'event-1', 'data': [dict(record, _id=int(file_id), destinationTable='Files')
                                          for file_id, record in self.transinfo['files'].items()]}

    def flags(self) -> List[str]:
        return ['--cart-url', self.url, '--policy-url', self.url]


SAMPLE_FILES = {'résumé.txt': 'Grüße aus Pacifica\n'.encode(), 'sub/数据.bin': bytes(range(256)) * 40,
                'sub/empty.dat': b''}


@pytest.fixture
def cart(server: LoopbackServer) -> FakeCart:
    return FakeCart(server, SAMPLE_FILES)
