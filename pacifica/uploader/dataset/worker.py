"""The work units of a sharded upload: top-level functions whose arguments and results pickle.

They run wherever the executor puts them (a pool process, a Dask worker), so
they take plain data (entries with ``path``, the shard's metadata as
``metadata.txt`` text, the Uploader's keywords) and never raise: every
outcome comes back as an :class:`Outcome`, since not every library exception
survives the trip between processes.

What a failure means for the shard is decided here, where it is known how
far the upload got (:func:`send_shard`):

- ``not_sent``: the upload failed before the body's last byte was handed to
  the connection (a file missing or changed, the server unreachable): Ingest
  cannot hold the whole bundle, so nothing was ingested;
- ``unknown``: every byte may have gone out and no job id came back (the
  reply was lost): the shard may have reached Ingest;
- ``sent``: Ingest answered with a job id (and the Files records the bundle
  carried come back too, for the check after ingest).

:func:`follow_job` waits for a job and then checks the transaction against
what was sent (:mod:`pacifica._client.ingestcheck`); :func:`resolve_part`
asks the metadata service whether a shard whose outcome is unknown arrived.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence

from pacifica._client.datasets import DatasetLookup
from pacifica._client.ingestcheck import SentFile, sent_files, verify_transaction
from pacifica.uploader import IngestJobFailedError, IngestVerificationError, PacificaError, Uploader
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.metadata import metadata_decode

__all__ = ['SendTask', 'Outcome', 'send_shard', 'follow_job', 'resolve_part', 'planned_files', 'SENT', 'NOT_SENT',
           'UNKNOWN', 'INGESTED', 'JOB_FAILED', 'NOT_FOLLOWED', 'FOUND', 'NOT_FOUND', 'UNRESOLVED']

SENT, NOT_SENT, UNKNOWN = 'sent', 'not_sent', 'unknown'
INGESTED, JOB_FAILED, NOT_FOLLOWED = 'ingested', 'job_failed', 'not_followed'
#: What :func:`resolve_part` learnt: the shard's transaction (its id in ``job_id``), none after the wait,
#: or no answer from the servers.
FOUND, NOT_FOUND, UNRESOLVED = 'found', 'not_found', 'unresolved'


#: The checks after ingest of one process, one at a time: each holds a shard's decoded ``/files`` answer,
#: several times the size of its JSON, and decoding and comparing hold the GIL, so more at once gain no speed.
_ONE_CHECK_AT_A_TIME = threading.Lock()


class SendTask(NamedTuple):
    """Everything one shard's upload needs, as plain data."""

    part: int
    #: The shard's metadata.txt text: the dataset's metadata and its two key/values (see .metadata).
    metadata_text: str
    entries: List[Mapping[str, Any]]
    uploader_kwargs: Dict[str, Any]
    bundler_kwargs: Dict[str, Any]

    def __repr__(self) -> str:
        # The Uploader's keywords may hold credentials (auth): a task never shows them.
        return 'SendTask(part={}, files={})'.format(self.part, len(self.entries))


class Outcome(NamedTuple):
    """What became of a shard's step; ``error`` is the exception's text (no credentials: the library redacts)."""

    part: int
    kind: str
    job_id: Any = None
    error: str = ''
    #: ``sent``: the Files records the bundle carried, for the check after ingest.
    files: Optional[List[SentFile]] = None




class _WatchedBundle:
    """The Bundler as upload_bundle sees it, counting the bytes handed on to the connection."""

    def __init__(self, bundler: Bundler) -> None:
        self._bundler = bundler
        self.length: Optional[int] = None
        self.handed = 0

    def content_length(self) -> int:
        self.length = self._bundler.content_length()
        return self.length

    def iter_bytes(self, callback: Optional[Callable[[float], Any]] = None) -> Iterator[Any]:
        for chunk in self._bundler.iter_bytes(callback=callback):
            self.handed += memoryview(chunk).nbytes
            yield chunk

    @property
    def may_be_whole(self) -> bool:
        """Whether every byte of the body was handed on: only then can Ingest hold the whole bundle."""
        return self.length is not None and self.handed >= self.length


def describe(error: BaseException) -> str:
    """An exception as one line of text for the manifest and the report."""
    return '{}: {}'.format(type(error).__name__, error)


def send_shard(task: SendTask) -> Outcome:
    """Bundle the shard and stream it to Ingest in one pass: the job id, or what went wrong and how far."""
    watched: Optional[_WatchedBundle] = None
    try:
        # The check after ingest needs the Files records, not md_obj: the bundler keeps only the digests.
        bundler = Bundler(metadata_decode(task.metadata_text), task.entries,
                          **dict(task.bundler_kwargs, append_file_objs=False))
        watched = _WatchedBundle(bundler)
        job_id = Uploader(**task.uploader_kwargs).upload_bundle(watched)
    except Exception as err:  # noqa: BLE001 - every failure becomes an Outcome the coordinator records
        return Outcome(task.part, _failure_kind(watched), None, describe(err))
    return Outcome(task.part, SENT, job_id, files=sent_files(bundler.file_objs()))


def _failure_kind(watched: Optional[_WatchedBundle]) -> str:
    """``not_sent`` when the body cannot have reached Ingest whole, else ``unknown``.

    Ingest reads a body of the announced Content-Length; a body cut short
    (the Bundler or the Uploader refused, a file changed, the connection
    broke mid-body) leaves it no bundle to ingest.
    """
    return UNKNOWN if watched is not None and watched.may_be_whole else NOT_SENT


def follow_job(uploader_kwargs: Dict[str, Any], part: int, job_id: Any, timeout: Optional[float],
               expected: Optional[List[SentFile]] = None, lookup_kwargs: Optional[Dict[str, Any]] = None) -> Outcome:
    """Wait for the shard's ingest job, then check its transaction against ``expected``.

    ``expected`` is the bundle's Files records (:attr:`Outcome.files`), or
    :func:`planned_files` (names and sizes) when they are not at hand; a
    transaction holding a file twice, or one not sent, differs too.

    ``ingested`` (the job id is the transaction id, and the transaction holds
    what was sent), ``job_failed`` (the job ended FAILED, or the transaction
    differs: IngestVerificationError naming the files), or ``not_followed``
    when the wait or the check could not be done (follow it again later).
    """
    try:
        Uploader(**uploader_kwargs).wait(job_id, timeout=timeout)
        if expected is not None:
            with _ONE_CHECK_AT_A_TIME:
                verify_transaction(DatasetLookup(**(lookup_kwargs or {})), job_id, expected)
    except (IngestJobFailedError, IngestVerificationError) as err:
        return Outcome(part, JOB_FAILED, job_id, describe(err))
    except Exception as err:  # noqa: BLE001 - a wait that failed leaves the job to be followed again
        return Outcome(part, NOT_FOLLOWED, job_id, describe(err))
    return Outcome(part, INGESTED, job_id)


def planned_files(entries: Sequence[Mapping[str, Any]]) -> List[SentFile]:
    """What a shard's transaction must hold when its Files records are not at hand (a shard sent by an
    earlier run, or found on the server): each entry's path, as the Bundler records it, and size; no hash."""
    found = []
    for entry in entries:
        directory, _, base = str(entry['name']).rpartition('/')
        subdir = Bundler._strip_subdir(directory)
        found.append(SentFile('{}/{}'.format(subdir, base) if subdir else base, int(entry['size']), '', ''))
    return found


def resolve_part(lookup_kwargs: Dict[str, Any], dataset_id: str, part: int, parts: int, wait: float,
                 interval: float, stop: Optional[threading.Event] = None) -> Outcome:
    """Whether the shard reached the servers: ``found`` (``job_id`` = its transaction id), ``not_found``
    after ``wait`` seconds of asking every ``interval``, or ``unresolved`` when the servers did not answer.

    Waiting matters: a bundle that reached Ingest becomes a transaction only
    when its job ends, so ``wait`` must cover the longest ingest job. A set
    ``stop`` (the run is ending) ends the wait at once, unresolved.
    """
    lookup = DatasetLookup(**lookup_kwargs)
    deadline = time.monotonic() + wait
    while True:
        try:
            found: Sequence[int] = lookup.transactions_of_part(dataset_id, part, parts)
            error = None
        except PacificaError as err:
            found, error = (), err
        if found:
            note = '' if len(found) == 1 else 'part {} is in transactions {}'.format(part, list(found))
            return Outcome(part, FOUND, found[0], note)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if error is not None:
                return Outcome(part, UNRESOLVED, None, 'cannot ask the metadata server: ' + describe(error))
            return Outcome(part, NOT_FOUND, None, 'no transaction of part {} after {:g} s'.format(part, wait))
        pause = min(interval, remaining)
        if stop is None:
            time.sleep(pause)
        elif stop.wait(pause):
            return Outcome(part, UNRESOLVED, None, 'the run ended while the servers were asked')
