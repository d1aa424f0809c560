"""A coordinator killed with SIGKILL mid-shard: the next run finds out what arrived and sends no shard twice."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any, Set

import pytest

from pacifica.uploader.dataset import upload_dataset
from pacifica.uploader.dataset.manifest import INGESTED, SENDING, Manifest
from pacifica.uploader.dataset.plan import entries_under
from tests.helpers.ingestd import IngestServer
from tests.helpers.server import Request

from .support import files_listed, metadata, part_of, uploader_kwargs

pytestmark = pytest.mark.skipif(not hasattr(os, 'killpg'), reason='needs POSIX process groups')

#: The run the test kills: the same call as the tests' own, in a process of its own.
COORDINATOR = '''
import sys
from pacifica.uploader import TransferConfig
from pacifica.uploader.dataset import upload_dataset
from pacifica.uploader.metadata import MetaData, MetaObj
if __name__ == '__main__':
    root, manifest, url = sys.argv[1:4]
    kwargs = {'upload_url': url + '/upload', 'status_url': url + '/get_state',
              'config': TransferConfig(read_timeout=60, poll_interval=0.05)}
    md = MetaData([MetaObj(destinationTable='Transactions.submitter', value=10),
                   MetaObj(destinationTable='Transactions.project', value='1234a'),
                   MetaObj(destinationTable='Transactions.instrument', value=54)])
    upload_dataset(root, md, manifest, max_files=4, workers=2, uploader_kwargs=kwargs)
'''


@pytest.fixture
def dataset(tmp_path: Any) -> str:
    root = tmp_path / 'run7'
    (root / 'sub').mkdir(parents=True)
    for index in range(12):
        (root / ('sub' if index % 2 else '') / 'f{:02d}'.format(index)).write_bytes(bytes([index]) * (index + 1) * 100)
    return str(root)


class HeldIngest:
    """Every upload is taken in whole; the reply to part ``held`` waits for ``release``."""

    def __init__(self, ingest: IngestServer, held: int) -> None:
        self.arrived: Set[int] = set()
        self.release = threading.Event()
        self.held = held
        self.handler, read_body = ingest.server.routes[('POST', '/upload')]
        ingest.server.route('POST', '/upload', self._upload, read_body=read_body)

    def _upload(self, request: Request) -> Any:
        answer = self.handler(request)
        part = part_of(request)
        self.arrived.add(part)
        if part == self.held:
            self.release.wait(30)
        return answer

    def wait_for(self, parts: Set[int], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not parts <= self.arrived:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


def test_a_run_killed_between_sending_and_recording_is_resolved_by_the_next(tmp_path: Any, ingest: IngestServer,
                                                                             pool: Any, dataset: str) -> None:
    held = HeldIngest(ingest, 2)
    manifest_path = str(tmp_path / 'run7.manifest.json')
    child = subprocess.Popen([sys.executable, '-c', COORDINATOR, dataset, manifest_path, ingest.url],
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Part 1 and then part 3 (window 2: it waits for part 1) reach ingest; part 2's job id is held back.
        assert held.wait_for({1, 2, 3}, 60), 'only parts {} reached the ingest stand-in'.format(held.arrived)
        os.killpg(child.pid, signal.SIGKILL)  # the coordinator and its pool workers, at once
        child.wait(30)
    finally:
        held.release.set()
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(30)
    time.sleep(0.2)  # the reply of part 2 goes to a dead connection
    killed = Manifest.load(manifest_path)
    assert killed.shard(2).state == SENDING, 'the job id of part 2 never came back'
    # A kill inside a save may leave its temporary file behind; the manifest itself is always whole.
    assert json.loads(open(manifest_path, encoding='ascii').read())['parts'] == 3

    report = upload_dataset(dataset, metadata(), manifest_path, executor=pool, uploader_kwargs=uploader_kwargs(ingest),
                            wait_timeout=30, resolve_wait=20)
    # Part 2 reached ingest whole: the re-run finds its transaction by its part tag instead of sending it again.
    assert 2 in report.resolved and report.unknown == {}
    assert sorted(report.ingested) == [1, 2, 3] and report.complete
    sent = Counter(part_of(request) for request in ingest.server.requests
                   if request.method == 'POST' and request.path == '/upload')
    assert max(sent.values()) == 1, 'no shard was sent twice: {}'.format(sent)
    entries = list(entries_under(dataset))
    for record in Manifest.load(manifest_path).shards:
        if record.state == INGESTED:
            shard_names = [entry['name'] for entry in entries[record.plan.start:record.plan.stop]]
            assert sorted(files_listed(ingest.jobs[record.job_id].metadata)) == sorted(shard_names)
    every_file = Counter(name for job in ingest.jobs.values() for name in files_listed(job.metadata))
    assert sorted(every_file) == sorted(entry['name'] for entry in entries)
    assert set(every_file.values()) == {1}, 'every file reached ingest once, part 2 included'
