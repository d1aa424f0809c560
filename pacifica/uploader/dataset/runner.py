"""Upload a dataset as shards on any :class:`concurrent.futures.Executor`, resumable from its manifest.

::

    report = upload_dataset(DatasetSource.from_root('run42'), metadata, 'run42.manifest.json',
                            max_bytes=2 << 30, workers=4,
                            uploader_kwargs={'upload_url': ..., 'status_url': ...})
    report.complete, report.unknown

The coordinating process plans the shards (:mod:`.plan`), writes the
manifest (:mod:`.manifest`), then streams the entries a second time (a
folder's from the planning pass's :class:`~.plan.EntrySpool`, not listed
again) and hands each shard to the executor as a :func:`~.worker.send_shard` work unit:
by default a process pool of ``workers`` processes, or any Executor given
(``distributed.Client(address).get_executor()`` for a cluster, the files then
on a shared file system). It records every result in the manifest as it
comes in, then follows each job (:func:`~.worker.follow_job`) in threads of
its own, since polling needs no core.

Exactly once: a shard is marked ``sending`` before it is submitted, so a
crash can leave a shard whose outcome is unknown, never one sent twice
unseen. At most ``window`` shards are submitted and unfinished at a time
(default ``workers + 1``: one shard waits in the executor's queue, so a
worker that finishes starts the next at once instead of idling through the
coordinator's turn): that bounds the shards a crash can leave unknown, and
the entries held in memory. Run again with the same manifest, it sends only
the shards never sent or definitely failed and follows the jobs not yet
followed. A shard whose outcome is unknown (the previous run died between
sending it and recording its job id, or its reply was lost) is looked up on
the metadata service by its ``pacifica.dataset.part`` tag
(:func:`~.worker.resolve_part`), for up to ``resolve_wait`` seconds, since a
bundle becomes a transaction only when its ingest job ends: found, it is
recorded with its transaction id; not found after the wait, it is sent
again (in a second pass over the dataset). Pacifica's ingest takes no
idempotency key, so one window remains: a bundle whose ingest job takes
longer than ``resolve_wait`` to end (from the moment the resolution starts)
is sent a second time. ``resolve_wait=None`` turns resolution off (such
shards are then reported unknown and never sent again).

Every shard's job is followed to its end and its transaction checked against
what was sent (:func:`~.worker.follow_job`): names, sizes and hashes for a
shard sent in this run, names and sizes for one sent by an earlier run or
found by a resolution. A transaction that differs fails the shard loudly
(IngestVerificationError naming the files, in ``RunReport.failed``); a re-run
sends it again, and the faulty transaction stays on the server.

The default process pool's workers die with the coordinator (Linux:
``PR_SET_PDEATHSIG``), so a killed run leaves no upload running on: only a
bundle already whole at Ingest can still become a transaction. Workers of
another executor (a Dask cluster) may go on sending after the coordinator
died; ``resolve_wait`` must then also cover the rest of such an upload.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import os
import pickle
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from pacifica._client.ingestcheck import SentFile

from pacifica._client.datasets import DatasetLookup
from pacifica._client.rules import seconds
from pacifica.uploader import ConfigurationError, Uploader
from pacifica.uploader.metadata import metadata_decode, metadata_encode

from .manifest import FAILED, INGESTED, PLANNED, SENDING, SENT, Manifest, ManifestError, ManifestLock
from .metadata import base_metadata, new_dataset_id, shard_metadata
from .plan import DatasetSource, EntrySpool, ShardPlan, cut, plan
from .pool import default_executor, shard_bundler_kwargs, start_processes
from .worker import INGESTED as JOB_INGESTED
from .worker import FOUND, JOB_FAILED, NOT_FOLLOWED, NOT_FOUND, NOT_SENT, UNKNOWN, UNRESOLVED, Outcome, SendTask
from .worker import follow_job, planned_files, resolve_part, send_shard
from .worker import SENT as WORK_SENT

__all__ = ['upload_dataset', 'RunReport']

#: Seconds each shard's ingest job is followed when ``wait_timeout`` is not given (as pacifica-upload --wait).
DEFAULT_WAIT_TIMEOUT = 3600.0
#: Seconds the metadata service is asked whether a shard of unknown outcome arrived before it is sent again:
#: the longest an ingest job of one shard may take on the deployment (``resolve_wait``).
DEFAULT_RESOLVE_WAIT = 600.0
#: Shards submitted beyond ``workers`` by default: one waits in the executor's queue for the first worker free.
QUEUED_SHARDS = 1
#: Passes over the dataset a run makes at most: shards found missing after a resolution go in the next pass.
_ROUNDS = 3


@dataclasses.dataclass
class RunReport:
    """Where the dataset stands after a run (part numbers count from 1)."""

    dataset_id: str
    manifest_path: str
    parts: int
    #: Parts sent in this run.
    sent: List[int] = dataclasses.field(default_factory=list)
    #: Parts ingested, in this run or before.
    ingested: List[int] = dataclasses.field(default_factory=list)
    #: Parts that definitely failed (not ingested), with the error: a re-run sends them again.
    failed: Dict[int, str] = dataclasses.field(default_factory=dict)
    #: Parts whose outcome is still unknown (sending began, no job id came back, and the servers could not
    #: settle it: ``resolve_wait=None``, or no answer from the metadata service): not sent again.
    unknown: Dict[int, str] = dataclasses.field(default_factory=dict)
    #: Parts sent whose job was not followed to its end (``wait=False`` or the wait failed).
    unfollowed: Dict[int, Any] = dataclasses.field(default_factory=dict)
    #: Parts of unknown outcome the servers settled in this run: the transaction found, or None (sent again).
    resolved: Dict[int, Any] = dataclasses.field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every part is ingested."""
        return len(self.ingested) == self.parts


def _metadata_digest(text: str) -> str:
    return hashlib.sha256(text.encode('utf-8'), usedforsecurity=False).hexdigest()


@dataclasses.dataclass(frozen=True)
class _Options:
    """How a run talks to the servers and how long it waits."""

    uploader_kwargs: Dict[str, Any]
    bundler_kwargs: Dict[str, Any]
    lookup_kwargs: Dict[str, Any]
    wait: bool
    wait_timeout: Optional[float]
    resolve_wait: Optional[float]
    resolve_interval: float
    #: Called with the manifest in the coordinating thread when the run begins and after every step recorded.
    on_change: Optional[Callable[[Manifest], Any]] = None


class _Coordinator:
    """One run over one manifest: submits, records, resolves and follows; the only writer of the manifest."""

    def __init__(self, manifest: Manifest, source: DatasetSource, metadata_text: str, executor: cf.Executor,
                 window: int, options: '_Options') -> None:
        self.manifest = manifest
        self.source = source
        self.metadata_text = metadata_text
        self.executor = executor
        self.window = window
        self.options = options
        self.helpers: Optional[cf.ThreadPoolExecutor] = None
        #: Work in flight: future -> (part, what its transaction must hold, when known).
        self.sending: Dict[cf.Future, Tuple[int, List[Mapping[str, Any]]]] = {}
        self.following: Dict[cf.Future, int] = {}
        self.resolving: Dict[cf.Future, Tuple[int, List[SentFile]]] = {}
        #: Parts the servers showed never arrived: sent in the next round.
        self.resend: Set[int] = set()
        #: Set on the way out: resolutions still waiting give up (their shards stay unknown).
        self.stopping = threading.Event()
        self.report = RunReport(manifest.dataset_id, manifest.path, len(manifest.shards))

    def _changed(self) -> None:
        """Tell the caller (a progress display) the manifest moved on."""
        if self.options.on_change is not None:
            self.options.on_change(self.manifest)

    def run(self) -> RunReport:
        self.helpers = cf.ThreadPoolExecutor(max_workers=2 * self.window, thread_name_prefix='pacifica-follow')
        self._changed()
        try:
            todo = {record.part for record in self.manifest.in_state(PLANNED, FAILED, SENT, SENDING)}
            for _ in range(_ROUNDS):
                self._round(todo)
                if not self.resend:
                    break
                todo, self.resend = self.resend, set()
        finally:
            self._abandon()
        return self._final_report()

    def _round(self, todo: Set[int]) -> None:
        """One pass over the dataset: send, follow or resolve each shard of ``todo`` as its state asks."""
        for shard, entries in cut(self.source(), self.manifest.plans(), lambda shard: shard.part in todo):
            record = self.manifest.shard(shard.part)
            if record.state == SENT:
                self._follow(shard.part, record.job_id, planned_files(entries))
            elif record.state == SENDING:
                self._resolve(shard.part, planned_files(entries))
            elif record.state in (PLANNED, FAILED):
                with self.manifest.deferring():  # the outcomes collected are saved with this shard's sending
                    while len(self.sending) >= self.window:
                        self._collect()
                    self._submit(shard, entries)
                self._changed()
        while self.sending or self.following or self.resolving:
            self._collect()

    def _task(self, shard: ShardPlan, entries: List[Mapping[str, Any]]) -> SendTask:
        text = metadata_encode(shard_metadata(metadata_decode(self.metadata_text), self.manifest.dataset_id, shard.part,
                                              len(self.manifest.shards)))
        return SendTask(shard.part, text, entries, self.options.uploader_kwargs, self.options.bundler_kwargs)

    def _submit(self, shard: ShardPlan, entries: List[Mapping[str, Any]]) -> None:
        task = self._task(shard, entries)
        if not isinstance(self.executor, cf.ThreadPoolExecutor):
            _check_picklable(task)  # else the executor would fail it after it was marked sending
        self.manifest.mark_sending(shard.part)
        self.sending[self.executor.submit(send_shard, task)] = (shard.part, entries)

    def _follow(self, part: int, job_id: Any, expected: Optional[List[SentFile]]) -> None:
        if not self.options.wait or self.helpers is None:
            return
        options = self.options
        future = self.helpers.submit(follow_job, options.uploader_kwargs, part, job_id, options.wait_timeout,
                                     expected=expected, lookup_kwargs=options.lookup_kwargs)
        self.following[future] = part

    def _resolve(self, part: int, expected: List[SentFile]) -> None:
        """Ask the servers whether the shard arrived; without ``resolve_wait`` it stays unknown."""
        options = self.options
        if options.resolve_wait is None or self.helpers is None:
            return
        future = self.helpers.submit(resolve_part, options.lookup_kwargs, self.manifest.dataset_id, part,
                                     len(self.manifest.shards), options.resolve_wait, options.resolve_interval,
                                     self.stopping)
        self.resolving[future] = (part, expected)

    def _collect(self) -> None:
        """Record every step that has ended (at least one)."""
        done, _ = cf.wait([*self.sending, *self.following, *self.resolving], return_when=cf.FIRST_COMPLETED)
        with self.manifest.deferring():  # one save for all
            for future in done:
                if future in self.sending:
                    part, entries = self.sending.pop(future)
                    self._sent(part, _outcome(future, part), entries)
                elif future in self.resolving:
                    part, expected = self.resolving.pop(future)
                    self._resolved(_outcome(future, part, UNRESOLVED), expected)
                else:
                    part = self.following.pop(future)
                    self._followed(_outcome(future, part, NOT_FOLLOWED))
        self._changed()

    def _sent(self, part: int, outcome: Outcome, entries: Optional[List[Mapping[str, Any]]] = None) -> None:
        if outcome.kind == WORK_SENT:
            self.manifest.mark_sent(part, outcome.job_id)
            self.report.sent.append(part)
            self._follow(part, outcome.job_id, outcome.files)
        elif outcome.kind == NOT_SENT:
            self.manifest.mark_failed(part, outcome.error)
        else:
            self.manifest.note_error(part, outcome.error or 'the work unit ended without an answer')
            if entries is not None:
                self._resolve(part, planned_files(entries))

    def _resolved(self, outcome: Outcome, expected: List[SentFile]) -> None:
        part = outcome.part
        if outcome.kind == FOUND:
            self.manifest.mark_sent(part, outcome.job_id)  # Ingest's job id is the transaction id
            self.report.resolved[part] = outcome.job_id
            self._follow(part, outcome.job_id, expected)
        elif outcome.kind == NOT_FOUND:
            self.manifest.mark_failed(part, 'its outcome was unknown and ' + outcome.error)
            self.report.resolved[part] = None
            self.resend.add(part)
        else:
            before = self.manifest.shard(part).error
            self.manifest.note_error(part, '{}; {}'.format(before, outcome.error) if before else outcome.error)

    def _followed(self, outcome: Outcome) -> None:
        if outcome.kind == JOB_INGESTED:
            self.manifest.mark_ingested(outcome.part, outcome.job_id)  # Ingest's job id becomes the transaction id
        elif outcome.kind == JOB_FAILED:
            self.manifest.mark_failed(outcome.part, outcome.error)
        else:
            self.manifest.note_error(outcome.part, outcome.error)

    def _abandon(self) -> None:
        """On the way out (after an error too): record what has ended; work never started did not go out.

        Work still running is not waited for: its shard stays ``sending``, outcome unknown.
        """
        for future, (part, _) in list(self.sending.items()):
            if future.cancel():
                self.manifest.mark_failed(part, 'cancelled before it was sent')
            elif future.done():
                self._sent(part, _outcome(future, part))
        self.stopping.set()
        if self.helpers is not None:
            self.helpers.shutdown(wait=False, cancel_futures=True)

    def _final_report(self) -> RunReport:
        report = self.report
        for record in self.manifest.shards:
            if record.state == INGESTED:
                report.ingested.append(record.part)
            elif record.state == FAILED:
                report.failed[record.part] = record.error or ''
            elif record.state == SENDING:
                report.unknown[record.part] = record.error or 'the previous run ended before a job id came back'
            elif record.state == SENT:
                report.unfollowed[record.part] = record.job_id
        return report


def _check_picklable(task: SendTask) -> None:
    """ConfigurationError when the task cannot travel to another process (an open file in its entries)."""
    try:
        pickle.dumps(task)
    except Exception as err:  # noqa: BLE001 - pickle raises TypeError, PicklingError, AttributeError ...
        raise ConfigurationError("part {} cannot be sent to a worker process ({}): entries must name their files by "
                                 "'path', not 'fileobj' (but on a ThreadPoolExecutor)".format(task.part, err)) from None


def _outcome(future: cf.Future, part: int, kind: str = UNKNOWN) -> Outcome:
    """The work unit's Outcome; a work unit that died (its process killed, ...) left the step's outcome ``kind``."""
    try:
        return future.result()
    except BaseException as err:  # noqa: BLE001 - the executor's own failure: recorded, not raised
        return Outcome(part, kind, None, 'the work unit did not answer: {}: {}'.format(type(err).__name__, err))


def _open_manifest(path: str, spool: EntrySpool, metadata_text: str, max_bytes: Optional[int],
                   max_files: Optional[int]) -> Manifest:
    """The manifest at ``path``, planned now when it does not exist yet; checked against this run's arguments.

    Planning, or the check of a resumed dataset, is the run's one listing
    of the files: ``spool`` keeps it for sending.
    """
    digest = _metadata_digest(metadata_text)
    if not os.path.lexists(path):
        return Manifest.create(path, new_dataset_id(), plan(spool.first_pass(), max_bytes, max_files), max_bytes,
                               max_files, metadata_digest=digest)
    manifest = Manifest.load(path)
    for name, given, recorded in (('max_bytes', max_bytes, manifest.max_bytes),
                                  ('max_files', max_files, manifest.max_files)):
        if given is not None and given != recorded:
            raise ManifestError('{} was planned with {}={}, not {}: give the same limits to resume it'.format(
                path, name, recorded, given))
    if manifest.metadata_digest not in (None, digest):
        raise ManifestError('{} was started with other metadata: every shard of a dataset carries the same'.format(
            path))
    if any(record.state != PLANNED for record in manifest.shards):
        for _ in cut(spool.first_pass(), manifest.plans(), lambda shard: False):
            pass  # a dataset that changed is refused before anything more is sent
    return manifest


def upload_dataset(source: Any, metadata: Iterable[Any], manifest_path: str, *, max_bytes: Optional[int] = None,
                   max_files: Optional[int] = None, workers: int = 2, executor: Optional[cf.Executor] = None,
                   window: Optional[int] = None, uploader_kwargs: Optional[Dict[str, Any]] = None,
                   bundler_kwargs: Optional[Dict[str, Any]] = None, wait: bool = True,
                   wait_timeout: Optional[float] = DEFAULT_WAIT_TIMEOUT, metadata_url: Optional[str] = None,
                   resolve_wait: Optional[float] = DEFAULT_RESOLVE_WAIT,
                   on_change: Optional[Callable[[Manifest], Any]] = None) -> RunReport:
    """Upload ``source`` (a :class:`DatasetSource`, a folder, or a ``file_data`` list) in shards.

    ``metadata`` is the dataset's MetaData (without the dataset's key/values,
    added per shard). ``manifest_path`` is created and planned with
    ``max_bytes`` / ``max_files`` when it does not exist, else resumed.
    ``executor`` defaults to a process pool of ``workers`` processes, shut
    down at the end; a given one is left running. ``uploader_kwargs`` /
    ``bundler_kwargs`` are the keywords of each worker's Uploader and
    Bundler (they must pickle); without a Bundler ``config``, a shard's
    read-ahead process is left off when the shards running at once fill the
    cores (:func:`shard_bundler_kwargs`). ``window`` (default ``workers +
    1``) bounds the shards submitted and unfinished. With ``wait``, every job is followed for up
    to ``wait_timeout`` seconds and its transaction checked. The metadata
    service (``metadata_url``, else env ``METADATA_PROTO``/``_ADDR``/``_PORT``;
    asked with the Uploader's ``config``, ``auth`` and ``timeout``) answers
    the checks and, for up to ``resolve_wait`` seconds, whether a shard of
    unknown outcome arrived (None: do not ask). The default pool starts its
    processes with ``spawn`` (each imports the caller's main module: guard a
    script's work with ``if __name__ == '__main__':``). ``on_change(manifest)``
    is called in the calling thread when the run begins and after every step
    recorded, e.g. to show progress summed over the shards.
    """
    source = _as_source(source)
    metadata_text = metadata_encode(base_metadata(metadata))
    uploader_kwargs = dict(uploader_kwargs or {})
    Uploader(**uploader_kwargs)  # a mistake in the keywords fails here, not in every worker
    workers = _positive(workers, 'workers')
    if window is None:  # one shard more than the workers, queued; the workers are the shards at work
        running, window = workers, workers + QUEUED_SHARDS
    else:
        running = window = _positive(window, 'window')
    lookup_kwargs: Dict[str, Any] = {'metadata_url': metadata_url, 'config': uploader_kwargs.get('config'),
                     'auth': uploader_kwargs.get('auth'), 'timeout': uploader_kwargs.get('timeout')}
    interval = DatasetLookup(**lookup_kwargs).config.poll_interval  # a bad URL fails here too
    if resolve_wait is not None:
        resolve_wait = seconds(resolve_wait, name='resolve_wait', zero=True)
    options = _Options(uploader_kwargs, shard_bundler_kwargs(bundler_kwargs, running), lookup_kwargs, wait,
                       wait_timeout, resolve_wait, interval, on_change)
    with ManifestLock(manifest_path), EntrySpool(source) as spool:
        own_executor = executor is None
        pool = default_executor(workers) if executor is None else executor
        try:
            if own_executor:
                start_processes(pool, workers)  # their start-up overlaps the planning pass
            manifest = _open_manifest(manifest_path, spool, metadata_text, max_bytes, max_files)
            return _Coordinator(manifest, spool.source(), metadata_text, pool, window, options).run()
        finally:
            if own_executor:
                pool.shutdown(wait=True, cancel_futures=True)


def _as_source(source: Any) -> DatasetSource:
    if isinstance(source, DatasetSource):
        return source
    if isinstance(source, (str, os.PathLike)):
        return DatasetSource.from_root(os.fspath(source))
    return DatasetSource.from_file_data(source)


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError('{} must be an int >= 1, not {!r}'.format(name, value))
    return value
