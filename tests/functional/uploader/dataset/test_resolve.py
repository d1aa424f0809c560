"""resolve_part against the loopback metadata stand-in: found, not found after the wait, no answer."""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from pacifica.uploader.dataset import DATASET_KEY, PART_KEY
from pacifica.uploader.dataset.worker import FOUND, NOT_FOUND, UNRESOLVED, resolve_part
from tests.helpers.ingestd import IngestServer
from tests.helpers.server import Reply

from .support import CONFIG


def lookup_kwargs(ingest: IngestServer) -> Any:
    return {'metadata_url': ingest.url, 'config': CONFIG}


def test_a_part_that_turns_up_during_the_wait_is_found(ingest: IngestServer) -> None:
    dataset = str(uuid.uuid4())
    calls = []
    handler, _ = ingest.server.routes[('GET', '/keys')]

    def keys(request: Any) -> Any:
        calls.append(1)
        if len(calls) == 4:  # the job ends while the lookup waits
            ingest.metadata.add_transaction(71, {DATASET_KEY: dataset, PART_KEY: '2/4'}, [])
        return handler(request)

    ingest.server.route('GET', '/keys', keys)
    outcome = resolve_part(lookup_kwargs(ingest), dataset, 2, 4, wait=10, interval=0.05)
    assert (outcome.kind, outcome.job_id) == (FOUND, 71)


def test_a_part_not_there_after_the_wait_is_not_found(ingest: IngestServer) -> None:
    dataset = str(uuid.uuid4())
    ingest.metadata.add_transaction(72, {DATASET_KEY: dataset, PART_KEY: '1/4'}, [])
    started = time.monotonic()
    outcome = resolve_part(lookup_kwargs(ingest), dataset, 2, 4, wait=0.5, interval=0.05)
    assert outcome.kind == NOT_FOUND and time.monotonic() - started >= 0.5
    assert 'after 0.5 s' in outcome.error


def test_a_metadata_server_that_never_answers_leaves_it_unresolved(ingest: IngestServer) -> None:
    ingest.server.route('GET', '/keys', Reply(503, b'down for maintenance'))
    outcome = resolve_part(lookup_kwargs(ingest), str(uuid.uuid4()), 2, 4, wait=0.3, interval=0.05)
    assert outcome.kind == UNRESOLVED and 'cannot ask the metadata server' in outcome.error
    assert '503' in outcome.error


def test_a_run_that_ends_stops_the_wait(ingest: IngestServer) -> None:
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    outcome = resolve_part(lookup_kwargs(ingest), str(uuid.uuid4()), 1, 2, wait=30, interval=0.05, stop=stop)
    assert outcome.kind == UNRESOLVED and time.monotonic() - started < 10
