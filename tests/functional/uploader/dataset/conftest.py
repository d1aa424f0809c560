"""Fixtures of the sharded-upload tests: the loopback ingest stand-in and a spawn process pool of two."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from typing import Iterator

import pytest

from tests.helpers.ingestd import IngestServer
from tests.helpers.metadatad import MetadataServer
from tests.helpers.server import LoopbackServer


@pytest.fixture
def ingest(monkeypatch: pytest.MonkeyPatch) -> Iterator[IngestServer]:
    """The ingest stand-in, with the metadata tables (``ingest.metadata``) on the same server.

    Each job that ended well is a transaction there, as after a real ingest;
    METADATA_ADDR / METADATA_PORT point the checks and resolutions at it.
    """
    server = LoopbackServer()
    monkeypatch.setenv('METADATA_ADDR', '127.0.0.1')
    monkeypatch.setenv('METADATA_PORT', str(server.port))
    try:
        ingest = IngestServer(server)
        ingest.metadata = MetadataServer(server, ingest=ingest)  # type: ignore[attr-defined]
        yield ingest
    finally:
        server.close()


@pytest.fixture
def pool() -> Iterator[cf.ProcessPoolExecutor]:
    executor = cf.ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context('spawn'))
    yield executor
    executor.shutdown(wait=True)
