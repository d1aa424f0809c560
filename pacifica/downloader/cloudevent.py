"""Read the files of a cloud event, as the Pacifica Notifications service sends it."""
from __future__ import annotations

from typing import Any, Callable, Iterator

from ._records import CartFile, cloudevent_entries, yield_cart_files


class CloudEvent:
    """Turns a cloud event into the file list of a cart request."""

    @staticmethod
    def yield_files(cloudevent: Any) -> Callable[[], Iterator[CartFile]]:
        """Return a callable that produces one ``{'id', 'path', 'hashtype', 'hashsum'}`` per file.

        The event's ``data`` is a flat list of metadata objects; those whose
        ``destinationTable`` is ``'Files'`` are files (``id`` from ``_id``,
        ``path`` is ``'<subdir>/<name>'``, a missing ``subdir`` being ``''``).
        Every file is checked now, so a missing or mistyped field raises
        :class:`~pacifica._client.exceptions.RecordError` naming it.
        """
        return yield_cart_files(cloudevent_entries(cloudevent))
