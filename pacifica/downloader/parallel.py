"""Parallel downloads: one or many transactions as several carts at once, into one folder, verified.

The data path, above :class:`~.cartfetch.CartFetch` (which still owns each
cart's whole fetch):

1. The records' files are merged for one folder (:mod:`._cartplan`): two
   transactions putting different files at one path are refused.
2. Files already in the folder and verified (or parked, verified, by a
   failed earlier call) are set aside: a re-run fetches only what is missing.
3. The missing files are cut into carts by bytes and file count
   (:data:`DEFAULT_MAX_CART_BYTES`, :data:`DEFAULT_MAX_CART_FILES`).
4. Each cart runs :func:`run_cart` on an executor: threads by default
   (``workers``), or any :class:`concurrent.futures.Executor` (a Dask
   ``distributed.Client(...).get_executor()`` whose workers see the folder
   on a shared file system). At most ``workers`` carts are in flight, so
   receive buffers and cart lists are held for those only.
5. When every cart verified, the parked files take their names. If one cart
   fails, no new cart starts, those in flight finish, and the files that
   this call's carts placed are parked again under hidden names: nothing of
   a failed call looks complete, and the next call keeps every verified file.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence

from pacifica._client.config import TransferConfig
from pacifica._client.datasets import DatasetLookup, DatasetTransaction, check_dataset_id
from pacifica._client.exceptions import ConfigurationError
from pacifica._client.rules import is_whole_number, seconds

from ._cartplan import (
    DEFAULT_MAX_CART_BYTES, DEFAULT_MAX_CART_FILES, check_limit, merge_transactions, split_carts, total_size,
)
from ._extract import ProgressCallback
from ._records import FileEntry
from ._target import VERIFIED_SUFFIX, Target, scan_existing
from .cartapi import CartAPI
from .cartfetch import CartFetch
from .downloader import _filename_parts, _location
from .policy import check_transaction_id, fetch_transaction

LOGGER = logging.getLogger(__name__)

#: Carts in flight at once by default.
DEFAULT_WORKERS = 4


class CartJob:
    """Everything one cart's fetch needs, picklable for executors in other processes.

    Its ``repr`` leaves out ``auth`` (an executor may log its tasks).
    """

    __slots__ = ('number', 'cart_api_url', 'auth', 'config', 'extra_args', 'location', 'filename', 'entries',
                 'timeout', 'delete_cart')

    def __init__(self, number: int, cart_api: CartAPI, location: str, filename: str, entries: List[FileEntry],
                 timeout: float, delete_cart: bool) -> None:
        self.number = number
        self.cart_api_url = cart_api.cart_api_url
        self.auth: Dict[str, Any] = dict(cart_api.auth)
        self.config: TransferConfig = cart_api.config
        self.extra_args: Dict[str, Any] = dict(cart_api.extra_args)
        self.location = location
        self.filename = filename
        self.entries = entries
        self.timeout = timeout
        self.delete_cart = delete_cart

    def __getstate__(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        return '<CartJob {} of {} file(s) into {}>'.format(self.number, len(self.entries), self.location)

    @property
    def size(self) -> int:
        """The cart's bytes (files without a recorded size count 0)."""
        return sum(entry.size or 0 for entry in self.entries)


def run_cart(job: CartJob, progress: Optional[ProgressCallback] = None) -> int:
    """Fetch one cart into its folder with a :class:`CartFetch` of its own; returns the job's number.

    A module-level function, so that process and Dask executors can run it.
    """
    cart_api = CartAPI(job.cart_api_url, auth=job.auth, config=job.config, extra_args=job.extra_args)
    target = Target(job.location, _filename_parts(job.filename))
    CartFetch(cart_api, target, job.filename, progress).fetch(job.entries, job.timeout, job.delete_cart)
    return job.number


class ParallelResult(NamedTuple):
    """What a parallel download did."""

    #: Every file of the records, ``<location>/<filename>/<subdir>/<name>``, in record order.
    paths: List[str]
    #: Carts fetched by this call.
    carts: int
    #: Files fetched by this call.
    fetched: int
    #: Files that were already there, verified (a resumed download).
    present: int


class _SummedProgress:
    """The caller's ``(bytes_done, bytes_total)`` callback, summed over carts that report from many threads."""

    def __init__(self, callback: Optional[ProgressCallback], total: Optional[int]) -> None:
        self._callback = callback
        self._total = total
        self._lock = threading.Lock()
        self._done: Dict[int, int] = {}

    def _set(self, number: int, done: int) -> None:
        if self._callback is None:
            return
        with self._lock:
            self._done[number] = done
            self._callback(sum(self._done.values()), self._total)

    def for_cart(self, job: CartJob) -> ProgressCallback:
        """The callback one cart's CartFetch reports to (threads only: it must share this process)."""
        return lambda done, _total: self._set(job.number, done)

    def start(self) -> None:
        self._set(0, 0)

    def cart_done(self, job: CartJob) -> None:
        self._set(job.number, job.size)


def _check_workers(workers: Any) -> int:
    if not is_whole_number(workers) or workers < 1:
        raise ConfigurationError('workers must be a whole number >= 1, not {!r}'.format(workers))
    return int(workers)


def download_parallel(location: Any, records: Iterable[Any], *, cart_api: Optional[CartAPI] = None,
                      filename: str = 'data', workers: int = DEFAULT_WORKERS, executor: Optional[Executor] = None,
                      max_cart_bytes: Optional[int] = DEFAULT_MAX_CART_BYTES,
                      max_cart_files: Optional[int] = DEFAULT_MAX_CART_FILES, timeout: Any = 120,
                      delete_cart: bool = False, callback: Optional[ProgressCallback] = None) -> ParallelResult:
    """Download the files of every transaction record in ``records`` into ``<location>/<filename>``, many carts at once.

    ``records`` are policy transaction records (:func:`fetch_transaction`).
    ``cart_api`` is the cartd client whose URL, ``auth``, ``config`` and
    ``extra_args`` every cart uses (each cart gets a client of its own;
    default: ``CartAPI()`` from the environment). ``workers`` carts run at
    once, on threads, or on ``executor`` when one is given (the caller owns
    it). ``max_cart_bytes`` and ``max_cart_files`` cut the carts (None: no
    such limit). ``timeout`` and ``delete_cart`` are the download methods'
    options, per cart; ``callback`` gets ``(bytes_done, bytes_total)`` over
    the files this call fetches (live on threads, per finished cart on other
    executors). Raises RecordError for unusable records or two transactions
    with different files at one path, and the first cart's error when a
    cart fails (see the module's description for what is left on disk).
    """
    root = _location(location)
    target = Target(root, _filename_parts(filename))
    workers = _check_workers(workers)
    check_limit(max_cart_bytes, 'max_cart_bytes')
    check_limit(max_cart_files, 'max_cart_files')
    timeout = seconds(timeout, name='timeout', text=True)
    if callback is not None and not callable(callback):
        raise ConfigurationError('callback must be callable, not {!r}'.format(callback))
    cart_api = cart_api if cart_api is not None else CartAPI()
    entries = merge_transactions(records)
    existing = scan_existing(target, entries)
    carts = split_carts(existing.missing, max_cart_bytes, max_cart_files)
    jobs = [CartJob(number, cart_api, root, filename, cart, timeout, delete_cart)
            for number, cart in enumerate(carts, 1)]
    LOGGER.info('%d file(s) to fetch in %d cart(s), %d already verified under %s', len(existing.missing),
                len(jobs), len(entries) - len(existing.missing), target.root)
    progress = _SummedProgress(callback, total_size(existing.missing))
    progress.start()
    if executor is None:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix='pacifica-cart') as pool:
            _run_carts(pool, jobs, workers, progress, live=True, target=target)
    else:
        _run_carts(executor, jobs, workers, progress, live=isinstance(executor, ThreadPoolExecutor), target=target)
    CartFetch(cart_api, target, filename).fetch(existing.parked, timeout)  # no cart: puts the parked files in place
    return ParallelResult([target.path(entry.parts) for entry in entries], len(jobs), len(existing.missing),
                          len(entries) - len(existing.missing))


def _run_carts(executor: Executor, jobs: Sequence[CartJob], window: int, progress: _SummedProgress, live: bool,
               target: Target) -> None:
    """Run ``jobs`` with at most ``window`` in flight; on the first failure start no more, then undo and raise."""
    waiting: Iterator[CartJob] = iter(jobs)
    in_flight: Dict['Future[int]', CartJob] = {}
    placed: List[CartJob] = []
    failures: List[BaseException] = []

    def submit_next() -> None:
        job = next(waiting, None)
        if job is not None:
            in_flight[executor.submit(run_cart, job, progress.for_cart(job) if live else None)] = job

    def collect(finished: Iterable['Future[int]']) -> None:
        for future in finished:
            job = in_flight.pop(future)
            if future.cancelled():
                continue
            error = future.exception()
            if error is not None:
                LOGGER.warning('cart %d of %d failed: %s', job.number, len(jobs), error)
                failures.append(error)
                continue
            placed.append(job)
            progress.cart_done(job)
            if not failures:
                submit_next()

    try:
        for _ in range(window):
            submit_next()
        while in_flight:
            collect(wait(in_flight, return_when=FIRST_COMPLETED)[0])
    except BaseException:  # Ctrl-C, or the executor broke: start nothing more, let the carts in flight end
        waiting = iter(())
        for future in in_flight:
            future.cancel()
        collect(wait(in_flight)[0])
        _park(target, placed)
        raise
    if failures:
        _park(target, placed)
        raise failures[0]


def _park(target: Target, jobs: Iterable[CartJob]) -> None:
    """Give the files of carts that verified their hidden parked names again: a failed call looks incomplete."""
    for job in jobs:
        for entry in job.entries:
            try:
                os.replace(target.path(entry.parts), target.hidden_path(entry.parts, VERIFIED_SUFFIX))
            except OSError as err:  # gone or unwritable: the next call fetches or re-checks it anyway
                LOGGER.warning('could not park %s after the failed download: %s', target.path(entry.parts), err)


def fetch_records(transaction_ids: Iterable[Any], cart_api: CartAPI, policy_url: Optional[str] = None
                  ) -> List[Dict[str, Any]]:
    """The policy records of ``transaction_ids``, read with the cart client's ``auth`` and ``config``."""
    return [fetch_transaction(check_transaction_id(tid), policy_url=policy_url, auth=cart_api.auth,
                              config=cart_api.config) for tid in transaction_ids]


def download_transactions(location: Any, transaction_ids: Iterable[Any], *, policy_url: Optional[str] = None,
                          cart_api: Optional[CartAPI] = None, **options: Any) -> ParallelResult:
    """:func:`download_parallel` of the transactions ``transaction_ids``, their records read from policy first."""
    cart_api = cart_api if cart_api is not None else CartAPI()
    return download_parallel(location, fetch_records(transaction_ids, cart_api, policy_url), cart_api=cart_api,
                             **options)


def manifest_transactions(path: Any) -> List[int]:
    """The transaction ids of a finished sharded upload, read from its manifest, in part order.

    Raises ConfigurationError when the manifest cannot be read or a part has
    no transaction yet (finish the upload first: run it again with the same
    manifest).
    """
    from pacifica.uploader.dataset.manifest import INGESTED, Manifest, ManifestError  # the manifest's one reader
    try:
        manifest = Manifest.load(os.fspath(path))
    except ManifestError as err:
        raise ConfigurationError(str(err)) from None
    unfinished = [str(record.part) for record in manifest.shards if record.state != INGESTED]
    if unfinished:
        raise ConfigurationError('the upload of dataset {} is not finished: part(s) {} of {} have no transaction '
                                 'yet; run the upload again with the same manifest first'.format(
                                     manifest.dataset_id, ', '.join(unfinished), len(manifest.shards)))
    return [check_transaction_id(record.transaction_id) for record in manifest.shards]


def dataset_transactions(dataset_id: str, lookup: Optional[DatasetLookup] = None) -> List[int]:
    """The transaction ids of the sharded dataset ``dataset_id`` as the metadata service knows them, in part order.

    ``lookup`` is the :class:`~pacifica._client.datasets.DatasetLookup` to
    ask (default: from ``METADATA_PROTO``/``ADDR``/``PORT``). Raises
    ConfigurationError for an id that is no UUID, a dataset no transaction
    carries, and one whose parts are not all there exactly once (an upload
    still running or unfinished, or a part ingested twice).
    """
    check_dataset_id(dataset_id)
    found = (lookup if lookup is not None else DatasetLookup()).transactions(dataset_id)
    if not found:
        raise ConfigurationError('no transaction on the server belongs to dataset {}'.format(dataset_id))
    problem = _parts_problem(found)
    if problem:
        raise ConfigurationError('dataset {} is not complete on the server: {}'.format(dataset_id, problem))
    return [item.transaction_id for item in sorted(found, key=lambda item: item.part or 0)]


def _parts_problem(found: Sequence[DatasetTransaction]) -> Optional[str]:
    """What is wrong with a dataset's part tags (None: parts 1 to N, each once)."""
    untagged = [str(item.transaction_id) for item in found if item.part is None]
    if untagged:
        return 'transaction(s) {} carry no valid part tag'.format(', '.join(untagged))
    counts = {item.parts or 0 for item in found}
    if len(counts) != 1:
        return 'its transactions disagree on the number of parts ({})'.format(', '.join(map(str, sorted(counts))))
    parts = counts.pop() or 0
    by_part: Dict[int, List[int]] = {}
    for item in found:
        by_part.setdefault(item.part or 0, []).append(item.transaction_id)
    twice = ['part {} in transactions {}'.format(part, ', '.join(map(str, ids)))
             for part, ids in sorted(by_part.items()) if len(ids) > 1]
    missing = [str(part) for part in range(1, parts + 1) if part not in by_part]
    if twice:
        return 'ingested twice: {}'.format('; '.join(twice))
    if missing:
        return 'part(s) {} of {} have no transaction (yet)'.format(', '.join(missing), parts)
    return None


__all__ = ['download_parallel', 'download_transactions', 'manifest_transactions', 'dataset_transactions',
           'fetch_records', 'run_cart',
           'CartJob', 'ParallelResult', 'DEFAULT_WORKERS', 'DEFAULT_MAX_CART_BYTES', 'DEFAULT_MAX_CART_FILES']
