"""Fixtures shared by every test suite."""
from __future__ import annotations

import logging
from typing import Iterator

import pytest

from tests.helpers.secrets import SecretScanner, scan_for_secrets
from tests.helpers.server import LoopbackServer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A fresh loopback HTTP server with no routes."""
    srv = LoopbackServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(autouse=True)
def _clean_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start with no endpoint variables from the developer's shell."""
    for prefix in ('INGEST_', 'POLICY_', 'CARTD_', 'METADATA_'):
        for name in list(__import__('os').environ):
            if name.startswith(prefix):
                monkeypatch.delenv(name)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every logger at DEBUG (secrets tests read caplog.text)."""
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture(autouse=True)
def secrets(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretScanner]:
    """Every test runs with DEBUG logging on and fails if a known secret reaches a log line or an error text."""
    yield from scan_for_secrets(caplog, monkeypatch)
