"""``pacifica-upload``: bundle files and folders, validate the metadata, stream to ingest.

The library's quick path for the common case; ``pacifica-cli`` stays the
tool for interactive metadata selection. Everything runs in one pass: the
bundle is built while it is sent, and ``--save`` keeps a byte-for-byte copy
of what was sent.
"""
from __future__ import annotations

import argparse
import json
import os
import re
from typing import Any, BinaryIO, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from pacifica._client.cli import (
    EXIT_OK, Console, Hinted, add_server_options, calling, client_config, new_parser,
    positive_seconds, run, show_url,
)
from pacifica._client.endpoints import INGEST_PATHS, POLICY_PATHS
from pacifica._client.progress import Progress, human_bytes
from pacifica._client.exceptions import BundleError, ConfigurationError, InvalidMetadataError, PolicyRejectedError

from . import _dataset_cli
from .bundler import Bundler
from .metadata import MetaData, MetaObj, metadata_decode
from .metadata.policyquery import PolicyQuery
from .uploader import Uploader

PROG = 'pacifica-upload'
#: Seconds ``--wait`` waits for the ingest job unless ``--timeout`` says otherwise.
DEFAULT_WAIT_TIMEOUT = 3600.0
#: The destination table whose entries are key/value pairs rather than columns.
KEY_VALUE_TABLE = 'TransactionKeyValue'
SUBMITTER_TABLE = 'Transactions.submitter'
_INTEGER = re.compile(r'-?(0|[1-9][0-9]*)')

DESCRIPTION = """\
Bundle files and folders into a Pacifica upload (a tar with checksums and a
metadata.txt), check the metadata with the policy server and stream the
bundle to the ingest server. Files keep their path below the current
directory (a path outside it keeps its own name), under "data/".
"""

EPILOG = """\
metadata values:
  --meta Transactions.instrument=54      digits become a number (54)
  --meta Transactions.project=1234a      anything else stays text
  --meta Transactions.project=0123       leading zeros stay text ("0123")
  --meta 'Transactions.project:="1234"'  ":=" takes a JSON value as it is
  --meta TransactionKeyValue.Tag=blue    a key/value pair (always text)
  --meta-file FILE.json                  a JSON list in the upload metadata
                                         format; --meta entries override it

examples:
  pacifica-upload --no-upload --save bundle.tar --meta Transactions.submitter=10 \\
      --meta Transactions.project=1234a --meta Transactions.instrument=54 results/
  pacifica-upload --user dmlb2001 --meta Transactions.project=1234a \\
      --meta Transactions.instrument=54 --wait results/ notes.txt
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``pacifica-upload`` options (exposed for the documentation)."""
    parser = new_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument('paths', nargs='+', metavar='PATH', help='files and folders to upload')
    meta = parser.add_argument_group('metadata')
    meta.add_argument('--meta', action='append', default=[], metavar='TABLE.COLUMN=VALUE', type=parse_meta,
                      help='one metadata value (repeatable; see below)')
    meta.add_argument('--meta-file', metavar='FILE.json', help='metadata as a JSON list of objects')
    meta.add_argument('--user', metavar='ID|NETWORK_ID',
                      help='the user the policy queries run as; also the submitter when the metadata names '
                           'none (a network id is looked up on the policy server)')
    bundle = parser.add_argument_group('bundle')
    bundle.add_argument('--hashfunc', default='sha1', metavar='NAME',
                        help='checksum algorithm, any name in hashlib.algorithms_available (default: sha1)')
    bundle.add_argument('--save', metavar='FILE', help='also write the bundle to FILE')
    bundle.add_argument('--no-upload', action='store_true',
                        help='only write the bundle given by --save; no server is contacted')
    job = parser.add_argument_group('ingest job')
    job.add_argument('--wait', action='store_true',
                     help='follow the ingest job until it ends, then check that its transaction holds the files '
                          'sent (names, sizes, hashes, read from the metadata server)')
    job.add_argument('--timeout', type=positive_seconds, default=DEFAULT_WAIT_TIMEOUT, metavar='S',
                     help='seconds --wait waits for the job (default: %(default)g)')
    _dataset_cli.add_options(parser)
    add_server_options(parser, ('ingest_url', 'status_url', 'policy_url', 'metadata_url'))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``pacifica-upload`` with ``argv`` (default: the process arguments); return the exit code."""
    return run(build_parser(), _upload, argv)


# --------------------------------------------------------------------------
# Metadata from the command line
# --------------------------------------------------------------------------
def parse_meta(text: str) -> MetaObj:
    """argparse type: ``TABLE.COLUMN=VALUE`` (or ``:=JSON``) as a MetaObj."""
    target, sep, raw = text.partition('=')
    if not sep:
        raise argparse.ArgumentTypeError('{!r} is not TABLE.COLUMN=VALUE'.format(text))
    as_json = target.endswith(':')
    target = target[:-1] if as_json else target
    table, dot, column = target.rpartition('.')
    if not dot or not table or not column:
        raise argparse.ArgumentTypeError('{!r}: the target must be TABLE.COLUMN, such as Transactions.project'
                                         .format(text))
    if as_json:
        try:
            value: Any = json.loads(raw)
        except ValueError as err:
            raise argparse.ArgumentTypeError('{!r}: the value after := is not JSON ({})'.format(text, err)) from None
    else:
        value = raw
    if value in ('', None):
        raise argparse.ArgumentTypeError('{!r}: the value is empty'.format(text))
    if table == KEY_VALUE_TABLE:
        return MetaObj(destinationTable=KEY_VALUE_TABLE, key=column, value=value if as_json else raw)
    if not as_json and _INTEGER.fullmatch(raw):
        value = int(raw)
    return MetaObj(destinationTable=target, value=value)


def _identity(item: Any) -> tuple:
    """What makes two metadata entries the same slot: the table, and the key of a key/value pair."""
    return (getattr(item, 'destinationTable', None), getattr(item, 'key', None))


def build_metadata(meta_file: Optional[str], options: Sequence[MetaObj]) -> MetaData:
    """The metadata of the file (if any) with the ``--meta`` values laid over it."""
    metadata = MetaData()
    if meta_file:
        try:
            with open(meta_file, encoding='utf-8') as handle:
                metadata = metadata_decode(handle.read())
        except OSError as err:
            raise ConfigurationError('cannot read --meta-file {}: {}'.format(meta_file, err.strerror or err)) from None
        except (TypeError, ValueError) as err:
            raise ConfigurationError('--meta-file {} is not upload metadata: {}'.format(meta_file, err)) from None
    for option in options:
        set_value(metadata, option)
    return metadata


def set_value(metadata: MetaData, option: MetaObj) -> None:
    """Give the entry for the same table (and key) the option's value, or append the option."""
    slot = _identity(option)
    for index, item in enumerate(metadata):
        if _identity(item) == slot:
            metadata[index] = item._replace(value=option.value)
            return
    metadata.append(option)


def _item_label(item: Any) -> str:
    """How the user names an item on the command line: ``Table.key`` or its metaID."""
    name = getattr(item, 'metaID', None) or getattr(item, 'destinationTable', None) or '?'
    key = getattr(item, 'key', None)
    return '{}.{}'.format(name, key) if key else str(name)


def check_complete(metadata: MetaData) -> None:
    """Raise InvalidMetadataError naming what is missing, before any file is read."""
    if metadata.is_valid():
        return
    missing = [_item_label(item) for item in metadata
               if getattr(item, 'destinationTable', None) != 'Files' and not getattr(item, 'value', None)]
    if missing:
        raise InvalidMetadataError('metadata is incomplete, no value for: {}'.format(', '.join(missing)))
    raise InvalidMetadataError('no metadata given: use --meta TABLE.COLUMN=VALUE or --meta-file')


def _has_value(metadata: MetaData, table: str) -> bool:
    return any(getattr(item, 'destinationTable', None) == table and getattr(item, 'value', None)
               for item in metadata)


# --------------------------------------------------------------------------
# Files from the command line
# --------------------------------------------------------------------------
def collect_files(paths: Sequence[str], cwd: Optional[str] = None) -> List[Dict[str, Any]]:
    """``file_data`` entries for every file under ``paths``, opened only when bundled.

    A path inside ``cwd`` keeps its path relative to it; any other path is
    named from its own base name. Archive names use ``/`` on every system.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    entries: List[Dict[str, Any]] = []
    origin: Dict[str, str] = {}
    for given in paths:
        full = os.path.abspath(given)
        if not os.path.lexists(full):
            raise ConfigurationError('{}: no such file or directory'.format(given))
        base = cwd if _is_within(full, cwd) else os.path.dirname(full)
        for file_path in _walk(full, given):
            name = 'data/' + os.path.relpath(file_path, base).replace(os.sep, '/')
            if name in origin:
                raise ConfigurationError('{} and {} would both be stored as {}'.format(origin[name], file_path, name))
            origin[name] = file_path
            try:
                info = os.stat(file_path)
            except OSError as err:
                raise ConfigurationError('{}: {}'.format(file_path, err.strerror or err)) from None
            entries.append({'name': name, 'size': info.st_size, 'mtime': info.st_mtime, 'path': file_path})
    if not entries:
        raise ConfigurationError('nothing to upload: the folders given hold no files')
    return entries


def _is_within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives on Windows
        return False


def _walk(full: str, given: str) -> Iterator[str]:
    """Regular files at or below ``full``, in a stable order; symlinked folders are not entered."""
    if os.path.isfile(full):
        yield full
        return
    if not os.path.isdir(full):
        raise ConfigurationError('{} is neither a regular file nor a folder'.format(given))
    for root, dirs, files in os.walk(full):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                raise ConfigurationError('{} is not a regular file (a broken link, a FIFO or a socket?)'.format(path))
            yield path


# --------------------------------------------------------------------------
# Sending and saving
# --------------------------------------------------------------------------
class _Tee:
    """Stands in for the Bundler: every byte it hands on is counted and copied to ``copy``.

    The uploader reads the bundle through its ``iter_bytes``, so the saved
    file is exactly what was sent.
    """

    def __init__(self, bundler: Bundler, copy: Optional[BinaryIO], progress: Progress) -> None:
        self._bundler = bundler
        self._copy = copy
        self._progress = progress
        self.sent = 0

    def content_length(self) -> int:
        return self._bundler.content_length()

    def _pass_on(self, chunk: Any) -> None:
        if self._copy is not None:
            self._copy.write(chunk)
        self.sent += len(chunk)
        self._progress.update(self.sent)

    def iter_bytes(self, callback: Optional[Callable[..., Any]] = None) -> Iterator[Any]:
        self._progress.update(0)  # the bytes begin to flow: the rate counts from here
        for chunk in self._bundler.iter_bytes(callback):
            self._pass_on(chunk)
            yield chunk


class _SaveFile:
    """The ``--save`` file, written under a temporary name and renamed only when complete."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self.handle: Optional[BinaryIO] = None
        if path:
            try:
                self.handle = open(path + '.part', 'wb')
            except OSError as err:
                raise ConfigurationError('cannot write --save {}: {}'.format(path, err.strerror or err)) from None

    def finish(self, completed: bool) -> None:
        if self.handle is None or self.path is None:
            return
        self.handle.close()
        if completed:
            os.replace(self.path + '.part', self.path)
        else:
            os.remove(self.path + '.part')


def _percent_text(value: Any) -> str:
    """Ingest reports ``"100.00000"``; show ``100``."""
    try:
        return '{:g}'.format(float(value))
    except (TypeError, ValueError):
        return str(value)


def _below(base_url: Optional[str], paths: Sequence[Tuple[str, str]]) -> Dict[str, str]:
    """The whole-URL keywords (``upload_url``, ...) of each endpoint ``path`` below ``base_url``."""
    if not base_url:
        return {}
    return {part[:-len('_path')] + '_url': base_url + path for part, path in paths}


def _policy_kwargs(args: argparse.Namespace) -> Dict[str, str]:
    return _below(args.policy_url, POLICY_PATHS)


def _ingest_kwargs(args: argparse.Namespace) -> Dict[str, str]:
    kwargs = _below(args.ingest_url, INGEST_PATHS)
    if args.status_url:
        kwargs['status_url'] = args.status_url
    return kwargs


def _validate(policy: PolicyQuery, metadata: MetaData) -> None:
    """Ask the policy server; a refusal of metadata without a submitter says how to name one."""
    try:
        with calling('policy'):
            policy.validate_metadata(metadata)
    except PolicyRejectedError as err:
        if _has_value(metadata, SUBMITTER_TABLE):
            raise
        raise Hinted(err, 'the metadata names no submitter: pass --user ID|NETWORK_ID or --meta {}=ID'.format(
            SUBMITTER_TABLE)) from err


def _checked_metadata(args: argparse.Namespace, console: Console) -> MetaData:
    """The command's metadata, with the submitter ``--user`` names, complete and (before an upload) validated."""
    metadata = build_metadata(args.meta_file, args.meta)
    policy: Optional[PolicyQuery] = None
    if args.user is not None or not args.no_upload:
        with calling('policy'):  # a network id is looked up at once
            policy = PolicyQuery(args.user if args.user is not None else -1, config=client_config(args),
                                 **_policy_kwargs(args))
    if args.user is not None and policy is not None and not _has_value(metadata, SUBMITTER_TABLE):
        set_value(metadata, MetaObj(destinationTable=SUBMITTER_TABLE, value=policy.get_user()))
    check_complete(metadata)
    if policy is not None and not args.no_upload:
        console.note('checking the metadata with the policy server{}'.format(
            ' at ' + show_url(args.policy_url) if args.policy_url else ''))
        _validate(policy, metadata)
    return metadata


def _send(args: argparse.Namespace, console: Console, bundler: Bundler,
          total: int) -> Tuple[Optional[Uploader], Any]:
    """Stream the bundle to ingest (and ``--save``); the uploader and the job id, or ``(None, None)``."""
    save = _SaveFile(args.save)
    progress = console.progress('save' if args.no_upload else 'upload', total)
    tee = _Tee(bundler, save.handle, progress)
    uploader: Optional[Uploader] = None
    job_id = None
    completed = False
    try:
        if args.no_upload:
            for _chunk in tee.iter_bytes():
                pass
        else:
            uploader = Uploader(config=client_config(args), **_ingest_kwargs(args))
            with calling('ingest'):
                job_id = uploader.upload_bundle(tee)
        if tee.sent != total:
            raise BundleError('the bundle was {} bytes, not the {} announced'.format(tee.sent, total))
        completed = True
    finally:
        progress.close(completed)
        save.finish(completed)
    return uploader, job_id


def _upload(args: argparse.Namespace, console: Console) -> int:
    if args.no_upload and not args.save:
        raise ConfigurationError('--no-upload needs --save FILE (otherwise there is nothing to do)')
    if args.no_upload and args.wait:
        raise ConfigurationError('--wait follows an upload; it cannot be used with --no-upload')
    if _dataset_cli.wanted(args):
        _dataset_cli.check_options(args)
        source = _dataset_cli.dataset_source(args.paths)
        return _dataset_cli.upload_sharded(args, console, _checked_metadata(args, console), source,
                                           _ingest_kwargs(args))
    file_data = collect_files(args.paths)
    metadata = _checked_metadata(args, console)
    bundler = Bundler(metadata, file_data, hashfunc=args.hashfunc)
    total = bundler.content_length()
    payload = sum(entry['size'] for entry in file_data)
    console.result('files: {} ({})'.format(len(file_data), human_bytes(payload)))
    console.result('bundle: {} bytes, {}'.format(total, args.hashfunc))
    uploader, job_id = _send(args, console, bundler, total)
    if args.save:
        console.result('saved: {}'.format(args.save))
    if uploader is None:
        return EXIT_OK
    console.result('job_id: {}'.format(job_id))
    if args.wait:
        console.note('waiting up to {:g} s for ingest job {}'.format(args.timeout, job_id))
        with calling('ingest'):
            state = uploader.wait(job_id, timeout=args.timeout)
        console.result('state: {} ({}, {}%)'.format(state.get('state'), state.get('task'),
                                                    _percent_text(state.get('task_percent'))))
        with calling('metadata'):  # a job that ended well may still hold other bytes (docs/stack.md)
            held = uploader.verify_ingest(job_id, metadata, args.metadata_url)
        console.result('verified: transaction {} holds the {} file(s) sent'.format(job_id, len(held)))
    return EXIT_OK
