"""Fixtures of the reliability suite, and its secrets scanner.

The scanner (autouse, every test of this directory) turns DEBUG logging on for
the root logger, urllib3 and the ``pacifica`` loggers, records every
:class:`PacificaError` created during the test, and fails the test if a known
secret value appears in any captured log record or in the text (str, repr,
args, chained causes) of any of those exceptions. Tests put the secrets into
their clients with the ``secret_auth`` fixture, or register their own with
``secrets.add(value)``.
"""
from __future__ import annotations

import base64
import logging
import os
import time
from typing import Any, Iterator, List, Set

import pytest

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import PacificaError
from tests.helpers.faults import FaultProxy
from tests.helpers.server import LoopbackServer

#: The suite's canonical secrets: a password, a bearer token, a client key path, a URL password.
SECRET_PASSWORD = 'pw-5ecr3t-Zq9'
SECRET_TOKEN = 'tok-5ecr3t-Xk2'
#: The client key path's directory and file names: a leak of the path shows either.
SECRET_KEY_DIR = 'secret-dir-Hh7'
SECRET_KEY_NAME = 'client-5ecr3t.key'
SECRET_URL_PASSWORD = 'urlpw-5ecr3t-Jm4'
#: The user names the suite pairs the passwords with (HTTP Basic sends base64('user:password')).
SECRET_USER, SECRET_URL_USER = 'alice', 'bob'
KNOWN_SECRETS = (SECRET_PASSWORD, SECRET_TOKEN, SECRET_KEY_DIR, SECRET_KEY_NAME, SECRET_URL_PASSWORD,
                 base64.b64encode('{}:{}'.format(SECRET_USER, SECRET_PASSWORD).encode()).decode(),
                 base64.b64encode('{}:{}'.format(SECRET_URL_USER, SECRET_URL_PASSWORD).encode()).decode())

#: Quick settings for every client of this suite: faults are felt in well under a second.
FAST = TransferConfig(connect_timeout=1.0, read_timeout=0.4, call_deadline=1.0, retries=4,
                      backoff_factor=0.01, backoff_max=0.05, retry_after_max=0.3, poll_interval=0.05)

LOGGERS = ('', 'urllib3', 'requests', 'pacifica', 'pacifica.uploader', 'pacifica.downloader', 'pacifica._client')


def secret_auth_dict(key_root: str) -> dict:
    """An ``auth`` dict holding every kind of secret the library must never show.

    The client certificate and key files exist under ``key_root`` (requests
    checks that), and are ignored on http://, so calls still work.
    """
    key_dir = os.path.join(key_root, SECRET_KEY_DIR)
    os.makedirs(key_dir, exist_ok=True)
    cert, key = os.path.join(key_dir, 'client.pem'), os.path.join(key_dir, SECRET_KEY_NAME)
    for path in (cert, key):
        with open(path, 'w') as handle:
            handle.write('not a real key\n')
    return {
        'auth': (SECRET_USER, SECRET_PASSWORD),
        'headers': {'Authorization': 'Bearer ' + SECRET_TOKEN},
        'cert': (cert, key),
    }


def _texts_of(err: BaseException) -> Iterator[str]:
    """Every text a user could see for ``err``, including what a traceback prints of its chain."""
    seen = 0
    while err is not None and seen < 10:
        seen += 1
        yield str(err)
        yield repr(err)
        for arg in getattr(err, 'args', ()):
            yield repr(arg)
        for name in ('body', 'url', 'server_exception', 'member', 'problems', 'reply', 'state'):
            if hasattr(err, name):
                yield repr(getattr(err, name))
        cause = err.__cause__
        if cause is None and not err.__suppress_context__:
            cause = err.__context__
        err = cause


class SecretScanner:
    """Collects the texts a test produced and checks them for secrets."""

    def __init__(self) -> None:
        self.secrets: Set[str] = set(KNOWN_SECRETS)
        self.errors: List[BaseException] = []

    def add(self, value: str) -> None:
        self.secrets.add(value)

    def leaks(self, caplog: pytest.LogCaptureFixture) -> List[str]:
        found = []
        handler_formatter = logging.Formatter('%(name)s %(levelname)s %(message)s')
        for record in caplog.records:
            line = handler_formatter.format(record)
            found += ['log {}: {!r}'.format(record.name, line[:300]) for s in self.secrets if s in line]
        for err in self.errors:
            for text in _texts_of(err):
                found += ['{}: {!r}'.format(type(err).__name__, text[:300]) for s in self.secrets if s in text]
        return found


@pytest.fixture(autouse=True)
def secrets(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretScanner]:
    """DEBUG logging everywhere; at the end, no known secret in any log line or PacificaError text."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    scanner = SecretScanner()

    def recording_init(self, *args, **kwargs):  # observe, do not change, every PacificaError made
        scanner.errors.append(self)
        super(PacificaError, self).__init__(*args, **kwargs)
    # __init__, not __new__: replacing __new__ would change how OSError-based classes take arguments.
    monkeypatch.setattr(PacificaError, '__init__', recording_init)
    yield scanner
    leaks = scanner.leaks(caplog)
    assert not leaks, 'secrets leaked:\n' + '\n'.join(leaks)


@pytest.fixture(scope='session')
def secret_key_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp('keys'))


@pytest.fixture
def secret_auth(secret_key_root: str) -> dict:
    return secret_auth_dict(secret_key_root)


@pytest.fixture(scope='module')
def deployment(tmp_path_factory: pytest.TempPathFactory, secret_key_root: str) -> Iterator[Any]:
    """Ingest, policy and cartd stand-ins behind fault proxies, shared by a module (starting them is slow)."""
    from tests.reliability import stands as st
    deployed, closers = st.start(str(tmp_path_factory.mktemp('stands')), FAST, secret_auth_dict(secret_key_root))
    try:
        yield deployed
    finally:
        for close in closers:
            close()


@pytest.fixture
def stands(deployment: Any, tmp_path: Any, secret_auth: dict) -> Any:
    """The shared deployment reset for this test: fresh stand-ins, no scripted faults, zero counts."""
    from tests.reliability import stands as st
    return st.reset(deployment, str(tmp_path), FAST, secret_auth)


@pytest.fixture(scope='module')
def _shared_upstream() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope='module')
def _shared_proxy(_shared_upstream: LoopbackServer) -> Iterator[FaultProxy]:
    prox = FaultProxy(_shared_upstream.url, lifetime=600)
    try:
        yield prox
    finally:
        prox.close()


@pytest.fixture
def upstream(_shared_upstream: LoopbackServer) -> LoopbackServer:
    """The real server behind the proxy: no routes, nothing recorded (shared by a module, reset per test)."""
    _shared_upstream.routes.clear()
    del _shared_upstream.requests[:]
    return _shared_upstream


@pytest.fixture
def proxy(upstream: LoopbackServer, _shared_proxy: FaultProxy) -> FaultProxy:
    """A fault proxy in front of ``upstream``, with no script and zero counts."""
    _shared_proxy.reset()
    return _shared_proxy


class Stopwatch:
    """``with stopwatch(limit):`` asserts the block took at most ``limit`` seconds."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def __call__(self, limit: float) -> 'Stopwatch':
        self.limit = limit
        return self

    def __enter__(self) -> 'Stopwatch':
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.start
        assert self.elapsed <= self.limit, 'took {:.2f} s, limit {:.2f} s'.format(self.elapsed, self.limit)


@pytest.fixture
def stopwatch() -> Stopwatch:
    return Stopwatch()
