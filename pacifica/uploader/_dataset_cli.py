"""``pacifica-upload`` in shards: the command path behind ``--workers``, ``--max-bundle-*``, ``--manifest``.

:mod:`pacifica.uploader.cli` parses the options and hands over here when any of the sharded
options is given. The files and metadata are gathered as for one bundle;
:func:`~pacifica.uploader.dataset.upload_dataset` sends them as several
bundles on a process pool (``--workers``) or a Dask cluster
(``--dask-scheduler``), recording every step in the manifest, so the same
command run again finishes what is missing and sends nothing twice.
Sizes (``--max-bundle-size``) follow :func:`pacifica._client.cli.byte_size`.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

from pacifica._client import exceptions
from pacifica._client.cli import EXIT_FAILED, EXIT_OK, Console, byte_size, calling, client_config, positive_count
from pacifica._client.exceptions import ConfigurationError, PacificaError, ServerConnectionError
from pacifica._client.progress import Progress, human_bytes

from .dataset import DatasetSource, RunReport, upload_dataset
from .dataset.manifest import INGESTED, SENT, Manifest

#: The options that choose the sharded path (argparse ``dest`` names).
SHARD_OPTIONS = ('workers', 'max_bundle_size', 'max_bundle_files', 'manifest', 'dask_scheduler')
DASK_EXTRA = "pip install 'pacifica-transfer[dask]'"
#: Seconds to wait for the Dask scheduler to answer before giving up.
DASK_CONNECT_TIMEOUT = 30.0

def add_options(parser: argparse.ArgumentParser) -> None:
    """The sharded upload's options (any of them chooses it)."""
    group = parser.add_argument_group(
        'sharded upload (any of these sends the files as several bundles, each one ingest transaction '
        'tagged pacifica.dataset and pacifica.dataset.part; run the same command again to resume)')
    group.add_argument('--manifest', metavar='FILE',
                       help='where each bundle\'s state is recorded (required); an existing FILE is resumed: '
                            'only what is missing is sent')
    group.add_argument('--max-bundle-size', type=byte_size, metavar='SIZE',
                       help='bytes of file data per bundle at most (a larger file travels alone): 4096, 500M, 2G, '
                            '1.5GiB (K M G T: powers of 1024; KB MB GB TB: powers of 1000)')
    group.add_argument('--max-bundle-files', type=positive_count, metavar='N', help='files per bundle at most')
    group.add_argument('--workers', type=positive_count, metavar='N',
                       help='bundles sent at once (default 2): worker processes on this machine, or with '
                            '--dask-scheduler the bundles in flight on the cluster (default: its threads)')
    group.add_argument('--dask-scheduler', metavar='ADDRESS',
                       help='send the bundles from the workers of this Dask cluster, e.g. tcp://10.0.0.5:8786 '
                            '(the files must be on a file system they share; needs ' + DASK_EXTRA + ')')


def wanted(args: argparse.Namespace) -> bool:
    """Whether the command line asks for the sharded path."""
    return any(getattr(args, name, None) is not None for name in SHARD_OPTIONS)


def check_options(args: argparse.Namespace) -> None:
    """ConfigurationError for combinations the sharded path cannot honour, before any file is read."""
    if args.save or args.no_upload:
        raise ConfigurationError('--save and --no-upload write one bundle; they cannot be used with the sharded '
                                 'options (--manifest, --workers, --max-bundle-size, --max-bundle-files, '
                                 '--dask-scheduler)')
    if not args.manifest:
        raise ConfigurationError('a sharded upload needs --manifest FILE: it records each bundle, so that running '
                                 'the command again resumes instead of sending anything twice')
    if not os.path.lexists(args.manifest) and args.max_bundle_size is None and args.max_bundle_files is None:
        raise ConfigurationError('{} does not exist yet: give --max-bundle-size SIZE and/or --max-bundle-files N '
                                 'to split the files into bundles'.format(args.manifest))


def dataset_source(paths: Sequence[str], cwd: Optional[str] = None) -> DatasetSource:
    """The files under ``paths``, named as :func:`~pacifica.uploader.cli.collect_files` names them, walked afresh
    on each pass, so the command holds one shard's entries, not the dataset's.

    Paths whose archive names may meet (one inside another, or two folders
    outside ``cwd`` with the same name) are listed once, in memory, so that a
    name given twice is refused as for one bundle.
    """
    from .cli import _is_within, _walk, collect_files  # cli imports this module first
    cwd = os.path.abspath(cwd or os.getcwd())
    roots = []
    for given in paths:
        full = os.path.abspath(given)
        if not os.path.lexists(full):
            raise ConfigurationError('{}: no such file or directory'.format(given))
        base = cwd if _is_within(full, cwd) else os.path.dirname(full)
        relative = os.path.relpath(full, base)
        roots.append((full, given, base, [] if relative == os.curdir else relative.split(os.sep)))
    named = sorted(parts for *_, parts in roots)
    if any(later[:len(earlier)] == earlier for earlier, later in zip(named, named[1:])):
        return DatasetSource.from_file_data(collect_files(paths, cwd))

    def entries() -> Iterator[Dict[str, Any]]:
        for full, given, base, _ in roots:
            for file_path in _walk(full, given):
                info = os.stat(file_path)
                yield {'name': 'data/' + os.path.relpath(file_path, base).replace(os.sep, '/'),
                       'size': info.st_size, 'mtime': info.st_mtime, 'path': file_path}
    return DatasetSource(entries, 'files under {}'.format(', '.join(paths)))


class _ShardProgress:
    """The progress display over every shard: file bytes of the bundles sent in this run, of those to send."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.display: Optional[Progress] = None
        self.before = 0

    def __call__(self, manifest: Manifest) -> None:
        done = sum(record.plan.size for record in manifest.shards if record.state in (SENT, INGESTED)
                   or (record.job_id is not None))
        if self.display is None:
            self.console.result('files: {} ({})'.format(sum(record.plan.files for record in manifest.shards),
                                                        human_bytes(sum(r.plan.size for r in manifest.shards))))
            self.before = done
            total = sum(record.plan.size for record in manifest.shards) - done
            self.display = self.console.progress('upload', total)
            self.display.update(0)
        self.display.update(done - self.before)

    def close(self, completed: bool) -> None:
        if self.display is not None:
            self.display.close(completed)


@contextmanager
def _executor(args: argparse.Namespace) -> Iterator[Tuple[Optional[cf.Executor], Optional[int]]]:
    """(executor, window): the default process pool (None) or the Dask cluster's executor."""
    if not args.dask_scheduler:
        yield None, None
        return
    try:
        import distributed
    except ImportError:
        raise ConfigurationError('--dask-scheduler needs the Dask extra: {}'.format(DASK_EXTRA)) from None
    try:
        client = distributed.Client(args.dask_scheduler, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, ValueError, TypeError) as err:
        raise ServerConnectionError('cannot reach the Dask scheduler at {}: {}'.format(
            args.dask_scheduler, err)) from None
    try:
        threads = sum(client.nthreads().values())
        yield client.get_executor(), args.workers or max(threads, 1)
    finally:
        client.close()


class IncompleteDatasetError(PacificaError):
    """Parts of the dataset are not ingested; the exit code is the category of the first part's failure."""


def _failure_code(error: str) -> int:
    """The exit code of the library exception a part's error text names (``'RequestTimeout: ...'``)."""
    name = error.partition(':')[0].strip()
    found = getattr(exceptions, name, None)
    if isinstance(found, type) and issubclass(found, PacificaError):
        return found.exit_code
    return EXIT_FAILED


def _report(console: Console, report: RunReport, waited: bool) -> None:
    console.result('dataset: {}'.format(report.dataset_id))
    console.result('manifest: {}'.format(report.manifest_path))
    console.result('parts: {} (ingested {}, failed {}, unknown {}{})'.format(
        report.parts, len(report.ingested), len(report.failed), len(report.unknown),
        ', sent and not followed {}'.format(len(report.unfollowed)) if report.unfollowed else ''))
    for part, error in sorted(report.failed.items()):
        console.result('failed: part {}: {}'.format(part, error))
    for part, error in sorted(report.unknown.items()):
        console.result('unknown: part {}: {}'.format(part, error))
    if not waited:
        for part, job_id in sorted(report.unfollowed.items()):
            console.result('job_id: part {}: {}'.format(part, job_id))


def _verdict(report: RunReport, waited: bool) -> int:
    """EXIT_OK when every part is ingested (or sent, without --wait); else raise for the first failure."""
    problems = {**report.failed, **report.unknown}
    if waited:
        problems.update({part: 'its ingest job {} was not followed to its end'.format(job_id)
                         for part, job_id in report.unfollowed.items()})
    if not problems:
        return EXIT_OK
    first = min(problems)
    error = IncompleteDatasetError(
        '{} of {} parts not ingested (part {}: {}); run the same command again to resume: it sends only the parts '
        'that definitely did not arrive'.format(len(problems), report.parts, first, problems[first]))
    error.exit_code = _failure_code(problems[first])
    raise error


def upload_sharded(args: argparse.Namespace, console: Console, metadata: Any, source: DatasetSource,
                   ingest_urls: Dict[str, str]) -> int:
    """Send the files of ``source`` with ``metadata`` as shards; print the report; return the exit code.

    ``ingest_urls`` are the Uploader's URL keywords the command line gives.
    """
    uploader_kwargs: Dict[str, Any] = {'config': client_config(args), **ingest_urls}
    progress = _ShardProgress(console)
    completed = False
    try:
        with _executor(args) as (executor, window), calling('ingest'):
            report = upload_dataset(source, metadata, args.manifest, max_bytes=args.max_bundle_size,
                                    max_files=args.max_bundle_files, workers=args.workers or 2, executor=executor,
                                    window=window, uploader_kwargs=uploader_kwargs,
                                    bundler_kwargs={'hashfunc': args.hashfunc}, wait=args.wait,
                                    wait_timeout=args.timeout, metadata_url=args.metadata_url,
                                    on_change=progress)
        completed = not report.failed and not report.unknown
    finally:
        progress.close(completed)
    _report(console, report, args.wait)
    return _verdict(report, args.wait)

