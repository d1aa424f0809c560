"""The dataset manifest: what each shard holds and how far it got, on disk after every step.

A sharded upload must survive the death of the process that runs it without
ingesting any shard twice. So every change of a shard's state is written to
a JSON file before the next step may depend on it, atomically (a temporary
file in the same folder, fsync, :func:`os.replace`, fsync of the folder): a
crash leaves the old manifest or the new one, never half of one. (The
coordinator saves outcomes that arrive together in one write, at the latest
with the next shard's ``sending``: :meth:`Manifest.deferring` says why that
is safe.)

Each shard moves through::

    planned -> sending -> sent (job id) -> ingested (transaction id)
                  |            |
                  +-> failed <-+          failed -> sending (sent again)

``sending`` is written *before* the first byte leaves. A shard found in
``sending`` has no job id: it may have reached Ingest or not, and its outcome
is *unknown* (:meth:`Manifest.unknown`). Nothing here sends it again; only an
answer from the servers may move it on. ``failed`` is for definite failures
(the bundle never reached Ingest whole, or its ingest job ended FAILED),
which may be sent again. Transitions not drawn above raise
:class:`TransitionError`; :class:`ManifestLock` keeps a second run away::

    manifest = Manifest.create(path, dataset_id, shards, max_bytes=..., max_files=...)
    manifest.mark_sending(1); manifest.mark_sent(1, job_id); manifest.mark_ingested(1, job_id)
    again = Manifest.load(path)
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from types import TracebackType
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Sequence, Type

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one run at a time is then the caller's duty
    fcntl = None  # type: ignore[assignment]

from pacifica.uploader import PacificaError

from .metadata import check_dataset_id
from .plan import ShardPlan

__all__ = ['Manifest', 'ShardRecord', 'ManifestLock', 'ManifestError', 'TransitionError', 'write_atomically',
           'remove_stale_temporaries', 'PLANNED', 'SENDING', 'SENT', 'INGESTED', 'FAILED', 'STATES']

FORMAT = 'pacifica-dataset-manifest'
VERSION = 1
PLANNED, SENDING, SENT, INGESTED, FAILED = 'planned', 'sending', 'sent', 'ingested', 'failed'
STATES = (PLANNED, SENDING, SENT, INGESTED, FAILED)
#: The moves a shard may make; anything else is a bug or a second writer.
NEXT_STATES: Dict[str, frozenset] = {
    PLANNED: frozenset((SENDING,)),
    SENDING: frozenset((SENT, FAILED)),
    SENT: frozenset((INGESTED, FAILED)),
    INGESTED: frozenset(),
    FAILED: frozenset((SENDING,)),
}
_PLAN_FIELDS = ShardPlan._fields
_ERROR_LIMIT = 2000
#: How write_atomically's temporary files end, and the characters mkstemp puts between prefix and suffix.
_TEMPORARY_SUFFIX = '.tmp'
_TEMPORARY_CHARACTERS = frozenset('abcdefghijklmnopqrstuvwxyz0123456789_')


class ManifestError(PacificaError, ValueError):
    """The manifest cannot be read, does not describe this dataset, or is in use."""


class TransitionError(ManifestError):
    """A shard was asked to make a move its state does not allow."""


class ShardRecord:
    """One shard as the manifest keeps it: its plan, state, job and transaction ids, last error."""

    __slots__ = ('plan', 'state', 'job_id', 'transaction_id', 'error')

    def __init__(self, plan: ShardPlan, state: str = PLANNED, job_id: Any = None, transaction_id: Any = None,
                 error: Optional[str] = None) -> None:
        self.plan = plan
        self.state = state
        self.job_id = job_id
        self.transaction_id = transaction_id
        self.error = error

    @property
    def part(self) -> int:
        return self.plan.part

    @property
    def outcome_unknown(self) -> bool:
        """Sending began and no job id came back: it may or may not have reached Ingest."""
        return self.state == SENDING

    def as_json(self) -> Dict[str, Any]:
        doc: Dict[str, Any] = dict(zip(_PLAN_FIELDS, self.plan))
        doc.update(state=self.state, job_id=self.job_id, transaction_id=self.transaction_id, error=self.error)
        return doc

    @classmethod
    def from_json(cls, doc: Any, where: str) -> 'ShardRecord':
        if not isinstance(doc, dict):
            raise ManifestError('{}: a shard is a JSON object, not {!r}'.format(where, doc))
        try:
            plan = ShardPlan(**{field: doc[field] for field in _PLAN_FIELDS})
        except KeyError as missing:
            raise ManifestError('{}: a shard without {}'.format(where, missing)) from None
        record = cls(plan, str(doc.get('state')), doc.get('job_id'), doc.get('transaction_id'), doc.get('error'))
        record.check(where)
        return record

    def check(self, where: str) -> None:
        """ManifestError unless the fields agree with each other and with the state."""
        plan = self.plan
        numbers = (plan.part, plan.start, plan.stop, plan.size)
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in numbers) or plan.stop <= plan.start:
            raise ManifestError('{}: part {!r} has impossible numbers'.format(where, plan.part))
        if self.state not in STATES:
            raise ManifestError('{}: part {} has unknown state {!r}'.format(where, plan.part, self.state))
        has_job = self.state in (SENT, INGESTED) or (self.state == FAILED and self.job_id is not None)
        if has_job != (self.job_id is not None) or (self.state == INGESTED) != (self.transaction_id is not None):
            raise ManifestError('{}: part {} in state {} with job id {!r} and transaction id {!r}'.format(
                where, plan.part, self.state, self.job_id, self.transaction_id))


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows cannot open a folder for this)."""
    if os.name != 'posix':
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _temporary_prefix(path: str) -> str:
    return '.{}.'.format(os.path.basename(path))


def write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old file or the new one, whole."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=_TEMPORARY_SUFFIX, dir=folder)
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def remove_stale_temporaries(path: str) -> List[str]:
    """Delete what :func:`write_atomically` of ``path`` left behind when its process was killed; their names.

    Only regular files named exactly as ``mkstemp`` names this path's
    temporaries (``.<name>.`` + eight of its characters + ``.tmp``) go, so
    nothing a person put there is touched. Call it only while no other
    writer can be mid-save: under :class:`ManifestLock`.
    """
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _temporary_prefix(path)
    removed: List[str] = []
    try:
        names = os.listdir(folder)
    except OSError:  # a leftover is harmless: never fail a run over one
        return removed
    for name in names:
        middle = name[len(prefix):-len(_TEMPORARY_SUFFIX)]
        if (not name.startswith(prefix) or not name.endswith(_TEMPORARY_SUFFIX) or len(middle) != 8
                or not set(middle) <= _TEMPORARY_CHARACTERS):
            continue
        candidate = os.path.join(folder, name)
        try:
            if stat.S_ISREG(os.lstat(candidate).st_mode):
                os.unlink(candidate)
                removed.append(name)
        except OSError:
            pass
    return removed


class ManifestLock:
    """One run at a time per manifest: an exclusive lock on ``<manifest>.lock`` while held.

    Two runs writing one manifest would each send the shards the other has
    not recorded yet. The lock is the operating system's (``flock``), so it
    is released when its process dies, SIGKILL included; the next holder
    then clears the temporary file such a death may leave mid-save
    (:func:`remove_stale_temporaries`).
    """

    def __init__(self, manifest_path: str) -> None:
        self.path = manifest_path + '.lock'
        self._handle: Optional[BinaryIO] = None

    def __enter__(self) -> 'ManifestLock':
        handle = open(self.path, 'ab')
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise ManifestError('another run is using the manifest {} (it holds {})'.format(
                    self.path[:-len('.lock')], self.path)) from None
            remove_stale_temporaries(self.path[:-len('.lock')])  # a killed run's half-saved manifest
        self._handle = handle
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the lock
            self._handle = None


class Manifest:
    """A dataset's shards and their states, saved to ``path`` at every change."""

    def __init__(self, path: str, dataset_id: str, shards: Sequence[ShardRecord], max_bytes: Optional[int] = None,
                 max_files: Optional[int] = None, metadata_digest: Optional[str] = None) -> None:
        self.path = path
        self.dataset_id = check_dataset_id(dataset_id)
        self.max_bytes = max_bytes
        self.max_files = max_files
        #: A digest of the dataset's metadata, so a resumed run cannot give its shards other metadata.
        self.metadata_digest = metadata_digest
        self.shards: List[ShardRecord] = list(shards)
        self._check_parts()
        self._deferring = 0
        self._unsaved = False

    def _check_parts(self) -> None:
        if not self.shards:
            raise ManifestError('{}: a manifest holds at least one shard'.format(self.path))
        position = 0
        for number, record in enumerate(self.shards, 1):
            if record.part != number or record.plan.start != position:
                raise ManifestError('{}: shard {} should be part {} starting at entry {}'.format(
                    self.path, record.part, number, position))
            position = record.plan.stop

    # -- files --------------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str, dataset_id: str, shards: Sequence[ShardPlan], max_bytes: Optional[int] = None,
               max_files: Optional[int] = None, metadata_digest: Optional[str] = None) -> 'Manifest':
        """A new manifest of planned shards, written now; ManifestError if ``path`` already exists."""
        if os.path.lexists(path):
            raise ManifestError('{} already exists: load it to resume that dataset, or choose another path'.format(
                path))
        manifest = cls(path, dataset_id, [ShardRecord(plan) for plan in shards], max_bytes, max_files, metadata_digest)
        manifest.save()
        return manifest

    @classmethod
    def load(cls, path: str) -> 'Manifest':
        """The manifest saved at ``path``; ManifestError when it is unreadable or inconsistent."""
        try:
            with open(path, 'rb') as source:
                doc = json.loads(source.read())
        except OSError as err:
            raise ManifestError('cannot read the manifest {}: {}'.format(path, err.strerror or err)) from None
        except ValueError as err:
            raise ManifestError('the manifest {} is not JSON: {}'.format(path, err)) from None
        if not isinstance(doc, dict) or doc.get('format') != FORMAT or doc.get('version') != VERSION:
            raise ManifestError('{} is not a dataset manifest of version {}'.format(path, VERSION))
        shards = doc.get('shards')
        if not isinstance(shards, list) or doc.get('parts') != len(shards):
            raise ManifestError('{}: "parts" does not match the shards listed'.format(path))
        try:
            dataset_id = check_dataset_id(doc.get('dataset_id'))
        except ValueError as err:
            raise ManifestError('{}: {}'.format(path, err)) from None
        records = [ShardRecord.from_json(shard, path) for shard in shards]
        return cls(path, dataset_id, records, doc.get('max_bytes'), doc.get('max_files'), doc.get('metadata_digest'))

    def as_json_text(self) -> str:
        """The file's text: one line per shard, so a person can read it and diff two saves."""
        head = {'format': FORMAT, 'version': VERSION, 'dataset_id': self.dataset_id, 'max_bytes': self.max_bytes,
                'max_files': self.max_files, 'metadata_digest': self.metadata_digest, 'parts': len(self.shards)}
        lines = [json.dumps(record.as_json(), ensure_ascii=True) for record in self.shards]
        return '{}, "shards": [\n{}\n]}}\n'.format(json.dumps(head)[:-1], ',\n'.join(lines))

    def save(self) -> None:
        """Write the manifest atomically (see :func:`write_atomically`), with every change not yet saved."""
        write_atomically(self.path, self.as_json_text().encode('ascii'))
        self._unsaved = False

    @contextlib.contextmanager
    def deferring(self) -> Iterator['Manifest']:
        """Within the block, outcomes are saved together: by the next :meth:`mark_sending`, else when it ends.

        A save costs several synchronous disk writes, and while the
        coordinator makes them no free worker gets its next shard. What
        waits may wait safely: a shard is marked ``sending`` on disk before
        it is sent, always at once, and a crash that loses a later record of
        its outcome leaves it ``sending`` (to be resolved on the servers) or
        ``sent`` (its job followed again), never sent twice unseen.
        """
        self._deferring += 1
        try:
            yield self
        finally:
            self._deferring -= 1
            if not self._deferring and self._unsaved:
                self.save()

    def _save_or_defer(self) -> None:
        if self._deferring:
            self._unsaved = True
        else:
            self.save()

    # -- states -------------------------------------------------------------------------------------------------
    def shard(self, part: int) -> ShardRecord:
        if isinstance(part, bool) or not isinstance(part, int) or not 1 <= part <= len(self.shards):
            raise ManifestError('the dataset has no part {!r} (parts 1 to {})'.format(part, len(self.shards)))
        return self.shards[part - 1]

    def _move(self, part: int, state: str, at_once: bool = False, **fields: Any) -> ShardRecord:
        record = self.shard(part)
        if state not in NEXT_STATES[record.state]:
            raise TransitionError('part {} of dataset {} cannot go from {} to {}{}'.format(
                part, self.dataset_id, record.state, state,
                ' (its outcome is unknown: it may have reached Ingest)' if record.outcome_unknown else ''))
        saved = (record.state, record.job_id, record.transaction_id, record.error)
        record.state = state
        for name, value in fields.items():
            setattr(record, name, value)
        try:
            record.check(self.path)
            if at_once:
                self.save()
            else:
                self._save_or_defer()
        except BaseException:
            record.state, record.job_id, record.transaction_id, record.error = saved
            raise
        return record

    def mark_sending(self, part: int) -> ShardRecord:
        """Before the first byte of the shard leaves: saved at once, with every change deferred before it."""
        return self._move(part, SENDING, at_once=True, job_id=None, transaction_id=None, error=None)

    def mark_sent(self, part: int, job_id: Any) -> ShardRecord:
        """Ingest answered the upload with ``job_id``."""
        if job_id is None or isinstance(job_id, bool) or not isinstance(job_id, (int, str)):
            raise TransitionError('part {}: a job id is an int or a str, not {!r}'.format(part, job_id))
        return self._move(part, SENT, job_id=job_id)

    def mark_ingested(self, part: int, transaction_id: Any) -> ShardRecord:
        """The ingest job ended well; its transaction is ``transaction_id``."""
        if transaction_id is None:
            raise TransitionError('part {}: an ingested shard needs its transaction id'.format(part))
        return self._move(part, INGESTED, transaction_id=transaction_id)

    def mark_failed(self, part: int, error: str) -> ShardRecord:
        """A definite failure: nothing of the shard was ingested (it may be sent again)."""
        return self._move(part, FAILED, error=_short(error))

    def note_error(self, part: int, error: str) -> ShardRecord:
        """Keep the error of a step whose outcome is unknown, without changing the shard's state."""
        record = self.shard(part)
        saved = record.error
        record.error = _short(error)
        try:
            self._save_or_defer()
        except BaseException:
            record.error = saved
            raise
        return record

    # -- views --------------------------------------------------------------------------------------------------
    def plans(self) -> List[ShardPlan]:
        return [record.plan for record in self.shards]

    def in_state(self, *states: str) -> Iterator[ShardRecord]:
        return (record for record in self.shards if record.state in states)

    def unknown(self) -> List[ShardRecord]:
        """Shards whose sending began without a job id coming back: never to be re-sent blindly."""
        return list(self.in_state(SENDING))

    def counts(self) -> Dict[str, int]:
        """How many shards are in each state."""
        counts = dict.fromkeys(STATES, 0)
        for record in self.shards:
            counts[record.state] += 1
        return counts

    @property
    def complete(self) -> bool:
        """Every shard is ingested."""
        return all(record.state == INGESTED for record in self.shards)


def _short(text: Any) -> str:
    text = str(text)
    return text if len(text) <= _ERROR_LIMIT else text[:_ERROR_LIMIT] + '...'
