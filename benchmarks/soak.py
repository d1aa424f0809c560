#!/usr/bin/env python3
"""Soak: many uploads and downloads through a fault-injecting proxy; nothing may be lost, doubled or corrupt.

Runs against the test suite's loopback stand-ins (no Pacifica server needed):
an ingest that opens a job per upload POST and checks every bundle's tar and
hashes, and a cartd that stages and streams real tars. A share (default 5%)
of all requests meets a random fault: resets mid-request and mid-reply,
502/503/504 with and without Retry-After, 429, slow or trickled replies,
truncated bodies, bodies that are not JSON, a server that stops reading; now and then the proxies refuse
connections for a moment.

Each upload is ``upload_bundle`` + ``wait``; each download is
``Downloader.transactioninfo`` (with ``delete_cart=True``), retried once
after a failure the way a user would. The report checks:

- every upload that returned a job id has exactly one job at ingest, and
  that job holds the right bundle (tar, sizes, hashes verified there);
- no upload created two jobs; every failure raised a PacificaError;
- every download that returned has files equal to their content byte for
  byte; no file under its final name is ever wrong (corrupt files: 0).

Each sharded dataset (``--datasets``) is a few folders of files sent with
``upload_dataset`` in shards, through the same faulty proxy (the lookups of
shards whose outcome is unknown and the checks after ingest too, against a
metadata stand-in that records every sound job as its transaction), and run
again with its manifest, as a user would, until it is complete (three runs
at most). The report checks that every file is in exactly one sound job, no
part was ingested twice, and no part is left unknown.

Usage: ``python benchmarks/soak.py [--uploads 1000] [--downloads 1000] [--datasets 100] [--rate 0.05]
[--workers 4]``. Exits 1 when an invariant is broken.
"""
from __future__ import annotations

import argparse
import collections
import io
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pacifica._client.config import TransferConfig  # noqa: E402
from pacifica._client.exceptions import PacificaError  # noqa: E402
from pacifica.downloader import Downloader  # noqa: E402
from pacifica.uploader import Uploader  # noqa: E402
from pacifica.uploader.bundler import Bundler  # noqa: E402
from pacifica.uploader.metadata import MetaData, MetaObj  # noqa: E402
from tests.helpers.cartd import CartServer, transaction_info  # noqa: E402
from tests.helpers.faults import Fault, FaultProxy  # noqa: E402
from tests.helpers.ingestd import IngestServer  # noqa: E402
from tests.helpers.metadatad import MetadataServer  # noqa: E402
from pacifica.uploader.dataset import dataset_tags, upload_dataset  # noqa: E402
from tests.helpers.server import LoopbackServer  # noqa: E402

CONFIG = TransferConfig(connect_timeout=1.0, read_timeout=0.5, call_deadline=1.5, retries=4, backoff_factor=0.02,
                        backoff_max=0.2, retry_after_max=0.2, poll_interval=0.05)
TAG_TABLE = 'Transactions.description'

FAULTS = [
    Fault.reset_request(), Fault.reset_response('head'), Fault.reset_response('body'),
    Fault.http_status(502), Fault.http_status(503), Fault.http_status(504), Fault.http_status(504, forward=True),
    Fault.http_status(502, retry_after=0), Fault.http_status(503, retry_after=1), Fault.http_status(429),
    Fault.http_status(429, retry_after=1), Fault.slow_headers(delay=0.7), Fault.slow_headers(interval=0.02),
    Fault.trickle_body(interval=0.1), Fault.truncate_body(), Fault.invalid_json(), Fault.invalid_json(forward=True),
    Fault.stall_request(2),
]
#: A trickled tar would take minutes byte by byte; the cart stream gets every other fault.
STREAM_FAULTS = [fault for fault in FAULTS if fault.kind != 'trickle-body']


def make_chooser(rate: float, seed: int) -> Callable[[str, str], Optional[Fault]]:
    rng = random.Random(seed)
    lock = threading.Lock()

    def choose(method: str, path: str) -> Optional[Fault]:
        with lock:
            if rng.random() >= rate:
                return None
            pool = STREAM_FAULTS if (method == 'GET' and path != '/get_state') else FAULTS
            return rng.choice(pool)
    return choose


class Soak:
    def __init__(self, workdir: str, rate: float, seed: int) -> None:
        self.workdir = workdir
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.servers = [LoopbackServer(), LoopbackServer()]
        self.ingest = IngestServer(self.servers[0])
        self.metadata = MetadataServer(self.servers[0], ingest=self.ingest)
        self.cartd = CartServer(self.servers[1], os.path.join(workdir, 'cartd'))
        self.proxies = [FaultProxy(self.ingest.url, lifetime=3600), FaultProxy(self.cartd.url, lifetime=3600)]
        for index, proxy in enumerate(self.proxies):
            proxy.chooser = make_chooser(rate, seed + index)
        self.refusals = 0
        self.local = threading.local()
        self.uploads: List[Tuple[str, str, Any, str]] = []  # (tag, outcome, job id, detail)
        self.downloads: Dict[str, int] = collections.Counter()
        self.failures: Dict[str, int] = collections.Counter()
        self.corrupt: List[str] = []
        #: Sharded datasets: (dataset id, files sent, runs needed, report of the last run).
        self.datasets: List[Tuple[str, List[str], int, Any]] = []
        self.lock = threading.Lock()

    def close(self) -> None:
        for closable in self.proxies + self.servers:
            closable.close()

    # -- helpers -----------------------------------------------------------------
    def random_bytes(self, size: int) -> bytes:
        with self.rng_lock:
            return self.rng.randbytes(size)

    def random_int(self, low: int, high: int) -> int:
        with self.rng_lock:
            return self.rng.randint(low, high)

    def maybe_refuse(self) -> None:
        """Now and then a proxy goes away for a moment (connection refused)."""
        if self.random_int(1, 100) <= 2:
            proxy = self.proxies[self.random_int(0, 1)]
            proxy.refuse_for(0.1)
            with self.lock:
                self.refusals += 1

    def clients(self) -> Tuple[Uploader, Downloader]:
        if not hasattr(self.local, 'uploader'):
            base = self.proxies[0].url
            self.local.uploader = Uploader(upload_url=base + '/upload', status_url=base + '/get_state', config=CONFIG)
            self.local.downloader = Downloader(cart_api_url=self.proxies[1].url, config=CONFIG)
        return self.local.uploader, self.local.downloader

    # -- one upload ----------------------------------------------------------------
    def upload(self, number: int) -> None:
        tag = 'soak-{}'.format(number)
        md = MetaData([MetaObj(destinationTable='Transactions.submitter', value='10'),
                       MetaObj(destinationTable=TAG_TABLE, value=tag)])
        files = [{'name': 'data/{}/f{}.bin'.format(tag, k), 'size': size, 'mtime': 1_600_000_000 + k,
                  'fileobj': io.BytesIO(self.random_bytes(size))}
                 for k, size in enumerate(self.random_int(0, 20_000) for _ in range(self.random_int(1, 3)))]
        uploader, _ = self.clients()
        self.maybe_refuse()
        job = None
        try:
            job = uploader.upload_bundle(Bundler(md, files))
            state = uploader.wait(job, timeout=10, interval=0.05)
            outcome, detail = ('ok', '') if state.get('state') == 'OK' else ('false-success', repr(state))
        except PacificaError as err:
            outcome, detail = 'failed-cleanly', type(err).__name__
        except Exception as err:  # noqa: BLE001 - the soak reports what escaped
            outcome, detail = 'failed-unclean', '{}: {}'.format(type(err).__name__, err)
        with self.lock:
            self.uploads.append((tag, outcome, job, detail))

    # -- one sharded dataset --------------------------------------------------------------
    def dataset(self, number: int) -> None:
        root = os.path.join(self.workdir, 'sets', str(number))
        names = []
        for k in range(self.random_int(4, 12)):
            relative = 'set{}/{}/f{}.bin'.format(number, 'ab'[k % 2], k)
            os.makedirs(os.path.dirname(os.path.join(root, relative)), exist_ok=True)
            with open(os.path.join(root, relative), 'wb') as out:
                out.write(self.random_bytes(self.random_int(0, 20_000)))
            names.append('data/' + relative)
        md = MetaData([MetaObj(destinationTable='Transactions.submitter', value='10')])
        base = self.proxies[0].url
        kwargs = {'upload_url': base + '/upload', 'status_url': base + '/get_state', 'config': CONFIG}
        manifest = os.path.join(self.workdir, 'sets', '{}.manifest.json'.format(number))
        report = None
        runs = 0
        with ThreadPoolExecutor(max_workers=2) as executor:
            while runs < 3:
                runs += 1
                self.maybe_refuse()
                try:
                    report = upload_dataset(root, md, manifest, max_files=3, executor=executor, uploader_kwargs=kwargs,
                                            wait_timeout=10, metadata_url=base, resolve_wait=2)
                except PacificaError as err:
                    with self.lock:
                        self.failures['dataset run: ' + type(err).__name__] += 1
                    continue
                if report.complete:
                    break
        with self.lock:
            self.datasets.append((report.dataset_id if report else '', names, runs, report))

    def dataset_lines(self) -> Tuple[List[str], bool]:
        """The sharded datasets' part of the report, and whether an invariant broke."""
        held: Dict[str, int] = collections.Counter()
        parts: Dict[Tuple[str, int], int] = collections.Counter()
        for job in list(self.ingest.jobs.values()):
            tags = dataset_tags(job.metadata)
            if job.ok and tags is not None:
                parts[(tags.dataset_id, tags.part)] += 1
                for item in job.metadata or ():
                    if item.get('destinationTable') == 'Files':
                        held['/'.join(p for p in (tags.dataset_id, 'data', item['subdir'], item['name']) if p)] += 1
        incomplete = unknown = lost = 0
        runs: Dict[int, int] = collections.Counter()
        resolved: Dict[str, int] = collections.Counter()
        for dataset_id, names, count, report in self.datasets:
            runs[count] += 1
            if report is None or not report.complete:
                incomplete += 1
            unknown += len(report.unknown) if report is not None else 0
            lost += sum(1 for name in names if held.get('{}/{}'.format(dataset_id, name), 0) != 1)
            for value in (report.resolved.values() if report is not None else ()):
                resolved['found' if value is not None else 'sent again'] += 1
        twice = sum(1 for count in parts.values() if count > 1)
        lines = [
            'datasets: {}, complete after 1/2/3 runs: {}/{}/{}, incomplete: {}; parts ingested twice: {}; '
            'files not held exactly once: {}; parts left unknown: {}; unknown outcomes resolved: found {}, '
            'sent again {}'.format(len(self.datasets), runs[1], runs[2], runs[3], incomplete, twice, lost, unknown,
                                   resolved['found'], resolved['sent again']),
        ]
        return lines, bool(incomplete or twice or lost or unknown)

    # -- one download ----------------------------------------------------------------
    def download(self, number: int) -> None:
        files = {}
        for k in range(self.random_int(1, 3)):
            file_id = number * 10 + k
            content = self.random_bytes(self.random_int(0, 30_000))
            files[file_id] = ('d{}/sub'.format(number) if k else '', 'f{}.bin'.format(k), content)
            self.cartd.add_file(file_id, content)
        record = transaction_info(files)
        location = os.path.join(self.workdir, 'dl', str(number))
        _, downloader = self.clients()
        outcome = 'failed-cleanly'
        for attempt in (1, 2):
            self.maybe_refuse()
            try:
                downloader.transactioninfo(location, record, timeout=10, delete_cart=True)
                outcome = 'ok' if attempt == 1 else 'ok-after-retry'
                break
            except PacificaError as err:
                with self.lock:
                    self.failures[type(err).__name__] += 1
            except Exception as err:  # noqa: BLE001 - the soak reports what escaped
                outcome = 'failed-unclean'
                with self.lock:
                    self.failures['UNCLEAN {}: {}'.format(type(err).__name__, err)] += 1
                break
        verified = 0
        for subdir, name, content in files.values():
            path = os.path.join(location, 'data', *(p for p in subdir.split('/') if p), name)
            if os.path.exists(path):
                with open(path, 'rb') as handle:
                    if handle.read() == content:
                        verified += 1
                    else:
                        with self.lock:
                            self.corrupt.append(path)
        with self.lock:
            self.downloads[outcome] += 1
            self.downloads['files verified'] += verified
            if outcome.startswith('ok') and verified != len(files):
                self.downloads['ok but files missing'] += 1
            if not outcome.startswith('ok') and verified:
                self.downloads['failed but files under final names'] += 1
        shutil.rmtree(location, ignore_errors=True)

    # -- the report ---------------------------------------------------------------------
    def report(self, elapsed: float) -> int:
        jobs_by_tag: Dict[str, List[Any]] = collections.defaultdict(list)
        for job in list(self.ingest.jobs.values()):
            jobs_by_tag[job.value_of(TAG_TABLE)].append(job)
        counts = collections.Counter(outcome for _, outcome, _, _ in self.uploads)
        duplicated = sum(1 for tag, _, _, _ in self.uploads if len(jobs_by_tag.get(tag, [])) > 1)
        lost = 0
        orphans = 0
        for tag, outcome, job_id, _ in self.uploads:
            jobs = jobs_by_tag.get(tag, [])  # shards carry no tag: they are counted by dataset_lines
            if outcome == 'ok':
                job = self.ingest.jobs.get(job_id)
                if job is None or job.value_of(TAG_TABLE) != tag or not job.ok or len(jobs) != 1:
                    lost += 1
            elif len(jobs) == 1:
                orphans += 1
        bad_jobs = sum(1 for job in self.ingest.jobs.values() if not job.ok)
        kinds = collections.Counter()
        for proxy in self.proxies:
            kinds.update(proxy.faults_used())
        requests = sum(len(proxy.events) for proxy in self.proxies)
        upload_failures = collections.Counter(detail for _, outcome, _, detail in self.uploads if outcome != 'ok')
        lines = [
            'soak: {} uploads, {} downloads in {:.1f} s'.format(len(self.uploads), sum(
                self.downloads[k] for k in ('ok', 'ok-after-retry', 'failed-cleanly', 'failed-unclean')), elapsed),
            'requests through the proxies: {}, faults injected: {} ({:.1%}), refusals: {}'.format(
                requests, sum(kinds.values()), sum(kinds.values()) / max(requests, 1), self.refusals),
            '  faults by kind: ' + ', '.join('{} {}'.format(k, v) for k, v in sorted(kinds.items())),
            'uploads: attempted {}, succeeded {}, failed cleanly {}, failed unclean {}, false successes {}'.format(
                len(self.uploads), counts['ok'], counts['failed-cleanly'], counts['failed-unclean'],
                counts['false-success']),
            '  upload failures by exception: ' + (', '.join('{} {}'.format(k, v) for k, v in sorted(
                upload_failures.items())) or 'none'),
            'jobs at ingest: {}; duplicated uploads: {}; lost (success without its one sound job): {}; '
            'jobs of failed uploads (server got it, caller was told it failed): {}; unsound jobs: {}'.format(
                len(self.ingest.jobs), duplicated, lost, orphans, bad_jobs),
            'downloads: ok {}, ok after one retry {}, failed cleanly {}, failed unclean {}'.format(
                self.downloads['ok'], self.downloads['ok-after-retry'], self.downloads['failed-cleanly'],
                self.downloads['failed-unclean']),
            '  download failures by exception: ' + (', '.join('{} {}'.format(k, v) for k, v in sorted(
                self.failures.items())) or 'none'),
            'files verified byte for byte: {}; corrupt files: {}; ok-but-missing: {}; '
            'failed-but-final-names: {}'.format(self.downloads['files verified'], len(self.corrupt),
                                                self.downloads['ok but files missing'],
                                                self.downloads['failed but files under final names']),
        ]
        dataset_lines, dataset_broken = self.dataset_lines()
        lines += dataset_lines
        print('\n'.join(lines))
        broken = (dataset_broken or duplicated or lost or counts['failed-unclean'] or counts['false-success']
                  or self.corrupt
                  or self.downloads['failed-unclean'] or self.downloads['ok but files missing']
                  or self.downloads['failed but files under final names'] or bad_jobs)
        print('RESULT: ' + ('FAIL' if broken else 'PASS: 0 duplicated, 0 lost, 0 corrupt, every failure a '
                                                  'PacificaError'))
        return 1 if broken else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--uploads', type=int, default=1000)
    parser.add_argument('--downloads', type=int, default=1000)
    parser.add_argument('--datasets', type=int, default=100, help='sharded datasets (3 files a shard)')
    parser.add_argument('--rate', type=float, default=0.05, help='share of requests that meet a fault')
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--seed', type=int, default=2026)
    args = parser.parse_args(argv)
    # The library warns on every poll it repeats and cart it could not delete; thousands of those hide the report.
    logging.getLogger('pacifica').setLevel(logging.ERROR)
    workdir = tempfile.mkdtemp(prefix='pacifica-soak-')
    soak = Soak(workdir, args.rate, args.seed)
    start = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            jobs = [pool.submit(soak.upload, n) for n in range(args.uploads)]
            jobs += [pool.submit(soak.download, n) for n in range(args.downloads)]
            jobs += [pool.submit(soak.dataset, n) for n in range(args.datasets)]
            for job in jobs:
                job.result()
        time.sleep(0.5)  # let any request still in a proxy reach the stand-ins before counting
        return soak.report(time.monotonic() - start)
    finally:
        soak.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
