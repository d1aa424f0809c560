"""Sharded uploads to the real services: every file in exactly one of the dataset's transactions.

Through a local Dask cluster (``dask scheduler`` and two ``dask worker``
processes: the shards are sent from its workers), and through
``pacifica-upload`` on its process pool; the dataset's transactions are
read back from the metadata service.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, Tuple

import distributed
import pytest

from pacifica._client.datasets import DatasetLookup
from pacifica.uploader import cli as upload_cli
from pacifica.uploader import upload_dataset
from tests.helpers.daskcluster import LocalDaskCluster

from .conftest import INSTRUMENT, PROJECT, UPLOADER_NETWORK_ID, Stack, transaction_metadata
from .test_datasets import CONFIG, write_dataset

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalDaskCluster]:
    with LocalDaskCluster(tmp_path / 'dask', workers=2) as running:
        yield running


def on_server(lookup: DatasetLookup, dataset_id: str) -> Tuple[list, Dict[str, Tuple[int, str]]]:
    """The dataset's transactions, and each file the server holds for them (a file twice fails here)."""
    found = lookup.transactions(dataset_id)
    files: Dict[str, Tuple[int, str]] = {}
    for transaction in found:
        for record in lookup.files(transaction.transaction_id):
            assert record.path not in files, '{} is in two transactions'.format(record.path)
            files[record.path] = (record.size, record.hashsum)
    return found, files


def test_shards_from_dask_workers_hold_every_file_exactly_once(stack: Stack, cluster: LocalDaskCluster,
                                                               tmp_path: Path) -> None:
    expected = write_dataset(tmp_path / 'set', 300)
    kwargs = {'upload_url': stack.env['INGEST_UPLOAD_URL'], 'status_url': stack.env['INGEST_STATUS_URL'],
              'config': CONFIG}
    manifest = str(tmp_path / 'set.manifest.json')
    with distributed.Client(cluster.address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
        report = upload_dataset(str(tmp_path / 'set'), transaction_metadata(), manifest, max_files=40,
                                executor=client.get_executor(), window=2, uploader_kwargs=kwargs, wait_timeout=300)
        assert report.complete, report
        assert report.parts == 8
        lookup = DatasetLookup(stack.metadata, config=CONFIG)
        found, files = on_server(lookup, report.dataset_id)
        assert sorted((t.part, t.parts) for t in found) == [(part, 8) for part in range(1, 9)]
        assert files == expected

        again = upload_dataset(str(tmp_path / 'set'), transaction_metadata(), manifest,
                               executor=client.get_executor(), uploader_kwargs=kwargs, wait_timeout=300)
    assert again.complete and again.sent == []
    assert len(lookup.transactions(report.dataset_id)) == 8, 'a re-run with the manifest adds no transaction'


def test_the_command_in_six_shards_resumes_from_its_manifest(stack: Stack, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    expected = write_dataset(tmp_path / 'set', 120)
    monkeypatch.chdir(tmp_path / 'set')
    argv = ['--user', UPLOADER_NETWORK_ID, '--meta', 'Transactions.project={}'.format(PROJECT),
            '--meta', 'Transactions.instrument={}'.format(INSTRUMENT), '--manifest', str(tmp_path / 'm.json'),
            '--max-bundle-files', '20', '--workers', '2', '--wait', '--timeout', '300', 'even', 'odd']
    assert upload_cli.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert 'parts: 6 (ingested 6, failed 0, unknown 0)' in out
    dataset_id = out.split('dataset: ', 1)[1].split()[0]
    lookup = DatasetLookup(stack.metadata, config=CONFIG)
    found, files = on_server(lookup, dataset_id)
    assert sorted((t.part, t.parts) for t in found) == [(part, 6) for part in range(1, 7)]
    assert files == expected
    assert upload_cli.main(argv) == 0
    assert len(lookup.transactions(dataset_id)) == 6, 'a re-run with the manifest adds no transaction'
