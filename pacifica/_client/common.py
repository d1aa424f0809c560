"""``CommonBase``: the base class pacifica-uploader/downloader 0.3 clients had, kept for code written against it.

Only what 0.3.1 code used lives here: the class attribute ``session``,
``_server_url`` (endpoint parts as ``_<part>`` attributes) and
``_setup_requests_session``. The clients' work goes through the
:class:`~pacifica._client.transport.HttpClient` each of them holds.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple

import requests

from .config import TransferConfig
from .endpoints import server_parts
from .transport import HttpClient, new_session


class CommonBase:
    """Endpoint settings and a session, as 0.3.1's clients inherited them."""

    session: Optional[requests.Session] = None
    #: The transport of a client that has one (its session is :attr:`session`).
    _http: Optional[HttpClient] = None

    def _server_url(self, parts: Sequence[Tuple[str, Any]], env_prefix: str, kwargs: Mapping[str, Any]) -> None:
        """Set ``self._<part>`` from ``kwargs[part]``, env ``<PREFIX>_<PART>``, or the default."""
        for part, value in server_parts(parts, env_prefix, kwargs).items():
            setattr(self, '_{}'.format(part), value)

    def _setup_requests_session(self) -> None:
        """Give this object a retrying, deadline-aware session (its client's, when it has one)."""
        self.session = self._http.session if self._http is not None else new_session(TransferConfig())


__all__ = ['CommonBase']
