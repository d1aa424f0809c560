"""Fixtures of the reliability suite (the secrets scanner is global: tests/helpers/secrets.py)."""
from __future__ import annotations

import time
from typing import Any, Iterator

import pytest

from pacifica._client.config import TransferConfig
from tests.helpers.faults import FaultProxy
from tests.helpers.secrets import (  # noqa: F401 - re-exported for the suite's modules
    KNOWN_SECRETS, SECRET_KEY_DIR, SECRET_KEY_NAME, SECRET_PASSWORD, SECRET_TOKEN, SECRET_URL_PASSWORD,
    SECRET_URL_USER, SECRET_USER, SecretScanner, secret_auth_dict,
)
from tests.helpers.server import LoopbackServer

#: Quick settings for every client of this suite: faults are felt in well under a second.
FAST = TransferConfig(connect_timeout=1.0, read_timeout=0.4, call_deadline=1.0, retries=4,
                      backoff_factor=0.01, backoff_max=0.05, retry_after_max=0.3, poll_interval=0.05)

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
