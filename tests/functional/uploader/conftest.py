"""Loopback stand-ins for the Policy and Ingest servers, speaking their wire formats.

The Policy stand-in answers ``POST /uploader`` from small in-memory tables the
way pacifica-policy 0.8.3 does (``where`` filters, ``columns`` selects) and
``POST /ingest`` with ``{"status": "success"}`` or, for metadata it refuses,
HTTP 412 and the JSON error document cherrypy renders for policy. The Ingest
stand-in records uploads and serves job states from a script.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from pacifica.uploader import TransferConfig
from tests.helpers.server import LoopbackServer, Reply

#: Small timeouts and backoff so fault tests finish quickly.
FAST = TransferConfig(connect_timeout=2, read_timeout=2, call_deadline=6, backoff_factor=0.01, chunk_size=4096)

TABLES: Dict[str, List[Dict[str, Any]]] = {
    'users': [
        {'_id': 10, 'network_id': 'dmlb2001', 'first_name': 'David', 'last_name': 'Brown'},
        {'_id': 11, 'network_id': 'jüri', 'first_name': 'Jüri', 'last_name': 'Ääre'},
    ],
    'projects': [
        {'_id': '1234a', 'title': 'Pacifica Development', 'user_id': 10},
        {'_id': '1235', 'title': 'Other', 'user_id': 11},
    ],
    'instruments': [
        {'_id': 54, 'name': 'NMR PROBES', 'display_name': 'NMR', 'project_id': '1234a'},
        {'_id': 55, 'name': 'Nittany Liquid Probes', 'display_name': 'NLP', 'project_id': '1235'},
    ],
}


def policy_rejection(message: str, status: str = '412 Precondition Failed') -> Reply:
    """The JSON error page pacifica-policy 0.8.3 sends when it refuses the metadata."""
    doc = {'message': message, 'postdata': '[]', 'status': status, 'traceback': 'Traceback ...',
           'version': 'CherryPy 18'}
    return Reply(int(status.split()[0]), json.dumps(doc, sort_keys=True, indent=4),
                 {'Content-Type': 'application/json'})


class FakePolicy:
    """Answers uploader queries from TABLES; ``refuse`` makes the ingest check fail."""

    def __init__(self, server: LoopbackServer) -> None:
        self.queries: List[Dict[str, Any]] = []
        self.validated: List[Any] = []
        self.refuse = ''
        server.route('POST', '/uploader', self.uploader)
        server.route('POST', '/ingest', self.ingest)

    def uploader(self, request: Any) -> Any:
        query = request.json()
        self.queries.append(query)
        if list(query) != ['user', 'columns', 'where', 'from']:
            return Reply(500, 'bad query keys {}'.format(list(query)))
        where = query['where'] or {}
        rows = []
        for row in TABLES.get(query['from'], []):
            if all(row.get(column) == value for column, value in where.items()):
                rows.append({column: row.get(column) for column in query['columns'] or row})
        return rows

    def ingest(self, request: Any) -> Any:
        self.validated.append(request.json())
        if self.refuse:
            return policy_rejection(self.refuse)
        return {'status': 'success'}


@pytest.fixture
def policy(server: LoopbackServer) -> FakePolicy:
    return FakePolicy(server)


@pytest.fixture
def policy_env(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> LoopbackServer:
    """Point PolicyQuery's defaults (env POLICY_*) at the loopback server."""
    monkeypatch.setenv('POLICY_ADDR', '127.0.0.1')
    monkeypatch.setenv('POLICY_PORT', str(server.port))
    return server


def job_state(job_id: int, state: str = 'OK', task: str = 'UPLOADING', percent: str = '0.0',
              exception: str = '') -> Dict[str, Any]:
    """A state document as pacifica-ingest 0.4.1 renders it."""
    return {'job_id': job_id, 'state': state, 'task': task, 'task_percent': percent, 'complete': False,
            'updated': '2024-01-01 00:00:00', 'created': '2024-01-01 00:00:00', 'exception': exception}
