"""``pacifica-download``: fetch a transaction (or the files of a cloud event) through cartd, verified.

The transaction record comes from the policy server; the files come from a
cart, are checked against their hashes while they are written and only then
appear under their final names.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Any, Dict, List, Optional, Sequence

from pacifica._client.cli import (
    EXIT_OK, Console, add_server_options, calling, client_config, human_bytes, new_parser, positive_seconds, run,
    show_url,
)
from pacifica._client.exceptions import ConfigurationError, HTTPStatusError, RecordError
from pacifica._client.http import CommonBase, join_url

from .downloader import Downloader

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


def build_parser() -> argparse.ArgumentParser:
    """The ``pacifica-download`` options (exposed for the documentation)."""
    parser = new_parser(PROG, DESCRIPTION, EPILOG)
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
    """argparse type: a transaction id is a positive integer."""
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError('{!r} is not a transaction id (a positive integer)'.format(text))
    return int(text)


class TransactionRecords(CommonBase):
    """Reads transaction records from the policy server (``/status/transactions/by_id/<id>``).

    The server is ``base_url``, else ``POLICY_PROTO``/``POLICY_ADDR``/``POLICY_PORT``
    as for :class:`~pacifica.uploader.metadata.PolicyQuery`.
    """

    _proto: str
    _addr: str
    _port: Any

    def __init__(self, base_url: Optional[str] = None, **kwargs: Any) -> None:
        self._configure(kwargs)
        self._server_url([('proto', 'http'), ('addr', '127.0.0.1'), ('port', 8181)], 'POLICY', kwargs)
        self.base_url = base_url or join_url(self._proto, self._addr, self._port)

    def transaction(self, transaction_id: int) -> Dict[str, Any]:
        """Return the record the downloader takes; ConfigurationError when there is no such transaction.

        Policy answers an unknown id with status 200 and an error document
        (``{"status": "404 Not Found", "message": ...}``), so the body is
        checked, not only the status.
        """
        url = '{}/status/transactions/by_id/{}'.format(self.base_url, int(transaction_id))
        try:
            record = self._request_json('GET', url)
        except HTTPStatusError as err:
            if err.status_code == 404:
                raise ConfigurationError('the policy server knows no transaction {}'.format(transaction_id)) from None
            raise
        if isinstance(record, dict) and isinstance(record.get('files'), dict):
            return record
        if isinstance(record, dict) and str(record.get('status', '')).startswith('404'):
            raise ConfigurationError('the policy server knows no transaction {}: {}'.format(
                transaction_id, self._redact(record.get('message', ''), url)))
        raise RecordError('the policy server sent no file list for transaction {}: {}'.format(
            transaction_id, self._redact(repr(record), url)))


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
    os.makedirs(args.destination, exist_ok=True)
    config = client_config(args)
    downloader = Downloader(config=config, **({'cart_api_url': args.cart_url} if args.cart_url else {}))
    if event is None:
        records = TransactionRecords(args.policy_url, config=config)
        console.note('reading transaction {} from {}'.format(args.transaction_id, show_url(records.base_url)))
        with calling('policy'):
            record = records.transaction(args.transaction_id)
    console.note('waiting up to {:g} s for the cart'.format(args.timeout))
    progress = console.progress('download')
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


def _summarise(console: Console, args: argparse.Namespace, paths: List[str]) -> None:
    total = sum(os.path.getsize(path) for path in paths)
    if args.transaction_id is not None:
        console.result('transaction: {}'.format(args.transaction_id))
    console.result('files: {} ({}), every one verified against its hash'.format(len(paths), human_bytes(total)))
    console.result('written to: {}'.format(os.path.join(args.destination, 'data')))
    if args.verbose:
        for path in sorted(paths):
            console.result('  {}'.format(os.path.relpath(path, args.destination).replace(os.sep, '/')))
