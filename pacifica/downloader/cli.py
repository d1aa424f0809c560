"""``pacifica-download``: fetch a transaction (or the files of a cloud event) through cartd, verified.

The transaction record comes from the policy server
(:func:`~pacifica.downloader.fetch_transaction`); the files come from a
cart, are checked against their hashes while they are written and only then
appear under their final names.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Any, Dict, List, Optional, Sequence

from pacifica._client.cli import (
    EXIT_OK, Console, add_server_options, calling, client_config, exit_codes_help,
    new_parser, positive_seconds, run, show_url,
)
from pacifica._client.progress import Progress, human_bytes
from pacifica._client.exceptions import ConfigurationError

from .downloader import Downloader
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
    parser.add_argument('--destination', required=True, metavar='DIR',
                        help='folder to download into (created if needed); files land in DIR/data/')
    parser.add_argument('--timeout', type=positive_seconds, default=DEFAULT_CART_TIMEOUT, metavar='S',
                        help='seconds to wait for the cart to be ready (default: %(default)g)')
    add_server_options(parser, ('cart_url', 'policy_url'))
    return parser


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
    request) then shows only its error, not an empty progress line.
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._total: Optional[int] = None
        self._shown: Optional[Progress] = None

    def update(self, done: int, total: Optional[int]) -> None:
        if self._shown is None:
            self._total = total or self._total
            if not done:
                return
            self._shown = self._console.progress('download', self._total)
        self._shown.update(done, total)

    def close(self, completed: bool) -> None:
        if self._shown is None and completed:  # nothing to receive: still report the (empty) transfer
            self._shown = self._console.progress('download', self._total)
        if self._shown is not None:
            self._shown.close(completed)


def _summarise(console: Console, args: argparse.Namespace, paths: List[str]) -> None:
    total = sum(os.path.getsize(path) for path in paths)
    if args.transaction_id is not None:
        console.result('transaction: {}'.format(args.transaction_id))
    console.result('files: {} ({}), every one verified against its hash'.format(len(paths), human_bytes(total)))
    console.result('written to: {}'.format(os.path.join(args.destination, 'data')))
    if args.verbose:
        for path in sorted(paths):
            console.result('  {}'.format(os.path.relpath(path, args.destination).replace(os.sep, '/')))
