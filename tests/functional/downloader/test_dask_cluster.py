"""Parallel downloads through a REAL local Dask cluster (scheduler and two workers as processes of their own).

The carts are fetched by the cluster's worker processes into the folder this
process names (one file system), from the loopback cartd stand-in.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import distributed
import pytest

from pacifica.downloader import CartAPI, VerificationError, download_parallel
from pacifica.downloader import cli
from tests.helpers.cartd import CartServer
from tests.helpers.daskcluster import LocalDaskCluster

from .conftest import DATASET, EXPECTED, FAST, RECORDS, TOTAL, final_files, tree
from .test_parallel import requested


@pytest.fixture(scope='module')
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDaskCluster]:
    with LocalDaskCluster(tmp_path_factory.mktemp('dask'), workers=2) as running:
        running.wait_for_workers()
        yield running


def test_carts_on_dask_workers_into_one_folder(cluster: LocalDaskCluster, dataset_cartd: CartServer,
                                               tmp_path: Path) -> None:
    seen: List[int] = []
    with distributed.Client(cluster.address, timeout=60) as client:
        result = download_parallel(str(tmp_path / 'dest'), RECORDS, cart_api=CartAPI(dataset_cartd.url, config=FAST),
                                   executor=client.get_executor(), workers=2, max_cart_files=2,
                                   callback=lambda done, _total: seen.append(done))
    assert tree(str(tmp_path / 'dest')) == EXPECTED
    assert result.carts == 5 and seen[-1] == TOTAL


def test_a_failing_cart_on_a_worker_fails_the_call_and_a_rerun_resumes(cluster: LocalDaskCluster,
                                                                       dataset_cartd: CartServer,
                                                                       tmp_path: Path) -> None:
    dest = str(tmp_path / 'dest')
    cart_api = CartAPI(dataset_cartd.url, config=FAST)
    dataset_cartd.add_file(2, b'not the recorded bytes')
    with distributed.Client(cluster.address, timeout=60) as client:
        with pytest.raises(VerificationError, match='b.bin'):
            download_parallel(dest, RECORDS, cart_api=cart_api, executor=client.get_executor(), workers=2,
                              max_cart_files=2)
        assert final_files(dest) == {}
        parked = [path for path in tree(dest) if path.endswith('.pacifica-verified')]
        first = len(requested(dataset_cartd))
        dataset_cartd.add_file(2, DATASET[11][2][2])
        result = download_parallel(dest, RECORDS, cart_api=cart_api, executor=client.get_executor(), workers=2,
                                   max_cart_files=2)
    assert tree(dest) == EXPECTED
    again = sum(requested(dataset_cartd)[first:], [])
    assert 2 in again and len(again) == 9 - len(parked) == result.fetched


def test_the_command_with_dask_scheduler(cluster: LocalDaskCluster, dataset_cartd: CartServer, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    code = cli.main(['--transaction-id', '12', '--destination', str(tmp_path / 'out'), '--dask-scheduler',
                     cluster.address, '--workers', '2', '--max-cart-files', '1', '--cart-url', dataset_cartd.url,
                     '--policy-url', dataset_cartd.url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert 'carts: 3 (3 file(s) fetched' in out
    assert tree(str(tmp_path / 'out')) == {path: data for path, data in EXPECTED.items()
                                           if path.split('/')[-1] in ('d.txt', 'e.bin', 'f.txt')}
