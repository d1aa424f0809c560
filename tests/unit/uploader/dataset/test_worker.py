"""The work units: what a failure means for the shard depends on how much of the body went out."""
from __future__ import annotations

import hashlib
import pickle
from typing import Any, Dict, List

import pytest

from pacifica.uploader import IngestJobFailedError, JobTimeoutError, ServerConnectionError, TransferConfig
from pacifica.uploader.dataset import worker
from pacifica.uploader.dataset.metadata import shard_metadata
from pacifica.uploader.dataset.worker import (
    INGESTED, JOB_FAILED, NOT_FOLLOWED, NOT_SENT, SENT, UNKNOWN, Outcome, SendTask, follow_job, send_shard,
)
from pacifica.uploader.metadata import MetaData, MetaObj, metadata_encode

DATASET = '0b6a2f0e-8a53-4f47-9a55-2d7c1b3c4e5f'


def task(tmp_path: Any, files: int = 3) -> SendTask:
    entries = []
    for index in range(files):
        path = tmp_path / 'f{}'.format(index)
        path.write_bytes(b'x' * 1000 * (index + 1))
        entries.append({'name': 'data/f{}'.format(index), 'size': 1000 * (index + 1), 'mtime': 0, 'path': str(path)})
    metadata = shard_metadata(MetaData([MetaObj(destinationTable='Transactions.project', value='p')]), DATASET, 2, 5)
    return SendTask(2, metadata_encode(metadata), entries, {'upload_url': 'http://ingest.invalid/upload'}, {})


class FakeUploader:
    """Reads ``take`` bytes of the body (all: None), then answers ``job`` or raises ``error``."""

    take: Any = None
    error: Any = None
    job: Any = 1000
    seen: List[bytes] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def upload_bundle(self, bundler: Any) -> Any:
        length = bundler.content_length()
        body = bytearray()
        if self.take != 0:
            for chunk in bundler.iter_bytes():
                body += bytes(chunk)
                if self.take is not None and len(body) >= self.take:
                    break
        type(self).seen.append(bytes(body))
        if self.take is None:
            assert len(body) == length
        if self.error is not None:
            raise self.error
        return self.job

    def wait(self, job_id: Any, timeout: Any = None) -> Dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {'job_id': job_id, 'state': 'OK', 'task': 'ingest metadata', 'task_percent': '100.0'}


@pytest.fixture
def uploader(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = type('Fake', (FakeUploader,), {'seen': []})
    monkeypatch.setattr(worker, 'Uploader', fake)
    return fake


def test_a_shard_sent_whole_comes_back_with_its_job_id(tmp_path: Any, uploader: Any) -> None:
    outcome = send_shard(task(tmp_path))
    assert outcome[:4] == (2, SENT, 1000, '')
    # The Files records the bundle carried come back for the check after ingest.
    assert [(record.path, record.size, record.hashtype) for record in outcome.files] == [
        ('f0', 1000, 'sha1'), ('f1', 2000, 'sha1'), ('f2', 3000, 'sha1')]
    assert [record.hashsum for record in outcome.files] == [
        hashlib.sha1(b'x' * 1000 * (index + 1)).hexdigest() for index in range(3)]
    tar = uploader.seen[0]
    assert b'"pacifica.dataset.part", "value": "2/5"' in tar and DATASET.encode() in tar


def test_a_shard_whose_upload_was_refused_before_the_body_was_not_sent(tmp_path: Any, uploader: Any) -> None:
    uploader.take, uploader.error = 0, ServerConnectionError('connection refused')
    outcome = send_shard(task(tmp_path))
    assert (outcome.kind, outcome.job_id) == (NOT_SENT, None)
    assert outcome.error == 'ServerConnectionError: connection refused'


def test_a_body_cut_short_was_not_sent(tmp_path: Any, uploader: Any) -> None:
    uploader.take, uploader.error = 1, ServerConnectionError('connection reset mid-body')
    work = task(tmp_path)._replace(bundler_kwargs={'config': TransferConfig(chunk_size=1024)})
    assert send_shard(work).kind == NOT_SENT
    assert 0 < len(uploader.seen[0]) < 7000


def test_a_body_sent_whole_without_an_answer_is_unknown(tmp_path: Any, uploader: Any) -> None:
    uploader.error = ServerConnectionError('connection reset before the reply')
    outcome = send_shard(task(tmp_path))
    assert (outcome.kind, outcome.job_id) == (UNKNOWN, None)
    assert 'before the reply' in outcome.error


def test_a_file_that_vanished_fails_the_shard_before_anything_is_sent(tmp_path: Any, uploader: Any) -> None:
    work = task(tmp_path)
    (tmp_path / 'f1').unlink()
    outcome = send_shard(work)
    assert outcome.kind == NOT_SENT and 'f1' in outcome.error
    assert all(len(body) < 7000 for body in uploader.seen)


def test_a_file_that_changed_since_planning_fails_the_shard(tmp_path: Any, uploader: Any) -> None:
    work = task(tmp_path)
    (tmp_path / 'f2').write_bytes(b'short')
    outcome = send_shard(work)
    assert outcome.kind == NOT_SENT and "'size' is 3000" in outcome.error


def test_work_units_and_their_results_pickle(tmp_path: Any) -> None:
    work = task(tmp_path)
    assert pickle.loads(pickle.dumps(work)) == work
    assert pickle.loads(pickle.dumps(Outcome(1, UNKNOWN, None, 'x'))) == Outcome(1, UNKNOWN, None, 'x')
    assert pickle.loads(pickle.dumps(send_shard)) is send_shard
    assert pickle.loads(pickle.dumps(follow_job)) is follow_job


def test_following_a_job_to_its_end(uploader: Any) -> None:
    assert follow_job({}, 3, 1002, 5) == Outcome(3, INGESTED, 1002)


def test_a_job_that_failed(uploader: Any) -> None:
    uploader.error = IngestJobFailedError('ingest job 1002 FAILED in task ingest files', 1002, {})
    outcome = follow_job({}, 3, 1002, 5)
    assert (outcome.kind, outcome.job_id) == (JOB_FAILED, 1002) and 'FAILED' in outcome.error


def test_a_wait_that_failed_leaves_the_job_to_follow_again(uploader: Any) -> None:
    uploader.error = JobTimeoutError('ingest job 1002 did not finish within 5 s', 1002, {})
    assert follow_job({}, 3, 1002, 5).kind == NOT_FOLLOWED


def test_a_task_never_shows_the_uploader_keywords(tmp_path: Any) -> None:
    work = task(tmp_path)._replace(uploader_kwargs={'auth': {'auth': ('user', 'hunter2-secret')}})
    assert repr(work) == 'SendTask(part=2, files=3)' and str(work) == repr(work)


def test_the_checks_after_ingest_of_a_process_run_one_at_a_time(uploader: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each check holds a shard's decoded /files answer: two at once would hold two (benchmarks/README.md)."""
    held: List[bool] = []
    monkeypatch.setattr(worker, 'verify_transaction',
                        lambda lookup, job_id, expected: held.append(worker._ONE_CHECK_AT_A_TIME.locked()))
    outcome = follow_job({}, 3, 1002, 5, expected=[], lookup_kwargs={'metadata_url': 'http://127.0.0.1:1'})
    assert outcome.kind == INGESTED
    assert held == [True] and not worker._ONE_CHECK_AT_A_TIME.locked()
