"""Sharded uploads to the real services: every file exactly once across the dataset's transactions,
also when the run is killed with SIGKILL at random moments and run again."""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, Tuple

import pytest

from pacifica._client.datasets import DatasetLookup
from pacifica.uploader import TransferConfig
from pacifica.uploader.dataset.manifest import Manifest

from .conftest import INSTRUMENT, PROJECT, UPLOADER_ID, Stack

pytestmark = pytest.mark.integration

#: The run under test, in a process of its own so that it can be killed at any moment.
RUN = '''
import json, sys
from pacifica.uploader import TransferConfig
from pacifica.uploader.dataset import upload_dataset
from pacifica.uploader.metadata import MetaData, MetaObj
if __name__ == '__main__':
    root, manifest, max_files, submitter, project, instrument = sys.argv[1:7]
    md = MetaData([MetaObj(destinationTable='Transactions.submitter', value=int(submitter)),
                   MetaObj(destinationTable='Transactions.project', value=project),
                   MetaObj(destinationTable='Transactions.instrument', value=int(instrument))])
    report = upload_dataset(root, md, manifest, max_files=int(max_files), workers=2, wait_timeout=300,
                            resolve_wait=20, uploader_kwargs={'config': TransferConfig(poll_interval=0.2)})
    print(json.dumps({'complete': report.complete, 'sent': report.sent, 'resolved': report.resolved,
                      'failed': report.failed, 'unknown': report.unknown}))
'''


def write_dataset(root: Path, count: int) -> Dict[str, Tuple[int, str]]:
    """``count`` files in a few folders: '<subdir>/<name>' as metadata records them -> (size, sha1)."""
    expected = {}
    for index in range(count):
        relative = 'run/{}/s{:04d}.dat'.format('abcde'[index % 5], index)
        data = hashlib.sha256(str(index).encode()).digest() * (index % 7 + 1)
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
        expected[relative] = (len(data), hashlib.sha1(data).hexdigest())
    return expected


def living_members(group: int, seconds: float) -> list:
    """The processes of ``group`` still running (not zombies) after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        living = []
        for entry in os.listdir('/proc'):
            if entry.isdigit():
                try:
                    with open('/proc/{}/stat'.format(entry), encoding='ascii', errors='replace') as stat:
                        fields = stat.read().rpartition(')')[2].split()
                except OSError:
                    continue
                if int(fields[2]) == group and fields[0] != 'Z':
                    living.append(int(entry))
        if not living or time.monotonic() > deadline:
            return living
        time.sleep(0.1)


def start_run(root: Path, manifest: Path, max_files: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-c', RUN, str(root), str(manifest), str(max_files), str(UPLOADER_ID),
                             PROJECT, str(INSTRUMENT)], start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_run(root: Path, manifest: Path, max_files: int) -> dict:
    proc = start_run(root, manifest, max_files)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def files_on_server(stack: Stack, dataset_id: str) -> Tuple[Counter, Dict[str, Tuple[int, str]], Counter]:
    """How often each file is held across the dataset's transactions, their records, and the parts' counts."""
    lookup = DatasetLookup(stack.metadata, config=TransferConfig(poll_interval=0.2))
    held: Counter = Counter()
    records = {}
    parts: Counter = Counter()
    for transaction in lookup.transactions(dataset_id):
        parts[transaction.part] += 1
        for record in lookup.files(transaction.transaction_id):
            held[record.path] += 1
            records[record.path] = (record.size, record.hashsum)
    return held, records, parts


@pytest.mark.timeout(600)
def test_a_few_hundred_files_in_eight_shards_each_file_once(stack: Stack, tmp_path: Path) -> None:
    expected = write_dataset(tmp_path / 'set', 300)
    manifest = tmp_path / 'set.manifest.json'
    first = finish_run(tmp_path / 'set', manifest, 40)
    assert first['complete'] and sorted(first['sent']) == list(range(1, 9)), first
    dataset_id = Manifest.load(str(manifest)).dataset_id
    held, records, parts = files_on_server(stack, dataset_id)
    assert parts == Counter(dict.fromkeys(range(1, 9), 1))
    assert records == expected and set(held.values()) == {1}

    again = finish_run(tmp_path / 'set', manifest, 40)
    assert again['complete'] and again['sent'] == [] and again['resolved'] == {}
    assert files_on_server(stack, dataset_id)[2] == parts, 'a re-run with the manifest adds no transaction'


#: Shards of the killed dataset. A killed run lives at most 3 s, and a whole run sends about two shards a second on
#: these machines (16 shards in 9 s, 64 in 32 s), so six killed runs cannot finish 64 shards: with 16 the runs had
#: become fast enough to end the dataset after three kills.
KILLED_SHARDS = 64
KILLED_SHARD_FILES = 25


@pytest.mark.timeout(1200)
def test_killed_at_random_moments_and_run_again_each_file_once(stack: Stack, tmp_path: Path) -> None:
    expected = write_dataset(tmp_path / 'set', KILLED_SHARDS * KILLED_SHARD_FILES)
    manifest = tmp_path / 'set.manifest.json'
    seed = int(os.environ.get('PACIFICA_KILL_SEED', str(time.time_ns())))
    chance = random.Random(seed)
    kills = []
    for _ in range(30):
        proc = start_run(tmp_path / 'set', manifest, KILLED_SHARD_FILES)
        moment = chance.uniform(0.5, 3.0)
        try:
            proc.wait(moment)
            break  # this run finished the dataset before its kill
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)  # the coordinator only: its pool workers must die with it
            proc.communicate(timeout=60)
            kills.append(round(moment, 2))
        survivors = living_members(proc.pid, 5.0)
        if survivors:
            os.killpg(proc.pid, signal.SIGKILL)
        assert not survivors, 'pool workers outlived their killed coordinator: {}'.format(survivors)
        if len(kills) >= 6:
            break
    assert len(kills) >= 5, 'the runs ended before they could be killed (seed {}): {}'.format(seed, kills)
    final = finish_run(tmp_path / 'set', manifest, KILLED_SHARD_FILES)
    assert final['complete'] and final['unknown'] == {} and final['failed'] == {}, final
    dataset_id = Manifest.load(str(manifest)).dataset_id
    held, records, parts = files_on_server(stack, dataset_id)
    assert parts == Counter(dict.fromkeys(range(1, KILLED_SHARDS + 1), 1)), (parts, seed, kills)
    assert records == expected and set(held.values()) == {1}, (seed, kills)
