"""Fixtures of the sharded-upload tests: the loopback ingest stand-in and a spawn process pool of two."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from typing import Iterator

import pytest

from tests.helpers.ingestd import IngestServer
from tests.helpers.server import LoopbackServer


@pytest.fixture
def ingest() -> Iterator[IngestServer]:
    server = LoopbackServer()
    try:
        yield IngestServer(server)
    finally:
        server.close()


@pytest.fixture
def pool() -> Iterator[cf.ProcessPoolExecutor]:
    executor = cf.ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context('spawn'))
    yield executor
    executor.shutdown(wait=True)
