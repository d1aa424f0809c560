"""A requests session that answers from a table: client code runs its whole path, and no socket is opened."""
from __future__ import annotations

import io
from typing import Any, Dict, List, Tuple

import pytest
import requests
import urllib3
from requests.adapters import BaseAdapter, HTTPAdapter

from pacifica._client import transport

#: A status, its headers and its body, per request method (a list: one reply per request, the last one repeats).
Canned = Dict[str, Any]


class CannedAdapter(BaseAdapter):
    """Answers each request from the table, as the server would have; keeps what it was asked."""

    def __init__(self, replies: Canned) -> None:
        super().__init__()
        self.replies = replies
        #: (request, the keywords requests passed to send: stream, timeout, verify, cert, proxies).
        self.sent: List[Tuple[requests.PreparedRequest, Dict[str, Any]]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        replies = self.replies[str(request.method)]
        if isinstance(replies, list):
            status, headers, body = replies[min(len(self.sent), len(replies) - 1)]
        else:
            status, headers, body = replies
        self.sent.append((request, kwargs))
        raw = urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=status, preload_content=False)
        return HTTPAdapter().build_response(request, raw)

    def close(self) -> None:
        pass


def answer_with(monkeypatch: pytest.MonkeyPatch, replies: Canned) -> CannedAdapter:
    """Every client made afterwards gets ``replies`` (``{'GET': (500, {}, b'boom')}``); returns the adapter."""
    adapter = CannedAdapter(replies)

    def canned_session(*args: Any, **kwargs: Any) -> requests.Session:
        session = requests.Session()
        session.mount('http://', adapter)
        return session
    monkeypatch.setattr(transport, 'new_session', canned_session)
    return adapter
