"""``pacifica-download``: fetch a transaction (or the files of a cloud event) through cartd, verified.

The transaction record comes from the policy server
(:func:`~pacifica.downloader.fetch_transaction`); the files come from a
cart, are checked against their hashes while they are written and only then
appear under their final names. With ``--workers``, ``--manifest`` or
``--dataset`` the files come as several carts at once
(:func:`~pacifica.downloader.download_parallel`).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from pacifica._client.cli import (
    EXIT_OK, Console, add_server_options, byte_size, calling, client_config, exit_codes_help,
    new_parser, positive_count, positive_seconds, run, show_url,
)
from pacifica._client.progress import Progress, human_bytes
from pacifica._client.datasets import DatasetLookup
from pacifica._client.exceptions import ConfigurationError, ServerConnectionError

from .cartapi import CartAPI
from .downloader import Downloader
from .parallel import (
    DEFAULT_MAX_CART_BYTES, DEFAULT_MAX_CART_FILES, DEFAULT_WORKERS, dataset_transactions, download_parallel,
    fetch_records, manifest_transactions,
)
from .policy import check_transaction_id, fetch_transaction, policy_base_url

PROG = 'pacifica-download'
#: Seconds to wait for the cart to be ready (the library's default).
DEFAULT_CART_TIMEOUT = 120.0

DESCRIPTION = """\
Download the files of one Pacifica transaction, or of a cloud event sent by
the notifications service, into DIR/data/. Every file is checked against the
hash recorded for it; a file only gets its final name once it verified.
"""

EPILOG = """\
examples:
  pacifica-download --transaction-id 67 --destination ./download
  pacifica-download --cloudevent event.json --destination ./download --cart-url http://cart.example:8081
  pacifica-download --manifest results.manifest.json --workers 4 --destination ./download
  pacifica-download --dataset 0b9f4a52-5c1e-4bd4-9b6a-3f0c2f1f8d11 --destination ./download
"""

EXIT_CODES = exit_codes_help(
    'bad option, unreadable cloud event file, a transaction the policy server does not know',
    'not verified: the transaction record or cloud event is unusable, the cart holds unsafe or unrequested '
    'members, downloaded files did not match their hashes')


def build_parser() -> argparse.ArgumentParser:
    """The ``pacifica-download`` options (exposed for the documentation)."""
    parser = new_parser(PROG, DESCRIPTION, EPILOG, EXIT_CODES)
    source = parser.add_argument_group('what to download (one of)').add_mutually_exclusive_group(required=True)
    source.add_argument('--transaction-id', type=_transaction_id, metavar='N',
                        help='a transaction id; its record is read from the policy server')
    source.add_argument('--cloudevent', metavar='FILE',
                        help='a JSON file holding a cloud event from the notifications service')
    source.add_argument('--manifest', metavar='FILE',
                        help='the manifest of a finished sharded upload (pacifica-upload --manifest): every '
                             'transaction of the dataset, into one folder')
    source.add_argument('--dataset', metavar='ID',
                        help="a sharded upload's dataset id (a UUID): its transactions are looked up on the "
                             'metadata server (--metadata-url), every one into one folder')
    parser.add_argument('--destination', required=True, metavar='DIR',
                        help='folder to download into (created if needed); files land in DIR/data/')
    parser.add_argument('--timeout', type=positive_seconds, default=DEFAULT_CART_TIMEOUT, metavar='S',
                        help='seconds to wait for the cart to be ready (default: %(default)g)')
    add_server_options(parser, ('cart_url', 'policy_url', 'metadata_url'))
    _add_parallel_options(parser)
    return parser


def _add_parallel_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('several carts at once (with --transaction-id, --manifest, --dataset)')
    group.add_argument('--workers', type=positive_count, metavar='N',
                       help='carts in flight at once (default with --manifest: {})'.format(DEFAULT_WORKERS))
    group.add_argument('--max-cart-size', type=byte_size, default=DEFAULT_MAX_CART_BYTES, metavar='SIZE',
                       help='bytes per cart at most, e.g. 500M, 4G (default: 4G); a larger file is a cart alone')
    group.add_argument('--max-cart-files', type=positive_count, default=DEFAULT_MAX_CART_FILES, metavar='N',
                       help='files per cart at most (default: %(default)s)')
    group.add_argument('--dask-scheduler', metavar='ADDRESS',
                       help="run the carts on a Dask cluster (e.g. tcp://10.0.0.5:8786) whose workers see "
                            "--destination; needs pip install 'pacifica-transfer[dask]'")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``pacifica-download`` with ``argv`` (default: the process arguments); return the exit code."""
    return run(build_parser(), _download, argv)


def _transaction_id(text: str) -> int:
    """argparse type: a transaction id, by the library's rule."""
    try:
        return check_transaction_id(text)
    except ConfigurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _read_cloudevent(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding='utf-8') as handle:
            event = json.load(handle)
    except OSError as err:
        raise ConfigurationError('cannot read --cloudevent {}: {}'.format(path, err.strerror or err)) from None
    except ValueError as err:
        raise ConfigurationError('--cloudevent {} is not JSON: {}'.format(path, err)) from None
    if not isinstance(event, dict) or not isinstance(event.get('data'), list):
        raise ConfigurationError('--cloudevent {} is not a cloud event (no "data" list)'.format(path))
    return event


def _download(args: argparse.Namespace, console: Console) -> int:
    if (args.manifest is not None or args.dataset is not None or args.workers is not None
            or args.dask_scheduler is not None):
        return _download_parallel(args, console)
    event = _read_cloudevent(args.cloudevent) if args.cloudevent else None
    config = client_config(args)
    downloader = Downloader(config=config, **({'cart_api_url': args.cart_url} if args.cart_url else {}))
    if event is None:
        console.note('reading transaction {} from {}'.format(args.transaction_id, show_url(
            policy_base_url(args.policy_url))))
        with calling('policy'):
            record = fetch_transaction(args.transaction_id, policy_url=args.policy_url, config=config)
    console.note('waiting up to {:g} s for the cart'.format(args.timeout))
    progress = _FirstByteProgress(console)
    completed = False
    try:
        with calling('cart'):
            if event is None:
                downloader.transactioninfo(args.destination, record, callback=progress.update, timeout=args.timeout)
            else:
                downloader.cloudevent(args.destination, event, callback=progress.update, timeout=args.timeout)
        completed = True
    finally:
        progress.close(completed)
    _summarise(console, args, downloader.paths_written)
    return EXIT_OK


class _FirstByteProgress:
    """The download's progress display, shown from the first byte received.

    A download that fails before any byte arrives (no cart, a refused
    request) then shows only its error, not an empty progress line. The
    display's clock starts at the stream's first callback (0 bytes): a cart
    that arrives between two callbacks is timed from its start, not from
    its last byte (which made a 4 MiB cart read "462.0 GiB/s").
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._shown: Optional[Progress] = None
        self._received = False

    def update(self, done: int, total: Optional[int]) -> None:
        if self._shown is None:
            self._shown = self._console.progress('download', total)
        self._received = self._received or done > 0
        self._shown.update(done, total)

    def close(self, completed: bool) -> None:
        if self._shown is None and completed:  # nothing to receive: still report the (empty) transfer
            self._shown = self._console.progress('download')
        if self._shown is not None and (completed or self._received):
            self._shown.close(completed)


def _summarise(console: Console, args: argparse.Namespace, paths: List[str], single: bool = True) -> None:
    total = sum(os.path.getsize(path) for path in paths)
    if single and args.transaction_id is not None:
        console.result('transaction: {}'.format(args.transaction_id))
    console.result('files: {} ({}), every one verified against its hash'.format(len(paths), human_bytes(total)))
    console.result('written to: {}'.format(os.path.join(args.destination, 'data')))
    if args.verbose:
        for path in sorted(paths):
            console.result('  {}'.format(os.path.relpath(path, args.destination).replace(os.sep, '/')))


def _transaction_ids(args: argparse.Namespace) -> List[int]:
    if args.cloudevent is not None:
        raise ConfigurationError('--workers and --dask-scheduler take --transaction-id, --manifest or --dataset, '
                                 'not --cloudevent')
    if args.manifest is not None:
        return manifest_transactions(args.manifest)
    if args.dataset is not None:
        return dataset_transactions(args.dataset, DatasetLookup(args.metadata_url, config=client_config(args)))
    return [args.transaction_id]


def _download_parallel(args: argparse.Namespace, console: Console) -> int:
    """The files of one or many transactions, as several carts at once, into DESTINATION/data."""
    transaction_ids = _transaction_ids(args)
    cart_api = CartAPI(args.cart_url, config=client_config(args)) if args.cart_url else CartAPI(
        config=client_config(args))
    console.note('reading {} transaction(s) from {}'.format(len(transaction_ids), show_url(
        policy_base_url(args.policy_url))))
    with calling('policy'):
        records = fetch_records(transaction_ids, cart_api, args.policy_url)
    progress = _FirstByteProgress(console)
    completed = False
    try:
        with calling('cart'), _executor(args.dask_scheduler) as executor:
            result = download_parallel(args.destination, records, cart_api=cart_api,
                                       workers=args.workers or DEFAULT_WORKERS, executor=executor,
                                       max_cart_bytes=args.max_cart_size, max_cart_files=args.max_cart_files,
                                       timeout=args.timeout, callback=progress.update)
        completed = True
    finally:
        progress.close(completed)
    console.result('transactions: {}'.format(', '.join(map(str, transaction_ids))))
    console.result('carts: {} ({} file(s) fetched, {} already there and verified)'.format(
        result.carts, result.fetched, result.present))
    _summarise(console, args, result.paths, single=False)
    return EXIT_OK


@contextmanager
def _executor(address: Optional[str]) -> Iterator[Optional[Executor]]:
    """None (threads) without ``address``; else a Dask cluster's executor, closed afterwards."""
    if address is None:
        yield None
        return
    client, executor = _dask_client(address)
    try:
        yield executor
    finally:
        client.close()


def _dask_client(address: str) -> Tuple[Any, Executor]:
    try:
        distributed = importlib.import_module('distributed')  # the optional 'dask' extra
    except ImportError:
        raise ConfigurationError("--dask-scheduler needs Dask's distributed package: "
                                 "pip install 'pacifica-transfer[dask]'") from None
    try:
        client = distributed.Client(address, timeout=30)
    except (OSError, TimeoutError) as err:
        raise ServerConnectionError('cannot reach the Dask scheduler at {}: {}'.format(address, err)) from None
    return client, client.get_executor()
