"""Sharded uploads through worker processes to the loopback ingest stand-in: each file exactly once."""
from __future__ import annotations

import io
import os
import tarfile
import time
from collections import Counter
from typing import Any, Callable, List

import pytest

from pacifica.uploader.dataset import dataset_tags, upload_dataset
from pacifica.uploader.dataset.manifest import FAILED, INGESTED, Manifest
from pacifica.uploader.dataset.plan import entries_under
from tests.helpers.ingestd import IngestServer
from tests.helpers.server import Raw, Request, reset_connection

from .support import files_listed, metadata, part_of, uploader_kwargs, uploads


@pytest.fixture
def dataset(tmp_path: Any) -> str:
    """Eleven files in nested folders, of sizes that make the byte limit matter."""
    root = tmp_path / 'run42'
    for index in range(11):
        folder = root / ('raw' if index % 3 else 'derived') / ('deep' if index % 2 else '')
        folder.mkdir(parents=True, exist_ok=True)
        (folder / 'file{:02d}.dat'.format(index)).write_bytes(bytes([index]) * (700 * (index % 4) + 1))
    return str(root)


def received_files(requests: List[Request]) -> List[tuple]:
    """(member name, bytes) of every data file in every tar that arrived."""
    files = []
    for request in requests:
        with tarfile.open(fileobj=io.BytesIO(request.body), mode='r:') as tar:
            for info in tar:
                if info.name != 'metadata.txt':
                    files.append((info.name, tar.extractfile(info).read()))
    return files


def source_files(root: str) -> List[tuple]:
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, 'rb') as data:
                found.append(('data/' + os.path.relpath(path, root).replace(os.sep, '/'), data.read()))
    return found


def intercept_uploads(ingest: IngestServer, decide: Callable[[Request, Callable[[Request], Any]], Any]) -> None:
    """Route POST /upload through ``decide(request, ingest_handler)``."""
    handler, read_body = ingest.server.routes[('POST', '/upload')]
    ingest.server.route('POST', '/upload', lambda request: decide(request, handler), read_body=read_body)


def test_shards_through_two_processes_carry_every_file_exactly_once(tmp_path: Any, ingest: IngestServer,
                                                                    pool: Any, dataset: str) -> None:
    manifest_path = str(tmp_path / 'run42.manifest.json')
    report = upload_dataset(dataset, metadata(), manifest_path, max_files=3, max_bytes=4000, executor=pool,
                            uploader_kwargs=uploader_kwargs(ingest), wait_timeout=30)
    assert report.complete, report
    assert report.parts >= 4
    requests = uploads(ingest)
    assert len(requests) == report.parts
    assert sorted(received_files(requests)) == sorted(source_files(dataset))
    assert all(job.ok for job in ingest.jobs.values()), [job.problem for job in ingest.jobs.values()]
    tags = sorted(dataset_tags(job.metadata) for job in ingest.jobs.values())
    assert tags == [(report.dataset_id, part, report.parts) for part in range(1, report.parts + 1)]
    manifest = Manifest.load(manifest_path)
    assert {record.job_id for record in manifest.shards} == set(ingest.jobs)
    assert all(record.transaction_id == record.job_id for record in manifest.shards)

    again = upload_dataset(dataset, metadata(), manifest_path, executor=pool, uploader_kwargs=uploader_kwargs(ingest))
    assert again.complete and again.sent == []
    assert len(uploads(ingest)) == report.parts, 'a re-run sends nothing'


def test_the_default_executor_is_a_process_pool(tmp_path: Any, ingest: IngestServer, dataset: str) -> None:
    report = upload_dataset(dataset, metadata(), str(tmp_path / 'm.json'), max_files=4, workers=2,
                            uploader_kwargs=uploader_kwargs(ingest), wait_timeout=30)
    assert report.complete and report.parts == 3
    assert sorted(received_files(uploads(ingest))) == sorted(source_files(dataset))


def test_a_shard_whose_reply_was_lost_is_found_on_the_server_not_sent_again(tmp_path: Any, ingest: IngestServer,
                                                                          pool: Any, dataset: str) -> None:
    def lose_part_two_reply(request: Request, handler: Callable[[Request], Any]) -> Any:
        answer = handler(request)  # ingest got the whole bundle and opened a job ...
        if part_of(request) == 2:
            return Raw(reset_connection)  # ... and the reply never reached the client
        return answer

    intercept_uploads(ingest, lose_part_two_reply)
    manifest_path = str(tmp_path / 'm.json')
    report = upload_dataset(dataset, metadata(), manifest_path, max_files=4, executor=pool,
                            uploader_kwargs=uploader_kwargs(ingest), wait_timeout=30, resolve_wait=20)
    [job_two] = [job.job_id for job in ingest.jobs.values() if dataset_tags(job.metadata).part == 2]
    assert report.complete and report.unknown == {} and report.resolved == {2: job_two}
    record = Manifest.load(manifest_path).shard(2)
    assert (record.state, record.transaction_id) == (INGESTED, job_two)

    again = upload_dataset(dataset, metadata(), manifest_path, executor=pool, uploader_kwargs=uploader_kwargs(ingest))
    assert again.complete and again.sent == [] and again.resolved == {}
    assert sorted(part_of(request) for request in uploads(ingest)) == [1, 2, 3], 'part 2 went out once only'


def test_a_shard_whose_reply_was_lost_and_whose_job_failed_is_sent_again(tmp_path: Any, ingest: IngestServer,
                                                                         pool: Any, dataset: str) -> None:
    lost: List[int] = []

    def lose_the_first_reply_of_part_two(request: Request, handler: Callable[[Request], Any]) -> Any:
        answer = handler(request)
        if part_of(request) == 2 and not lost:
            job = ingest.job(answer['job_id'])
            job.ok, job.problem = False, 'simulated: the archive was full'  # no transaction will come of it
            lost.append(job.job_id)
            return Raw(reset_connection)
        return answer

    intercept_uploads(ingest, lose_the_first_reply_of_part_two)
    started = time.monotonic()
    report = upload_dataset(dataset, metadata(), str(tmp_path / 'm.json'), max_files=4, executor=pool,
                            uploader_kwargs=uploader_kwargs(ingest), wait_timeout=30, resolve_wait=1.5)
    assert time.monotonic() - started >= 1.5, 'the lookup waited resolve_wait before giving up'
    assert report.complete and report.resolved == {2: None}
    assert sorted(part_of(request) for request in uploads(ingest)) == [1, 2, 2, 3]
    every_file = Counter(name for job in ingest.jobs.values() if job.ok for name in files_listed(job.metadata))
    assert sorted(every_file) == sorted(name for name, _ in source_files(dataset)) and set(every_file.values()) == {1}


def test_a_transaction_that_differs_from_its_shard_fails_it_naming_the_files(tmp_path: Any, ingest: IngestServer,
                                                                             pool: Any, dataset: str) -> None:
    handler, _ = ingest.server.routes[('GET', '/files')]

    def wrong_size(request: Request) -> Any:
        rows = handler(request)
        for row in rows:
            if row['name'] == 'file05.dat':
                row['size'] += 1
        return rows

    ingest.server.route('GET', '/files', wrong_size)
    report = upload_dataset(dataset, metadata(), str(tmp_path / 'm.json'), max_files=4, executor=pool,
                            uploader_kwargs=uploader_kwargs(ingest), wait_timeout=30)
    [part] = report.failed
    assert 'IngestVerificationError' in report.failed[part]
    assert 'raw/deep/file05.dat: sent 701 bytes, the server records 702 bytes' in report.failed[part]
    assert len(report.ingested) == report.parts - 1


def test_a_failed_job_and_a_missing_file_are_sent_again_by_the_next_run(tmp_path: Any, ingest: IngestServer,
                                                                        pool: Any, dataset: str) -> None:
    failed_once: List[int] = []

    def fail_part_one_once(request: Request, handler: Callable[[Request], Any]) -> Any:
        answer = handler(request)
        if part_of(request) == 1 and not failed_once:
            job = ingest.job(answer['job_id'])
            assert job is not None
            job.ok, job.problem = False, 'simulated: File 1003 failed to validate.'
            failed_once.append(job.job_id)
        return answer

    intercept_uploads(ingest, fail_part_one_once)
    source = list(entries_under(dataset))
    present = source[-1]['path']
    source[-1] = dict(source[-1], path=present + '.gone')  # part 3's last file is not where it was listed
    manifest_path = str(tmp_path / 'm.json')
    report = upload_dataset(source, metadata(), manifest_path, max_files=4, executor=pool,
                            uploader_kwargs=uploader_kwargs(ingest), wait_timeout=30)
    assert sorted(report.failed) == [1, 3] and report.ingested == [2]
    assert 'failed to validate' in report.failed[1] and '.gone' in report.failed[3]
    assert [record.state for record in Manifest.load(manifest_path).shards] == [FAILED, INGESTED, FAILED]
    assert sorted(part_of(request) for request in uploads(ingest)) == [1, 2], 'part 3 never left'

    source[-1] = dict(source[-1], path=present)  # the file is back
    again = upload_dataset(source, metadata(), manifest_path, executor=pool, uploader_kwargs=uploader_kwargs(ingest))
    assert again.complete and sorted(again.sent) == [1, 3]
    ingested = [name for job in ingest.jobs.values() if job.ok for name in files_listed(job.metadata)]
    assert sorted(ingested) == sorted(name for name, _ in source_files(dataset)), 'each file ingested once'
    assert len(ingest.jobs) == 4 and len([job for job in ingest.jobs.values() if not job.ok]) == 1
