"""Verify after ingest: does the transaction hold exactly the files that were sent?

A job that ended well is not proof: pacifica-uniqueid 0.5.1 hands out the
same id twice under concurrent requests, and ingest names job ids and file
ids with it, so one upload's tar or archived files can overwrite another's
(docs/stack.md). So once a job has ended, the ``Files`` records the bundle
sent (``name``, ``subdir``, ``size``, ``hashtype``, ``hashsum``: the
Bundler appends them to ``md_obj``) are compared with those the metadata
service holds for the transaction (:class:`~.datasets.DatasetLookup`)::

    verify_transaction(DatasetLookup(), job_id, md_obj)   # IngestVerificationError naming every file

Ingest writes a transaction's files to metadata as the job's last step, in
one request, so after the job's end they are all there or none are.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Set

from .datasets import DatasetLookup, ServerFile
from .exceptions import ConfigurationError, IngestVerificationError
from .verification import ChecksumMismatch, FileMissing, SizeMismatch, UnexpectedFile, VerificationDetail

__all__ = ['SentFile', 'sent_files', 'compare_files', 'verify_transaction']


class SentFile(NamedTuple):
    """One file as the bundle's ``Files`` record described it."""

    path: str
    size: int
    hashtype: str
    hashsum: str


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def sent_files(items: Iterable[Any]) -> List[SentFile]:
    """The ``Files`` records among metadata ``items`` (FileObj, MetaObj or decoded dicts), as SentFiles."""
    found = []
    for item in items:
        if _field(item, 'destinationTable') != 'Files':
            continue
        name, subdir = str(_field(item, 'name') or ''), str(_field(item, 'subdir') or '').strip('/')
        try:
            size = int(_field(item, 'size'))
        except (TypeError, ValueError):
            raise ConfigurationError('the Files record of {!r} has no size: was the bundle sent?'.format(
                name)) from None
        found.append(SentFile('{}/{}'.format(subdir, name) if subdir else name, size,
                              str(_field(item, 'hashtype') or ''), str(_field(item, 'hashsum') or '')))
    return found


def compare_files(sent: Iterable[SentFile], on_server: Iterable[ServerFile]) -> List[VerificationDetail]:
    """Every difference between what was sent and what the server holds, by path.

    A SentFile without a hashsum (only its name and size are known) is not compared by hash.
    """
    server: Dict[str, ServerFile] = {}
    for held_file in on_server:
        server.setdefault(held_file.path, held_file)
    problems: List[VerificationDetail] = []
    seen = set()
    for record in sent:
        seen.add(record.path)
        held = server.get(record.path)
        if held is None:
            problems.append(FileMissing(record.path, record.hashtype, record.hashsum, None, record.size, None))
        elif held.size != record.size:
            problems.append(SizeMismatch(record.path, record.hashtype, record.hashsum, held.hashsum, record.size,
                                         held.size))
        elif record.hashsum and (held.hashtype.lower(), held.hashsum.lower()) != (record.hashtype.lower(),
                                                                                  record.hashsum.lower()):
            problems.append(ChecksumMismatch(record.path, record.hashtype, record.hashsum, held.hashsum,
                                             record.size, held.size))
    problems.extend(UnexpectedFile(path, held.hashtype, '', held.hashsum, None, held.size)
                    for path, held in server.items() if path not in seen)
    return sorted(problems, key=lambda problem: problem.path)


def verify_transaction(lookup: DatasetLookup, transaction_id: Any, sent: Iterable[Any]) -> List[ServerFile]:
    """The transaction's files when they are exactly those ``sent`` (Files records or SentFiles).

    IngestVerificationError naming every file that is missing, of another
    size or hash, or there without having been sent. A file recorded twice
    under one path counts as unexpected.
    """
    items = list(sent)
    wanted = [item for item in items if isinstance(item, SentFile)]
    wanted += sent_files(item for item in items if not isinstance(item, SentFile))
    held = lookup.files(transaction_id)
    problems = compare_files(wanted, held)
    problems.extend(UnexpectedFile(record.path, record.hashtype, '', record.hashsum, None, record.size)
                    for record in _repeated(held))
    if problems:
        raise IngestVerificationError(transaction_id, problems)
    return held


def _repeated(held: Iterable[ServerFile]) -> Iterator[ServerFile]:
    """Every record of a path already seen before it: one set, so a shard of many files is checked in one pass."""
    seen: Set[str] = set()
    for record in held:
        if record.path in seen:
            yield record
        else:
            seen.add(record.path)
