"""The coordinator, with the work units replaced in memory: states recorded, windows kept, re-runs exact."""
from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import threading
import tracemalloc
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Dict, Iterator, List

import pytest

from pacifica.uploader import ConfigurationError, TransferConfig
from pacifica.uploader.dataset import pool as shard_pool
from pacifica.uploader.dataset import runner
from pacifica.uploader.dataset.manifest import FAILED, INGESTED, SENDING, SENT, Manifest, ManifestError
from pacifica.uploader.dataset.metadata import dataset_tags
from pacifica.uploader.dataset.plan import DatasetChangedError, DatasetSource, EmptyDatasetError, entries_under
from pacifica.uploader.dataset.runner import upload_dataset
from pacifica.uploader.dataset.worker import INGESTED as JOB_INGESTED
from pacifica.uploader.dataset.worker import FOUND, JOB_FAILED, NOT_FOLLOWED, NOT_FOUND, NOT_SENT, UNKNOWN, UNRESOLVED
from pacifica.uploader.dataset.worker import SENT as WORK_SENT
from pacifica.uploader.dataset.worker import Outcome, SendTask
from pacifica.uploader.metadata import MetaData, MetaObj, metadata_decode

KWARGS = {'upload_url': 'http://ingest.invalid/upload', 'status_url': 'http://ingest.invalid/get_state'}


def metadata(project: str = '1234a') -> MetaData:
    return MetaData([MetaObj(destinationTable='Transactions.project', value=project)])


def file_data(count: int = 10) -> List[Dict[str, Any]]:
    return [{'name': 'data/f{:03d}'.format(index), 'size': 10, 'mtime': 0, 'path': 'unused'} for index in range(count)]


class FakeIngest:
    """Stands in for the work units: ``send`` and ``follow`` answers per part, every call recorded."""

    def __init__(self) -> None:
        self.sends: List[SendTask] = []
        self.follows: List[int] = []
        self.send_answer: Dict[int, Callable[[SendTask], Outcome]] = {}
        self.follow_answer: Dict[int, str] = {}
        self.expected: Dict[int, Any] = {}
        self.resolves: List[Any] = []
        self.resolve_answer: Dict[int, Any] = {}
        self.lock = threading.Lock()

    def send(self, task: SendTask) -> Outcome:
        with self.lock:
            self.sends.append(task)
        answer = self.send_answer.get(task.part)
        return answer(task) if answer else Outcome(task.part, WORK_SENT, 1000 + task.part)

    def follow(self, _kwargs: Any, part: int, job_id: Any, _timeout: Any, **options: Any) -> Outcome:
        with self.lock:
            self.follows.append(part)
            self.expected[part] = options.get('expected')
        kind = self.follow_answer.get(part, JOB_INGESTED)
        return Outcome(part, kind, job_id, '' if kind == JOB_INGESTED else 'the job went wrong')

    def resolve(self, _lookup: Any, _dataset: str, part: int, parts: int, wait: float, _interval: float,
                _stop: Any = None) -> Outcome:
        """By default the servers do not answer, so the part stays unknown."""
        with self.lock:
            self.resolves.append((part, parts, wait))
        kind, transaction_id = self.resolve_answer.get(part, (UNRESOLVED, None))
        return Outcome(part, kind, transaction_id, 'the lookup said so')

    @property
    def sent_parts(self) -> List[int]:
        return sorted(task.part for task in self.sends)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeIngest:
    ingest = FakeIngest()
    monkeypatch.setattr(runner, 'send_shard', ingest.send)
    monkeypatch.setattr(runner, 'follow_job', ingest.follow)
    monkeypatch.setattr(runner, 'resolve_part', ingest.resolve)
    return ingest


@pytest.fixture
def pool() -> Iterator[cf.ThreadPoolExecutor]:
    executor = cf.ThreadPoolExecutor(max_workers=2)
    yield executor
    executor.shutdown(wait=True)


@pytest.fixture
def path(tmp_path: Any) -> str:
    return str(tmp_path / 'dataset.manifest.json')


def run(path: str, pool: cf.Executor, source: Any = None, **kwargs: Any) -> runner.RunReport:
    kwargs.setdefault('max_files', 3)
    return upload_dataset(file_data() if source is None else source, metadata(), path, executor=pool,
                          uploader_kwargs=KWARGS, **kwargs)


def test_every_file_goes_out_once_in_shards_tagged_with_the_dataset(path: str, pool: Any, fake: FakeIngest) -> None:
    report = run(path, pool)
    assert report.complete and report.parts == 4
    assert sorted(report.sent) == report.ingested == [1, 2, 3, 4]
    names = [entry['name'] for task in sorted(fake.sends) for entry in task.entries]
    assert names == [entry['name'] for entry in file_data()]
    for task in fake.sends:
        tags = dataset_tags(metadata_decode(task.metadata_text))
        assert tags == (report.dataset_id, task.part, 4)
        assert task.uploader_kwargs == KWARGS
    manifest = Manifest.load(path)
    assert manifest.complete and [record.transaction_id for record in manifest.shards] == [1001, 1002, 1003, 1004]


def test_a_rerun_of_a_complete_dataset_sends_nothing(path: str, pool: Any, fake: FakeIngest) -> None:
    first = run(path, pool)
    fake.sends.clear()
    fake.follows.clear()
    again = run(path, pool)
    assert (fake.sends, fake.follows, again.sent) == ([], [], [])
    assert again.complete and again.dataset_id == first.dataset_id


def test_each_outcome_lands_in_the_manifest_and_the_report(path: str, pool: Any, fake: FakeIngest) -> None:
    fake.send_answer = {
        2: lambda task: Outcome(task.part, NOT_SENT, None, 'FileDataError: data/f004 is gone'),
        3: lambda task: Outcome(task.part, UNKNOWN, None, 'ServerConnectionError: reset before the reply'),
    }
    fake.follow_answer = {4: JOB_FAILED}
    report = run(path, pool)
    manifest = Manifest.load(path)
    assert [record.state for record in manifest.shards] == [INGESTED, FAILED, SENDING, FAILED]
    assert report.ingested == [1] and sorted(report.failed) == [2, 4] and list(report.unknown) == [3]
    assert 'reset before the reply' in report.unknown[3] and 'gone' in report.failed[2]
    assert manifest.shard(4).job_id == 1004 and manifest.shard(2).job_id is None
    assert not report.complete


def test_a_rerun_sends_the_failed_shards_and_reports_the_unknown_one(path: str, pool: Any, fake: FakeIngest) -> None:
    fake.send_answer = {
        2: lambda task: Outcome(task.part, NOT_SENT, None, 'gone'),
        3: lambda task: Outcome(task.part, UNKNOWN, None, 'reset'),
    }
    fake.follow_answer = {4: JOB_FAILED}
    run(path, pool)
    fake.send_answer, fake.follow_answer = {}, {}
    fake.sends.clear()
    report = run(path, pool)
    assert fake.sent_parts == [2, 4], 'never part 3, whose first sending may have arrived'
    assert report.ingested == [1, 2, 4] and list(report.unknown) == [3] and not report.failed
    assert Manifest.load(path).shard(3).state == SENDING


def test_a_work_unit_that_dies_leaves_its_shard_unknown(path: str, pool: Any, fake: FakeIngest) -> None:
    def die(task: SendTask) -> Outcome:
        raise BrokenProcessPool('a worker process died')

    fake.send_answer = {1: die}
    report = run(path, pool)
    assert list(report.unknown) == [1] and 'BrokenProcessPool' in report.unknown[1]


def test_no_more_than_window_shards_are_sending_at_once(path: str, fake: FakeIngest) -> None:
    seen: List[int] = []

    def slow(task: SendTask) -> Outcome:
        doc = json.loads(open(path, encoding='ascii').read())
        seen.append(sum(shard['state'] == SENDING for shard in doc['shards']))
        threading.Event().wait(0.02)
        return Outcome(task.part, WORK_SENT, 1000 + task.part)

    fake.send_answer = dict.fromkeys(range(1, 11), slow)
    with cf.ThreadPoolExecutor(max_workers=4) as executor:
        report = run(path, executor, source=file_data(10), max_files=1, window=2)
    assert report.complete and len(seen) == 10
    assert max(seen) <= 2


def test_by_default_one_shard_more_than_workers_is_sending_waiting_in_the_queue(path: str, fake: FakeIngest) -> None:
    started = threading.Semaphore(0)
    release = threading.Event()
    queued: List[int] = []

    def held(task: SendTask) -> Outcome:
        started.release()
        release.wait(10)
        return Outcome(task.part, WORK_SENT, 1000 + task.part)

    fake.send_answer = dict.fromkeys(range(1, 11), held)
    with cf.ThreadPoolExecutor(max_workers=2) as executor:  # two workers busy, one shard waits in the queue

        def watch() -> None:
            for _ in range(2):
                assert started.acquire(timeout=10)
            for _ in range(200):  # until the coordinator has submitted all it may
                doc = json.loads(open(path, encoding='ascii').read()) if os.path.exists(path) else {'shards': []}
                queued.append(sum(shard['state'] == SENDING for shard in doc['shards']))
                if queued[-1] >= 3:
                    break
                threading.Event().wait(0.01)
            threading.Event().wait(0.1)  # a fourth would be marked by now
            queued.append(sum(shard['state'] == SENDING
                              for shard in json.loads(open(path, encoding='ascii').read())['shards']))
            release.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        report = run(path, executor, source=file_data(10), max_files=1, workers=2)
        watcher.join()
    assert report.complete
    assert queued[-1] == 3 and max(queued) == 3, queued


def test_without_wait_the_jobs_are_left_to_a_later_run(path: str, pool: Any, fake: FakeIngest) -> None:
    report = run(path, pool, wait=False)
    assert fake.follows == [] and report.unfollowed == {1: 1001, 2: 1002, 3: 1003, 4: 1004}
    assert {record.state for record in Manifest.load(path).shards} == {SENT}
    fake.sends.clear()
    again = run(path, pool)
    assert fake.sends == [] and sorted(fake.follows) == [1, 2, 3, 4] and again.complete


def test_a_wait_that_failed_keeps_the_shard_sent_with_the_error(path: str, pool: Any, fake: FakeIngest) -> None:
    fake.follow_answer = {2: NOT_FOLLOWED}
    report = run(path, pool)
    assert report.unfollowed == {2: 1002}
    record = Manifest.load(path).shard(2)
    assert record.state == SENT and record.error == 'the job went wrong'


def test_a_dataset_changed_since_the_first_run_is_refused_before_sending(path: str, pool: Any,
                                                                         fake: FakeIngest) -> None:
    fake.send_answer = {3: lambda task: Outcome(task.part, NOT_SENT, None, 'gone')}
    run(path, pool)
    fake.sends.clear()
    changed = file_data()
    changed[9]['name'] = 'data/renamed'
    with pytest.raises(DatasetChangedError, match='part 4'):
        run(path, pool, source=changed)
    assert fake.sends == []


def test_a_resumed_run_keeps_the_planned_limits_and_metadata(path: str, pool: Any, fake: FakeIngest) -> None:
    run(path, pool, wait=False)
    with pytest.raises(ManifestError, match='max_files=3'):
        run(path, pool, max_files=4)
    with pytest.raises(ManifestError, match='other metadata'):
        upload_dataset(file_data(), metadata('other'), path, executor=pool, uploader_kwargs=KWARGS)
    assert run(path, pool, max_files=None).complete


def test_the_coordinator_stops_cleanly_when_the_source_fails(path: str, fake: FakeIngest) -> None:
    release = threading.Event()
    fake.send_answer = {1: lambda task: (release.wait(10), Outcome(task.part, WORK_SENT, 1001))[1]}
    calls = {'count': 0}

    def entries() -> Iterator[Dict[str, Any]]:
        calls['count'] += 1
        for index, entry in enumerate(file_data(12)):
            if calls['count'] == 2 and index == 9:
                raise OSError('the file server went away')
            yield entry

    with cf.ThreadPoolExecutor(max_workers=1) as executor:
        with pytest.raises(OSError, match='went away'):
            run(path, executor, source=DatasetSource(entries, 'flaky'), window=3)
        release.set()
    states = [record.state for record in Manifest.load(path).shards]
    # part 1 was running: its outcome stays unknown; parts 2 and 3 never started: definitely not sent.
    assert states == [SENDING, FAILED, FAILED, 'planned']


@pytest.mark.parametrize('bad', [{'workers': 0}, {'window': 0}, {'workers': True}])
def test_worker_counts_are_checked(path: str, fake: FakeIngest, bad: Dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        upload_dataset(file_data(), metadata(), path, max_files=3, uploader_kwargs=KWARGS, **bad)


def test_an_empty_dataset_writes_no_manifest(path: str, pool: Any, fake: FakeIngest) -> None:
    with pytest.raises(EmptyDatasetError):
        run(path, pool, source=[])
    with pytest.raises(FileNotFoundError):
        open(path)


def test_the_uploader_keywords_are_checked_before_planning(path: str, pool: Any, fake: FakeIngest) -> None:
    with pytest.raises(ConfigurationError):
        upload_dataset(file_data(), metadata(), path, max_files=3, executor=pool, uploader_kwargs={'timeout': 'soon'})
    with pytest.raises(FileNotFoundError):
        open(path)


#: The coordinator holds the shard records and the entries of the shards in
#: flight (window 2, plus the one being collected): three shards of 10,000
#: entries, a few megabytes of dicts. Keeping 40 bytes for each of the 400,000
#: entries would already pass this bound.
COORDINATOR_PEAK_BOUND = 16 * 1024 * 1024


def test_the_coordinator_holds_the_shards_in_flight_not_the_dataset(path: str, fake: FakeIngest) -> None:
    count = 400_000

    def entries() -> Iterator[Dict[str, Any]]:
        names = map('data/d{:04d}/f{:07d}.dat'.format, (index // 1000 for index in range(count)), range(count))
        return ({'name': name, 'size': 4096, 'mtime': 1.5e9, 'path': name} for name in names)

    fake.sends = _Counting()  # type: ignore[assignment]
    with cf.ThreadPoolExecutor(max_workers=2) as executor:
        tracemalloc.start()
        try:
            report = run(path, executor, source=DatasetSource(entries, 'synthetic'), max_files=10_000, window=2,
                         wait=False)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert report.parts == 40 and len(report.sent) == 40
    assert peak < COORDINATOR_PEAK_BOUND, 'the coordinator peaked at {} bytes'.format(peak)


class _Counting(list):
    """Counts the tasks instead of keeping them (with their entries)."""

    def append(self, task: Any) -> None:
        super().append(task.part)


class InlineExecutor(cf.Executor):
    """Runs each call at once, like a process pool would after pickling it (no threads, no processes)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_entries_that_cannot_reach_a_worker_process_are_refused_before_sending(path: str, tmp_path: Any,
                                                                              fake: FakeIngest) -> None:
    (tmp_path / 'f').write_bytes(b'0123456789')
    data = file_data(4)
    with open(str(tmp_path / 'f'), 'rb') as opened:
        data[3] = dict(data[3], fileobj=opened)
        with pytest.raises(ConfigurationError, match="part 2 cannot be sent to a worker process.*'path'"):
            run(path, InlineExecutor(), source=data, max_files=2)
        assert [record.state for record in Manifest.load(path).shards] == [SENT, 'planned']  # followed next run
        with cf.ThreadPoolExecutor(max_workers=1) as threads:
            assert run(path, threads, source=data, max_files=2).complete  # threads share the open file


def test_an_unknown_shard_found_on_the_server_is_recorded_with_its_transaction(path: str, pool: Any,
                                                                              fake: FakeIngest) -> None:
    fake.send_answer = {3: lambda task: Outcome(task.part, UNKNOWN, None, 'reset before the reply')}
    fake.resolve_answer = {3: (FOUND, 777)}
    report = run(path, pool, resolve_wait=42)
    assert report.complete and report.resolved == {3: 777}
    assert fake.sent_parts == [1, 2, 3, 4], 'part 3 went out once'
    assert fake.resolves == [(3, 4, 42.0)]
    record = Manifest.load(path).shard(3)
    assert (record.state, record.job_id, record.transaction_id) == (INGESTED, 777, 777)
    # Its transaction is checked against the planned names and sizes (the hashes went with the lost reply).
    assert [(f.path, f.size, f.hashsum) for f in fake.expected[3]] == [('f006', 10, ''), ('f007', 10, ''),
                                                                        ('f008', 10, '')]
    assert fake.expected[1] is None  # the fake send carries no records; a real one does (test_worker)


def test_an_unknown_shard_not_found_after_the_wait_is_sent_again(path: str, pool: Any, fake: FakeIngest) -> None:
    answers = iter([Outcome(3, UNKNOWN, None, 'reset before the reply')])
    fake.send_answer = {3: lambda task: next(answers, Outcome(3, WORK_SENT, 1033))}
    fake.resolve_answer = {3: (NOT_FOUND, None)}
    report = run(path, pool)
    assert report.complete and report.resolved == {3: None}
    assert fake.sent_parts == [1, 2, 3, 3, 4]
    assert Manifest.load(path).shard(3).transaction_id == 1033


def test_without_resolve_wait_an_unknown_shard_stays_unknown(path: str, pool: Any, fake: FakeIngest) -> None:
    fake.send_answer = {3: lambda task: Outcome(task.part, UNKNOWN, None, 'reset before the reply')}
    fake.resolve_answer = {3: (FOUND, 777)}
    report = run(path, pool, resolve_wait=None)
    assert list(report.unknown) == [3] and fake.resolves == [] and report.resolved == {}


def test_a_rerun_resolves_what_the_previous_run_left_unknown(path: str, pool: Any, fake: FakeIngest) -> None:
    fake.send_answer = {2: lambda task: Outcome(task.part, UNKNOWN, None, 'reset before the reply')}
    first = run(path, pool)  # the servers do not answer the lookup: part 2 stays unknown
    assert list(first.unknown) == [2] and 'reset before the reply' in first.unknown[2]
    assert 'the lookup said so' in first.unknown[2]
    fake.sends.clear()
    fake.resolve_answer = {2: (FOUND, 555)}
    again = run(path, pool)
    assert fake.sent_parts == [] and again.resolved == {2: 555} and again.complete


def test_read_ahead_is_off_when_the_shards_fill_the_cores(path: str, pool: Any, fake: FakeIngest,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The figures (benchmarks/README.md, sharded uploads): a read-ahead process per shard only competes then."""
    monkeypatch.setattr(shard_pool.os, 'cpu_count', lambda: 2)
    run(path, pool, window=2)
    assert {task.bundler_kwargs['config'].read_ahead for task in fake.sends} == {False}
    fake.sends.clear()
    run(path + '.one', pool, workers=1)  # one shard at work, one queued: the second core is the read-ahead's
    assert fake.sends and all('config' not in task.bundler_kwargs for task in fake.sends)
    fake.sends.clear()
    run(path + '.two', pool, workers=2)
    assert {task.bundler_kwargs['config'].read_ahead for task in fake.sends} == {False}
    assert shard_pool.shard_bundler_kwargs({'hashfunc': 'md5'}, 1) == {'hashfunc': 'md5'}  # a core to spare
    given = TransferConfig(read_ahead=True)
    assert shard_pool.shard_bundler_kwargs({'config': given}, 8)['config'] is given  # the caller's choice is kept


def test_a_folder_is_listed_once_per_run_planned_or_resumed(path: str, pool: Any, fake: FakeIngest,
                                                            tmp_path: Any) -> None:
    root = tmp_path / 'set'
    for index in range(7):
        (root / 'd{}'.format(index % 2)).mkdir(parents=True, exist_ok=True)
        (root / 'd{}'.format(index % 2) / 'f{}'.format(index)).write_bytes(b'x' * index)
    listings: List[int] = []

    def listing() -> Iterator[Dict[str, Any]]:
        listings.append(1)
        return entries_under(str(root))
    source = DatasetSource(listing, 'counted', plain=True)
    fake.send_answer = {2: lambda task: Outcome(task.part, NOT_SENT, None, 'gone')}
    first = run(path, pool, source=source)
    assert len(listings) == 1 and first.failed.keys() == {2}
    names = [entry['name'] for task in sorted(fake.sends) for entry in task.entries]
    assert names == [entry['name'] for entry in entries_under(str(root))]
    fake.send_answer = {}
    again = run(path, pool, source=source)  # the check of the resumed dataset is its listing
    assert len(listings) == 2 and again.complete and again.sent == [2]


def test_the_default_pool_starts_its_processes_before_the_planning_pass(path: str, fake: FakeIngest) -> None:
    """Their start-up (a spawn and the library's import) overlaps the planning instead of following it."""
    children: List[int] = []

    def listing() -> Iterator[Dict[str, Any]]:
        children.append(len(multiprocessing.active_children()))
        return iter(())
    with pytest.raises(EmptyDatasetError):
        upload_dataset(DatasetSource(listing, 'empty'), metadata(), path, max_files=3, workers=2,
                       uploader_kwargs=KWARGS)
    assert children == [2] and multiprocessing.active_children() == []
