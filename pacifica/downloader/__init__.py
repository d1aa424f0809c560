"""Download Pacifica data through cartd: verified, safe, resumable.

:class:`Downloader` takes a Policy transaction info or a Notifications cloud
event, asks cartd for a cart of its files and writes them under
``<location>/<filename>/``, each checked against its recorded hash and with
its recorded modification time. :func:`fetch_transaction` reads a
transaction info from the policy server. :func:`download_parallel` and
:func:`download_transactions` fetch many transactions (or one large one) as
several carts at once into one folder; :func:`manifest_transactions` lists
those of a sharded upload's manifest, :func:`dataset_transactions` those the
servers hold for a dataset id.
:class:`~pacifica.downloader.cartapi.CartAPI` is the cartd client beneath it;
:class:`~pacifica.downloader.policy.TransactionInfo` and
:class:`~pacifica.downloader.cloudevent.CloudEvent` turn records into cart
requests. Every error raised on purpose is a :class:`PacificaError`; the
download ones are also ``AssertionError``, as in the old package.
"""
from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import *  # noqa: F401,F403 - the exception tree is public
from pacifica._client.exceptions import __all__ as _exception_names
from pacifica._client.keywords import IgnoredKeywordWarning
from pacifica._client.version import __version__

from .cartapi import CartAPI
from .cloudevent import CloudEvent
from .downloader import Downloader
from .parallel import (
    ParallelResult, dataset_transactions, download_parallel, download_transactions, manifest_transactions,
)
from .policy import TransactionInfo, fetch_transaction

__all__ = ['Downloader', 'CartAPI', 'CloudEvent', 'TransactionInfo', 'fetch_transaction', 'download_parallel',
           'download_transactions', 'manifest_transactions', 'dataset_transactions', 'ParallelResult',
           'TransferConfig',
           'IgnoredKeywordWarning', '__version__', *_exception_names]
