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
- ``sent``: Ingest answered with a job id.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional

from pacifica.uploader import IngestJobFailedError, Uploader
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.metadata import metadata_decode

__all__ = ['SendTask', 'Outcome', 'send_shard', 'follow_job', 'SENT', 'NOT_SENT', 'UNKNOWN', 'INGESTED',
           'JOB_FAILED', 'NOT_FOLLOWED']

SENT, NOT_SENT, UNKNOWN = 'sent', 'not_sent', 'unknown'
INGESTED, JOB_FAILED, NOT_FOLLOWED = 'ingested', 'job_failed', 'not_followed'


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
        bundler = Bundler(metadata_decode(task.metadata_text), task.entries, **task.bundler_kwargs)
        watched = _WatchedBundle(bundler)
        job_id = Uploader(**task.uploader_kwargs).upload_bundle(watched)
    except Exception as err:  # noqa: BLE001 - every failure becomes an Outcome the coordinator records
        return Outcome(task.part, _failure_kind(watched), None, describe(err))
    return Outcome(task.part, SENT, job_id)


def _failure_kind(watched: Optional[_WatchedBundle]) -> str:
    """``not_sent`` when the body cannot have reached Ingest whole, else ``unknown``.

    Ingest reads a body of the announced Content-Length; a body cut short
    (the Bundler or the Uploader refused, a file changed, the connection
    broke mid-body) leaves it no bundle to ingest.
    """
    return UNKNOWN if watched is not None and watched.may_be_whole else NOT_SENT


def follow_job(uploader_kwargs: Dict[str, Any], part: int, job_id: Any, timeout: Optional[float]) -> Outcome:
    """Wait for the shard's ingest job: ``ingested`` (the job id is the transaction id), ``job_failed``,
    or ``not_followed`` when the wait itself failed (the job may still end well: follow it again later)."""
    try:
        Uploader(**uploader_kwargs).wait(job_id, timeout=timeout)
    except IngestJobFailedError as err:
        return Outcome(part, JOB_FAILED, job_id, describe(err))
    except Exception as err:  # noqa: BLE001 - a wait that failed leaves the job to be followed again
        return Outcome(part, NOT_FOLLOWED, job_id, describe(err))
    return Outcome(part, INGESTED, job_id)
