"""Upload a dataset as shards on any :class:`concurrent.futures.Executor`, resumable from its manifest.

::

    report = upload_dataset(DatasetSource.from_root('run42'), metadata, 'run42.manifest.json',
                            max_bytes=2 << 30, workers=4,
                            uploader_kwargs={'upload_url': ..., 'status_url': ...})
    report.complete, report.unknown

The coordinating process plans the shards (:mod:`.plan`), writes the
manifest (:mod:`.manifest`), then streams the entries a second time and
hands each shard to the executor as a :func:`~.worker.send_shard` work unit:
by default a process pool of ``workers`` processes, or any Executor given
(``distributed.Client(address).get_executor()`` for a cluster, the files then
on a shared file system). It records every result in the manifest as it
comes in, then follows each job (:func:`~.worker.follow_job`) in threads of
its own, since polling needs no core.

Exactly once: a shard is marked ``sending`` before it is submitted, so a
crash can leave a shard whose outcome is unknown, never one sent twice. At
most ``window`` shards are submitted and unfinished at a time (default
``workers``): that bounds the shards a crash can leave unknown, and the
entries held in memory. Run again with the same manifest, it sends only the
shards never sent or definitely failed, follows the jobs not yet followed,
and reports the unknown ones without sending them again.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import multiprocessing
import os
import pickle
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from pacifica.uploader import ConfigurationError, TransferConfig, Uploader
from pacifica.uploader.metadata import metadata_decode, metadata_encode

from .manifest import FAILED, INGESTED, PLANNED, SENDING, SENT, Manifest, ManifestError, ManifestLock
from .metadata import base_metadata, new_dataset_id, shard_metadata
from .plan import DatasetSource, ShardPlan, cut, plan
from .worker import INGESTED as JOB_INGESTED
from .worker import JOB_FAILED, NOT_SENT, UNKNOWN, Outcome, SendTask, follow_job, send_shard
from .worker import SENT as WORK_SENT

__all__ = ['upload_dataset', 'RunReport']

#: Seconds each shard's ingest job is followed when ``wait_timeout`` is not given (as pacifica-upload --wait).
DEFAULT_WAIT_TIMEOUT = 3600.0


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
    #: Parts whose outcome is unknown (sending began, no job id came back): not sent again.
    unknown: Dict[int, str] = dataclasses.field(default_factory=dict)
    #: Parts sent whose job was not followed to its end (``wait=False`` or the wait failed).
    unfollowed: Dict[int, Any] = dataclasses.field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every part is ingested."""
        return len(self.ingested) == self.parts


def shard_bundler_kwargs(bundler_kwargs: Optional[Dict[str, Any]], window: int) -> Dict[str, Any]:
    """The Bundler keywords of every shard: the caller's, with read-ahead off when the shards fill the cores.

    The read-ahead process gains by using a second core (see
    :mod:`pacifica.uploader.bundler.readahead`); when ``window`` shards at
    once already occupy every core of this machine, it only competes with
    them. A ``config`` the caller gives is kept as it is.
    """
    kwargs = dict(bundler_kwargs or {})
    if 'config' not in kwargs and window >= (os.cpu_count() or 1):
        kwargs['config'] = TransferConfig(read_ahead=False)
    return kwargs


def _metadata_digest(text: str) -> str:
    return hashlib.sha256(text.encode('utf-8'), usedforsecurity=False).hexdigest()


def _default_executor(workers: int) -> cf.Executor:
    # spawn, not fork: the coordinator runs threads (the job followers), which a fork would copy mid-step.
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context('spawn'))


class _Coordinator:
    """One run over one manifest: submits, records and follows; the only writer of the manifest."""

    def __init__(self, manifest: Manifest, source: DatasetSource, metadata_text: str, executor: cf.Executor,
                 window: int, uploader_kwargs: Dict[str, Any], bundler_kwargs: Dict[str, Any],
                 wait_timeout: Optional[float], on_change: Optional[Callable[[Manifest], Any]] = None) -> None:
        self.manifest = manifest
        self.source = source
        self.metadata_text = metadata_text
        self.executor = executor
        self.window = window
        self.uploader_kwargs = uploader_kwargs
        self.bundler_kwargs = bundler_kwargs
        self.wait_timeout = wait_timeout
        self.followers: Optional[cf.ThreadPoolExecutor] = None
        self.sending: Dict[cf.Future, int] = {}
        self.following: Dict[cf.Future, int] = {}
        self.report = RunReport(manifest.dataset_id, manifest.path, len(manifest.shards))
        self.on_change = on_change

    def _changed(self) -> None:
        """Tell the caller (a progress display) the manifest moved on; called in the coordinating thread."""
        if self.on_change is not None:
            self.on_change(self.manifest)

    def run(self, wait: bool) -> RunReport:
        if wait:
            self.followers = cf.ThreadPoolExecutor(max_workers=self.window, thread_name_prefix='pacifica-follow')
        self._changed()
        try:
            for record in self.manifest.in_state(SENT):
                self._follow(record.part, record.job_id)
            wanted = {record.part for record in self.manifest.in_state(PLANNED, FAILED)}
            for shard, entries in cut(self.source(), self.manifest.plans(), lambda shard: shard.part in wanted):
                while len(self.sending) >= self.window:
                    self._collect()
                self._submit(shard, entries)
                self._changed()
            while self.sending or self.following:
                self._collect()
        finally:
            self._abandon()
        return self._final_report()

    def _task(self, shard: ShardPlan, entries: List[Mapping[str, Any]]) -> SendTask:
        text = metadata_encode(shard_metadata(metadata_decode(self.metadata_text), self.manifest.dataset_id, shard.part,
                                              len(self.manifest.shards)))
        return SendTask(shard.part, text, entries, self.uploader_kwargs, self.bundler_kwargs)

    def _submit(self, shard: ShardPlan, entries: List[Mapping[str, Any]]) -> None:
        task = self._task(shard, entries)
        if not isinstance(self.executor, cf.ThreadPoolExecutor):
            _check_picklable(task)  # else the executor would fail it after it was marked sending
        self.manifest.mark_sending(shard.part)
        self.sending[self.executor.submit(send_shard, task)] = shard.part

    def _follow(self, part: int, job_id: Any) -> None:
        if self.followers is None:
            return
        future = self.followers.submit(follow_job, self.uploader_kwargs, part, job_id, self.wait_timeout)
        self.following[future] = part

    def _collect(self) -> None:
        """Record every step that has ended (at least one)."""
        done, _ = cf.wait(list(self.sending) + list(self.following), return_when=cf.FIRST_COMPLETED)
        for future in done:
            if future in self.sending:
                part = self.sending.pop(future)
                self._sent(part, _outcome(future, part))
            else:
                part = self.following.pop(future)
                self._followed(_outcome(future, part))
        self._changed()

    def _sent(self, part: int, outcome: Outcome) -> None:
        if outcome.kind == WORK_SENT:
            self.manifest.mark_sent(part, outcome.job_id)
            self.report.sent.append(part)
            self._follow(part, outcome.job_id)
        elif outcome.kind == NOT_SENT:
            self.manifest.mark_failed(part, outcome.error)
        else:
            self.manifest.note_error(part, outcome.error or 'the work unit ended without an answer')

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
        for future, part in list(self.sending.items()):
            if future.cancel():
                self.manifest.mark_failed(part, 'cancelled before it was sent')
            elif future.done():
                self._sent(part, _outcome(future, part))
        if self.followers is not None:
            self.followers.shutdown(wait=False, cancel_futures=True)

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


def _outcome(future: cf.Future, part: int) -> Outcome:
    """The work unit's Outcome; a work unit that died (its process killed, ...) left the step's outcome unknown."""
    try:
        return future.result()
    except BaseException as err:  # noqa: BLE001 - the executor's own failure: recorded, not raised
        return Outcome(part, UNKNOWN, None, 'the work unit did not answer: {}: {}'.format(type(err).__name__, err))


def _open_manifest(path: str, source: DatasetSource, metadata_text: str, max_bytes: Optional[int],
                   max_files: Optional[int]) -> Manifest:
    """The manifest at ``path``, planned now when it does not exist yet; checked against this run's arguments."""
    digest = _metadata_digest(metadata_text)
    if not os.path.lexists(path):
        return Manifest.create(path, new_dataset_id(), plan(source(), max_bytes, max_files), max_bytes, max_files,
                               metadata_digest=digest)
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
        for _ in cut(source(), manifest.plans(), lambda shard: False):
            pass  # a dataset that changed is refused before anything more is sent
    return manifest


def upload_dataset(source: Any, metadata: Iterable[Any], manifest_path: str, *, max_bytes: Optional[int] = None,
                   max_files: Optional[int] = None, workers: int = 2, executor: Optional[cf.Executor] = None,
                   window: Optional[int] = None, uploader_kwargs: Optional[Dict[str, Any]] = None,
                   bundler_kwargs: Optional[Dict[str, Any]] = None, wait: bool = True,
                   wait_timeout: Optional[float] = DEFAULT_WAIT_TIMEOUT,
                   on_change: Optional[Callable[[Manifest], Any]] = None) -> RunReport:
    """Upload ``source`` (a :class:`DatasetSource`, a folder, or a ``file_data`` list) in shards.

    ``metadata`` is the dataset's MetaData (without the dataset's key/values,
    added per shard). ``manifest_path`` is created and planned with
    ``max_bytes`` / ``max_files`` when it does not exist, else resumed.
    ``executor`` defaults to a process pool of ``workers`` processes, shut
    down at the end; a given one is left running. ``uploader_kwargs`` /
    ``bundler_kwargs`` are the keywords of each worker's Uploader and
    Bundler (they must pickle); without a Bundler ``config``, a shard's
    read-ahead process is left off when ``window`` shards fill the cores
    (:func:`shard_bundler_kwargs`). With ``wait``, every job is followed for up
    to ``wait_timeout`` seconds. The default pool starts its processes with
    ``spawn`` (each imports the caller's main module: guard a script's work
    with ``if __name__ == '__main__':``). ``on_change(manifest)`` is called
    in the calling thread when the run begins and after every step recorded,
    e.g. to show progress summed over the shards.
    """
    source = _as_source(source)
    metadata_text = metadata_encode(base_metadata(metadata))
    uploader_kwargs = dict(uploader_kwargs or {})
    Uploader(**uploader_kwargs)  # a mistake in the keywords fails here, not in every worker
    window = _positive(window if window is not None else workers, 'window' if window is not None else 'workers')
    with ManifestLock(manifest_path):
        manifest = _open_manifest(manifest_path, source, metadata_text, max_bytes, max_files)
        own_executor = executor is None
        pool = _default_executor(_positive(workers, 'workers')) if executor is None else executor
        try:
            coordinator = _Coordinator(manifest, source, metadata_text, pool, window, uploader_kwargs,
                                       shard_bundler_kwargs(bundler_kwargs, window), wait_timeout, on_change)
            return coordinator.run(wait)
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
