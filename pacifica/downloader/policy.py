"""Read the files of a transaction info, as Policy serves it at ``/status/transactions/by_id/<id>``."""
from __future__ import annotations

from typing import Any, Callable, Iterator

from ._records import CartFile, transaction_entries, yield_cart_files


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
