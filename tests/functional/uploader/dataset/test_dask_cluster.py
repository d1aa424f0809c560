"""Sharded uploads through a REAL local Dask cluster (scheduler and two workers as processes of their own).

The shards are sent by the cluster's worker processes, never by this one; the
loopback ingest stand-in checks each bundle's bytes and hashes. Every file
must arrive exactly once, and a re-run with the manifest must send nothing.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, List

import distributed
import pytest

from pacifica.uploader import upload_dataset
from pacifica.uploader import cli
from pacifica.uploader.dataset import dataset_tags
from pacifica.uploader.dataset.manifest import INGESTED, Manifest
from tests.helpers.commands import GOOD_META
from tests.helpers.daskcluster import LocalDaskCluster
from tests.helpers.ingestd import IngestServer

from .support import metadata, uploader_kwargs, uploads
from .test_sharded_upload import received_files

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope='module')
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDaskCluster]:
    with LocalDaskCluster(tmp_path_factory.mktemp('dask'), workers=2) as running:
        running.wait_for_workers()
        yield running


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Forty files in three folders: eight shards of five."""
    root = tmp_path / 'run7'
    for index in range(40):
        path = root / 'd{}'.format(index % 3) / 'f{:02d}.bin'.format(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(97 * (index + 1)))
    return root


def expected(root: Path, prefix: str) -> List[tuple]:
    return sorted((prefix + path.relative_to(root).as_posix(), path.read_bytes())
                  for path in root.rglob('*') if path.is_file())


def test_the_api_on_a_dask_executor_sends_each_file_exactly_once(cluster: LocalDaskCluster, ingest: IngestServer,
                                                                 dataset: Path, tmp_path: Path) -> None:
    manifest_path = str(tmp_path / 'run7.manifest.json')
    with distributed.Client(cluster.address, timeout=60) as client:
        executor = client.get_executor()
        with distributed.get_task_stream(client) as stream:
            report = upload_dataset(dataset, metadata(), manifest_path, max_files=5, executor=executor, window=4,
                                    uploader_kwargs=uploader_kwargs(ingest), wait_timeout=60)
        assert report.complete, report
        assert report.parts == 8
        sends = [task for task in stream.data if 'send_shard' in str(task['key'])]
        workers_used = {task['worker'] for task in sends}
        assert len(sends) == 8
        again = upload_dataset(dataset, metadata(), manifest_path, executor=executor,
                               uploader_kwargs=uploader_kwargs(ingest), wait_timeout=60)
    assert sorted(received_files(uploads(ingest))) == expected(dataset, 'data/')  # each file exactly once
    assert all(job.ok for job in ingest.jobs.values()), [job.problem for job in ingest.jobs.values()]
    assert sorted(dataset_tags(job.metadata).part for job in ingest.jobs.values()) == list(range(1, 9))
    assert len(workers_used) == 2, 'both Dask workers sent shards'
    assert again.complete and again.sent == []
    assert len(uploads(ingest)) == 8, 'a re-run with the manifest sends nothing'


def test_the_command_with_dask_scheduler_resumes_from_its_manifest(cluster: LocalDaskCluster, ingest: IngestServer,
                                                                   dataset: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    ingest.server.route('POST', '/ingest', lambda request: {'status': 'success'})
    monkeypatch.chdir(dataset.parent)
    argv = ['--ingest-url', ingest.url, '--policy-url', ingest.url, *GOOD_META, '--manifest', 'run7.manifest',
            '--max-bundle-files', '6', '--dask-scheduler', cluster.address, '--wait', '--timeout', '60', 'run7']
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert 'parts: 7 (ingested 7, failed 0, unknown 0)' in out
    assert sorted(received_files(uploads(ingest))) == expected(dataset, 'data/run7/')
    manifest = Manifest.load(str(dataset.parent / 'run7.manifest'))
    assert all(record.state == INGESTED for record in manifest.shards)
    assert cli.main(argv) == 0
    assert len(uploads(ingest)) == 7, 'a re-run with the manifest sends nothing'
