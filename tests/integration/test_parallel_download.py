"""Parallel downloads from the real services: a sharded upload's transactions, several carts at once, one folder."""
from __future__ import annotations

import concurrent.futures as cf
from pathlib import Path
from typing import Dict, List

import pytest

from pacifica._client.datasets import DatasetLookup
from pacifica.downloader import (
    CartAPI, dataset_transactions, download_parallel, download_transactions, manifest_transactions,
)
from pacifica.downloader import cli as download_cli
from pacifica.uploader import TransferConfig, Uploader
from pacifica.uploader.dataset import upload_dataset

from .conftest import TREE_FILES, Stack, transaction_metadata, tree_on_disk, upload_directory, wait_for_transaction

pytestmark = pytest.mark.integration

CONFIG = TransferConfig(poll_interval=0.2)


def write_dataset(root: Path, count: int) -> Dict[str, bytes]:
    """``count`` files of varied sizes in nested folders: relative path -> bytes."""
    written = {}
    for index in range(count):
        relative = 'run{}/{}/f{:03d}.dat'.format(index % 3, 'deep' if index % 2 else 'flat', index)
        data = bytes((index * 7 + i) % 256 for i in range(97)) * (index * 13 % 40 + 1)
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
        written[relative] = data
    return written


def upload(stack: Stack, root: Path, manifest: Path) -> str:
    with cf.ThreadPoolExecutor(2) as pool:
        report = upload_dataset(str(root), transaction_metadata(), str(manifest), max_files=5, executor=pool,
                                uploader_kwargs={'config': CONFIG}, wait_timeout=180)
    assert report.complete, report
    for transaction_id in manifest_transactions(manifest):
        wait_for_transaction(stack, transaction_id)
    return report.dataset_id


def test_a_sharded_upload_comes_back_byte_for_byte_in_parallel(stack: Stack, tmp_path: Path) -> None:
    source = write_dataset(tmp_path / 'set', 24)
    manifest = tmp_path / 'set.manifest.json'
    dataset_id = upload(stack, tmp_path / 'set', manifest)
    transaction_ids = manifest_transactions(manifest)
    assert len(transaction_ids) == 5
    lookup = DatasetLookup(stack.metadata, config=CONFIG)
    assert dataset_transactions(dataset_id, lookup) == transaction_ids

    cart_api = CartAPI(stack.cartd, config=CONFIG)
    seen: List[int] = []
    result = download_transactions(str(tmp_path / 'out'), transaction_ids, policy_url=stack.policy,
                                   cart_api=cart_api, workers=3, max_cart_files=4,
                                   callback=lambda done, total: seen.append(done))
    assert tree_on_disk(tmp_path / 'out' / 'data') == source
    assert result.carts == 6 and result.fetched == 24 and result.present == 0
    assert seen[-1] == sum(len(data) for data in source.values())

    # a lost file is all a re-run fetches
    (tmp_path / 'out' / 'data' / 'run1' / 'deep' / 'f007.dat').unlink()
    again = download_transactions(str(tmp_path / 'out'), transaction_ids, policy_url=stack.policy,
                                  cart_api=cart_api, workers=3, max_cart_files=4)
    assert (again.carts, again.fetched, again.present) == (1, 1, 23)
    assert tree_on_disk(tmp_path / 'out' / 'data') == source


def test_the_command_downloads_a_dataset_by_id(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = write_dataset(tmp_path / 'set', 12)
    dataset_id = upload(stack, tmp_path / 'set', tmp_path / 'set.manifest.json')
    code = download_cli.main(['--dataset', dataset_id, '--metadata-url', stack.metadata, '--destination',
                              str(tmp_path / 'out'), '--workers', '2', '--max-cart-size', '2K',
                              '--cart-url', stack.cartd, '--policy-url', stack.policy])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert tree_on_disk(tmp_path / 'out' / 'data') == source
    assert 'files: 12 (' in out


def test_one_transaction_as_several_carts(stack: Stack, upload_tree: Path, tmp_path: Path) -> None:
    transaction_id = upload_directory(upload_tree)
    Uploader(config=CONFIG).wait(transaction_id, timeout=180)
    result = download_parallel(str(tmp_path / 'out'), [wait_for_transaction(stack, transaction_id)],
                               cart_api=CartAPI(stack.cartd, config=CONFIG), workers=3, max_cart_files=2)
    assert result.carts == 3
    assert tree_on_disk(tmp_path / 'out' / 'data') == TREE_FILES
