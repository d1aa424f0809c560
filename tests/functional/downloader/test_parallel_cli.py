"""pacifica-download with several carts at once: --workers, --manifest, --dataset, the limits, --dask-scheduler."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from pacifica._client.datasets import DATASET_KEY, PART_KEY
from pacifica.downloader import cli
from pacifica.uploader.dataset.manifest import Manifest
from pacifica.uploader.dataset.plan import ShardPlan
from tests.helpers.cartd import CartServer
from tests.helpers.metadatad import MetadataServer

from .conftest import DATASET, EXPECTED, final_files, tree
from .test_parallel import requested

DATASET_ID = '0b9f4a52-5c1e-4bd4-9b6a-3f0c2f1f8d11'


def flags(cartd: CartServer) -> List[str]:
    return ['--cart-url', cartd.url, '--policy-url', cartd.url, '--retries', '0']


def write_manifest(path: Path, transaction_ids: List[Optional[int]]) -> str:
    """A sharded upload's manifest whose part i became transaction ``transaction_ids[i]`` (None: still sending)."""
    shards = [ShardPlan(part, part - 1, part, 1, 'digest', 'first', 'last')
              for part in range(1, len(transaction_ids) + 1)]
    manifest = Manifest.create(str(path), DATASET_ID, shards)
    for part, transaction_id in enumerate(transaction_ids, 1):
        manifest.mark_sending(part)
        if transaction_id is not None:
            manifest.mark_sent(part, 'job-{}'.format(part))
            manifest.mark_ingested(part, transaction_id)
    return str(path)


def test_manifest_downloads_every_transaction_of_the_dataset(dataset_cartd: CartServer, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    manifest = write_manifest(tmp_path / 'upload.manifest.json', list(DATASET))
    dest = tmp_path / 'out'
    code = cli.main(['--manifest', manifest, '--destination', str(dest), '--workers', '2', '--max-cart-files', '3',
                     *flags(dataset_cartd)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert tree(str(dest)) == EXPECTED
    assert 'transactions: 11, 12, 13' in out
    assert 'carts: 3 (9 file(s) fetched, 0 already there and verified)' in out
    assert 'files: 9 (' in out and 'verified' in out

    assert cli.main(['--manifest', manifest, '--destination', str(dest), *flags(dataset_cartd)]) == 0
    assert 'carts: 0 (0 file(s) fetched, 9 already there and verified)' in capsys.readouterr().out


def test_transaction_id_with_workers_and_a_size_limit(dataset_cartd: CartServer, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    code = cli.main(['--transaction-id', '11', '--destination', str(tmp_path / 'out'), '--workers', '3',
                     '--max-cart-size', '10K', *flags(dataset_cartd)])
    assert code == 0, capsys.readouterr().err
    assert tree(str(tmp_path / 'out')) == {path: data for path, data in EXPECTED.items()
                                   if path.split('/')[-1] in ('a.txt', 'b.bin', 'c.txt', 'top.txt')}
    assert len(requested(dataset_cartd)) == 3  # b.bin (12,800 bytes) alone, a.txt + c.txt, then top.txt


def test_an_unfinished_upload_is_a_usage_error(dataset_cartd: CartServer, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    manifest = write_manifest(tmp_path / 'm.json', [11, None, 13])
    assert cli.main(['--manifest', manifest, '--destination', str(tmp_path / 'out'), *flags(dataset_cartd)]) == 2
    err = capsys.readouterr().err
    assert 'upload of dataset {} is not finished: part(s) 2 of 3'.format(DATASET_ID) in err
    assert requested(dataset_cartd) == [] and not (tmp_path / 'out').exists()


def test_an_unreadable_manifest_is_a_usage_error(dataset_cartd: CartServer, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    (tmp_path / 'm.json').write_text('{"format": "something else"}')
    assert cli.main(['--manifest', str(tmp_path / 'm.json'), '--destination', str(tmp_path),
                     *flags(dataset_cartd)]) == 2
    assert 'not a dataset manifest' in capsys.readouterr().err


def test_a_failing_cart_exits_4_and_a_rerun_completes(dataset_cartd: CartServer, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    manifest = write_manifest(tmp_path / 'm.json', list(DATASET))
    dataset_cartd.add_file(9, b'tampered')
    argv = ['--manifest', manifest, '--destination', str(tmp_path / 'out'), '--max-cart-files', '2',
            *flags(dataset_cartd)]
    assert cli.main(argv) == 4
    out, err = capsys.readouterr()
    assert 'h.dat' in err and 'files:' not in out
    assert final_files(str(tmp_path / 'out')) == {}
    dataset_cartd.add_file(9, DATASET[13][9][2])
    assert cli.main(argv) == 0
    assert tree(str(tmp_path / 'out')) == EXPECTED


def test_workers_do_not_apply_to_a_cloud_event(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / 'e.json').write_text('{"data": []}')
    assert cli.main(['--cloudevent', str(tmp_path / 'e.json'), '--destination', str(tmp_path),
                     '--workers', '2']) == 2
    assert '--workers and --dask-scheduler take --transaction-id, --manifest or --dataset' in capsys.readouterr().err


@pytest.mark.parametrize('argv, message', [
    (['--workers', '0'], "'0' is not a whole number >= 1"),
    (['--max-cart-files', 'x'], "'x' is not a whole number >= 1"),
    (['--max-cart-size', '4Q'], "'4Q' is not a size"),
    (['--max-cart-size', '0'], "'0' is not a size"),
])
def test_bad_parallel_options_exit_2(tmp_path: Path, argv: List[str], message: str,
                                     capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--transaction-id', '1', '--destination', str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_dask_scheduler_without_the_extra_names_the_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            dataset_cartd: CartServer,
                                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, 'distributed', None)  # import distributed now fails, installed or not
    assert cli.main(['--transaction-id', '11', '--destination', str(tmp_path / 'out'), '--dask-scheduler',
                     'tcp://127.0.0.1:1', *flags(dataset_cartd)]) == 2
    assert "pip install 'pacifica-transfer[dask]'" in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def tag_dataset(dataset_cartd: CartServer, parts: Dict[int, str]) -> str:
    """Tag transactions of DATASET as parts of one dataset on a metadata stand-in; returns the metadata URL."""
    metadata = MetadataServer(dataset_cartd.server)
    for transaction_id, part in parts.items():
        metadata.add_transaction(transaction_id, {DATASET_KEY: DATASET_ID, PART_KEY: part}, [])
    return metadata.url


def test_dataset_id_finds_its_transactions_on_the_metadata_server(dataset_cartd: CartServer, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    url = tag_dataset(dataset_cartd, {13: '1/3', 11: '2/3', 12: '3/3'})
    code = cli.main(['--dataset', DATASET_ID, '--metadata-url', url, '--destination', str(tmp_path / 'out'),
                     '--workers', '2', *flags(dataset_cartd)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert tree(str(tmp_path / 'out')) == EXPECTED
    assert 'transactions: 13, 11, 12' in out  # in part order


@pytest.mark.parametrize('parts, message', [
    ({11: '1/3', 13: '3/3'}, 'is not complete on the server: part(s) 2 of 3 have no transaction'),
    ({11: '1/2', 12: '2/2', 13: '2/2'}, 'ingested twice: part 2 in transactions 12, 13'),
    ({11: '1/2', 12: '2/3'}, 'disagree on the number of parts (2, 3)'),
    ({11: '1/1', 12: 'x'}, 'transaction(s) 12 carry no valid part tag'),
    ({}, 'no transaction on the server belongs to dataset'),
])
def test_an_incomplete_dataset_is_a_usage_error(dataset_cartd: CartServer, tmp_path: Path, parts: Dict[int, str],
                                                message: str, capsys: pytest.CaptureFixture) -> None:
    url = tag_dataset(dataset_cartd, parts)
    assert cli.main(['--dataset', DATASET_ID, '--metadata-url', url, '--destination', str(tmp_path / 'out'),
                     *flags(dataset_cartd)]) == 2
    assert message in capsys.readouterr().err
    assert requested(dataset_cartd) == [] and not (tmp_path / 'out').exists()


def test_a_dataset_id_is_a_uuid(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--dataset', 'results-42', '--destination', str(tmp_path)]) == 2
    assert "a dataset id is a UUID in canonical form, not 'results-42'" in capsys.readouterr().err
