"""The dataset lookup against the real metadata service, after a sharded upload to the real ingest."""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
from pathlib import Path
from typing import Dict, Tuple

import pytest

from pacifica._client.datasets import DatasetLookup
from pacifica.uploader import TransferConfig
from pacifica.uploader.dataset import upload_dataset

from .conftest import Stack, transaction_metadata

pytestmark = pytest.mark.integration

CONFIG = TransferConfig(poll_interval=0.2)


def write_dataset(root: Path, count: int) -> Dict[str, Tuple[int, str]]:
    """``count`` small files in two folders: '<subdir>/<name>' as ingest records them -> (size, sha1)."""
    expected = {}
    for index in range(count):
        relative = '{}/f{:04d}.txt'.format('even' if index % 2 == 0 else 'odd', index)
        data = 'file {} of the lookup test\n'.format(index).encode() * (index % 5 + 1)
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
        expected[relative] = (len(data), hashlib.sha1(data).hexdigest())
    return expected


def test_lookup_finds_every_shard_and_its_files(stack: Stack, tmp_path: Path) -> None:
    expected = write_dataset(tmp_path / 'set', 9)
    with cf.ThreadPoolExecutor(2) as pool:
        report = upload_dataset(str(tmp_path / 'set'), transaction_metadata(), str(tmp_path / 'set.manifest.json'),
                                max_files=4, executor=pool, uploader_kwargs={'config': CONFIG}, wait_timeout=120)
    assert report.complete, report
    lookup = DatasetLookup(stack.metadata, config=CONFIG)
    found = lookup.transactions(report.dataset_id)
    assert sorted((t.part, t.parts) for t in found) == [(1, 3), (2, 3), (3, 3)]
    assert len({t.transaction_id for t in found}) == 3
    on_server = {}
    for transaction in found:
        for record in lookup.files(transaction.transaction_id):
            assert record.path not in on_server, record.path
            on_server[record.path] = (record.size, record.hashsum)
            assert record.hashtype == 'sha1'
    assert on_server == expected
    assert lookup.transactions(os.urandom(16).hex()[:8] + '-0000-4000-8000-000000000000') == []
