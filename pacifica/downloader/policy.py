"""Transaction records from the policy server, and the files they list.

:func:`fetch_transaction` reads a record from ``GET
<policy>/status/transactions/by_id/<id>``; :class:`TransactionInfo` turns one
into the file list of a cart request. The record is what
:meth:`~pacifica.downloader.Downloader.transactioninfo` takes.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

from pacifica._client.config import TimeoutArg, TransferConfig
from pacifica._client.endpoints import POLICY_SERVER, check_url, join_url, server_parts
from pacifica._client.exceptions import (
    ConfigurationError, HTTPStatusError, InvalidResponseError, UnknownTransactionError,
    UnknownTransactionStatusError, UsageError,
)
from pacifica._client.redact import redact_url
from pacifica._client.transport import HttpClient

from ._records import CartFile, transaction_entries, yield_cart_files

LOGGER = logging.getLogger(__name__)

#: Path of a transaction's record below the policy server's base URL.
TRANSACTION_PATH = '/status/transactions/by_id/{}'

class TransactionInfo:
    """Turns a transaction info into the file list of a cart request."""

    @staticmethod
    def yield_files(transinfo: Any) -> Callable[[], Iterator[CartFile]]:
        """Return a callable that produces one ``{'id', 'path', 'hashtype', 'hashsum'}`` per file.

        ``transinfo['files']`` maps each file id to its metadata; ``path`` is
        ``'<subdir>/<name>'`` (a missing ``subdir`` is ``''``, a file at the
        top). Every file is checked now, so a missing or
        mistyped field raises :class:`~pacifica._client.exceptions.RecordError`
        naming it before any cart is requested.
        """
        return yield_cart_files(transaction_entries(transinfo))


def policy_base_url(policy_url: Optional[str] = None) -> str:
    """The policy server's base URL: ``policy_url``, else from ``POLICY_PROTO``/``POLICY_ADDR``/``POLICY_PORT``.

    The parts are resolved as :class:`~pacifica.uploader.metadata.PolicyQuery`
    resolves them (keyword, then environment, then ``http``, ``127.0.0.1``,
    ``8181``). ``POLICY_UPLOADER_URL`` and ``POLICY_INGEST_URL`` name other
    endpoints and are not used. Raises ConfigurationError for a URL that is
    not absolute http(s).
    """
    if not policy_url:
        parts = server_parts(POLICY_SERVER, 'POLICY', {})
        policy_url = join_url(parts['proto'], parts['addr'], parts['port'])
    return check_url(policy_url, 'policy server URL').rstrip('/')


def fetch_transaction(transaction_id: Any, *, policy_url: Optional[str] = None,
                      auth: Optional[Mapping[str, Any]] = None, timeout: TimeoutArg = None,
                      config: Optional[TransferConfig] = None) -> Dict[str, Any]:
    """Return the record of transaction ``transaction_id`` as the policy server serves it.

    The record is the dict :meth:`Downloader.transactioninfo
    <pacifica.downloader.Downloader.transactioninfo>` downloads: ``files``
    maps each file id to its ``name``, ``subdir``, ``size``, ``hashtype``,
    ``hashsum`` and ``mtime``, beside the transaction's own fields.

    ``policy_url`` is the server's base URL (default: see
    :func:`policy_base_url`); ``auth`` a dict of extra requests keywords;
    ``timeout`` and ``config`` as for every client object. The request is a
    GET, retried like any other.

    Raises :class:`~pacifica._client.exceptions.UnknownTransactionError` when
    policy knows no such transaction (it says so with status 404, or with
    status 200 and an error document),
    :class:`~pacifica._client.exceptions.InvalidResponseError` for a reply
    that is not a record, and the transport errors of every call.
    """
    transaction_id = check_transaction_id(transaction_id)
    return _transaction(HttpClient(config, auth, timeout=timeout), policy_base_url(policy_url), transaction_id)


def check_transaction_id(value: Any) -> int:
    """``value`` as a transaction id: a positive integer, or its decimal text; ConfigurationError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UsageError('a transaction id is an integer, not {}'.format(type(value).__name__))
    text = str(value).strip()
    if not (text.isdigit() and text.isascii()) or int(text) <= 0:
        raise ConfigurationError('{!r} is not a transaction id (a positive integer)'.format(value))
    return int(text)


def _transaction(http: HttpClient, base_url: str, transaction_id: int) -> Dict[str, Any]:
    """GET the record of ``transaction_id`` from the policy server at ``base_url``."""
    url = base_url + TRANSACTION_PATH.format(transaction_id)
    unknown = 'the policy server at {} knows no transaction {}'.format(redact_url(base_url), transaction_id)
    try:
        record = http.call('GET', url, document=True).document
    except HTTPStatusError as err:
        if err.status_code == 404:
            raise UnknownTransactionStatusError(unknown, transaction_id, status_code=err.status_code, body=err.body,
                                                url=err.url) from None
        raise
    if isinstance(record, dict) and isinstance(record.get('files'), dict):
        LOGGER.debug('transaction %d: %d file(s)', transaction_id, len(record['files']))
        return record
    if isinstance(record, dict) and str(record.get('status', '')).startswith('404'):
        message = record.get('message')
        raise UnknownTransactionError(unknown + (': {}'.format(http.redact(message, url)) if message else ''),
                                      transaction_id)
    raise InvalidResponseError('GET {} answered no transaction record (no "files" object): {}'.format(
        redact_url(url), http.redact(repr(record), url)))


__all__ = ['TransactionInfo', 'fetch_transaction', 'policy_base_url', 'check_transaction_id', 'TRANSACTION_PATH']
