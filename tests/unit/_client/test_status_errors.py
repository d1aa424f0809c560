"""Every failure an HTTP status causes is an HTTPStatusError with that ``status_code``, whatever else it is.

No sockets: each client's session answers from a canned table (an adapter
that builds the reply a server would have sent).
"""
from __future__ import annotations

import copy
import io
import json
import pickle
from typing import Any, Dict, Tuple

import pytest

from pacifica._client.cli import exit_code_for
from pacifica._client.exceptions import (
    EXIT_SERVER, EXIT_USAGE, CartDownloadError, CartFailedError, CartRequestError, HTTPStatusError,
    UnknownTransactionError, UnknownTransactionStatusError, UploadStatusError,
)
from pacifica._client.transport import HttpClient
from pacifica.downloader import fetch_transaction
from pacifica.downloader.cartapi import CartAPI
from pacifica.uploader.metadata import MetaData
from pacifica.uploader.metadata.policyquery import PolicyQuery
from pacifica.uploader.uploader import Uploader
from tests.helpers.canned import answer_with

URL = 'http://server.invalid:9'
CART = URL + '/cart'


def _error_page(status: int) -> Tuple[int, Dict[str, str], bytes]:
    return status, {'Content-Type': 'text/html'}, '<h1>{}</h1>'.format(status).encode()


def _json(status: int, document: Any, **headers: str) -> Tuple[int, Dict[str, str], bytes]:
    return status, {'Content-Type': 'application/json', **headers}, json.dumps(document).encode()


#: (case id, canned replies, the call, the class it must also be, the status, the commands' exit code)
CASES = [
    ('HttpClient.call', {'GET': _error_page(500)}, lambda: HttpClient().call('GET', URL + '/x'),
     HTTPStatusError, 500, EXIT_SERVER),
    ('Uploader.upload', {'POST': _json(500, {'status': 'error'})},
     lambda: Uploader(upload_url=URL + '/upload').upload(io.BytesIO(b'tar')), UploadStatusError, 500, EXIT_SERVER),
    ('Uploader.getstate', {'GET': _error_page(404)}, lambda: Uploader(status_url=URL + '/get_state').getstate(1),
     HTTPStatusError, 404, EXIT_SERVER),
    ('PolicyQuery.get_results', {'POST': _error_page(500)},
     lambda: PolicyQuery(5, uploader_url=URL + '/uploader').get_results(), HTTPStatusError, 500, EXIT_SERVER),
    ('PolicyQuery.valid_metadata', {'POST': _error_page(502)},
     lambda: PolicyQuery(5, ingest_url=URL + '/ingest').valid_metadata(MetaData()), HTTPStatusError, 502, EXIT_SERVER),
    ('fetch_transaction 404', {'GET': _error_page(404)}, lambda: fetch_transaction(7, policy_url=URL),
     UnknownTransactionError, 404, EXIT_USAGE),
    ('fetch_transaction 500', {'GET': _error_page(500)}, lambda: fetch_transaction(7, policy_url=URL),
     HTTPStatusError, 500, EXIT_SERVER),
    ('CartAPI.setup_cart', {'POST': _error_page(500)}, lambda: CartAPI(URL).setup_cart(lambda: iter([])),
     CartRequestError, 500, EXIT_SERVER),
    ('CartAPI.wait_for_cart unknown cart', {'HEAD': (404, {}, b'')}, lambda: CartAPI(URL).wait_for_cart(CART, 5),
     CartFailedError, 404, EXIT_SERVER),
    ('CartAPI.wait_for_cart state error', {'HEAD': (500, {'X-Pacifica-Status': 'error'}, b'')},
     lambda: CartAPI(URL).wait_for_cart(CART, 5), CartFailedError, 500, EXIT_SERVER),
    ('CartAPI.open_cart', {'GET': _error_page(404)}, lambda: CartAPI(URL).open_cart(CART, 'x.tar'),
     CartDownloadError, 404, EXIT_SERVER),
    ('CartAPI.delete_cart', {'DELETE': _error_page(500)}, lambda: CartAPI(URL).delete_cart(CART),
     CartFailedError, 500, EXIT_SERVER),
]


@pytest.mark.parametrize('replies, call, also, status, exit_code', [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_a_status_caused_failure_is_an_http_status_error_with_its_status(monkeypatch, replies, call, also, status,
                                                                         exit_code):
    answer_with(monkeypatch, replies)
    with pytest.raises(HTTPStatusError) as caught:
        call()
    assert isinstance(caught.value, also), 'raised {!r}'.format(caught.value)
    assert caught.value.status_code == status
    assert exit_code_for(caught.value) == exit_code


@pytest.mark.parametrize('cls', [CartRequestError, CartFailedError, CartDownloadError])
def test_cart_status_errors_stay_assertion_errors(cls):
    assert issubclass(cls, HTTPStatusError) and issubclass(cls, AssertionError)


def test_cart_download_error_keeps_one_status_code_and_body():
    """Its ``status_code`` and ``body`` are HTTPStatusError's, not a second copy of their own."""
    err = CartDownloadError('cart GET answered HTTP 503', status_code=503, body='x' * 10000)
    assert err.status_code == 503 and len(err.body) < 10000
    assert 'status_code' not in vars(CartDownloadError) and '__init__' not in vars(CartDownloadError)


def test_a_reply_carries_the_response_and_its_document(monkeypatch):
    answer_with(monkeypatch, {'GET': _json(200, {'ok': 1})})
    reply = HttpClient().call('GET', URL + '/x', document=True)
    assert reply.document == {'ok': 1} and reply.status_code == 200
    assert reply.headers['Content-Type'] == 'application/json' and reply.response.status_code == 200


@pytest.mark.parametrize('error', [
    HTTPStatusError('GET x answered HTTP 500', 500, 'boom', 'http://h/x'),
    CartRequestError('cart POST answered 500', 500, 'full', 'http://h/c'),
    CartFailedError('cart failed', 500, 'archive offline', 'http://h/c'),
    CartDownloadError('cart GET answered 404', status_code=404, body='gone'),
    UploadStatusError('ingest answered 500', 500, '{}', 'http://h/upload'),
    UnknownTransactionStatusError('no transaction 7', 7, status_code=404, body='', url='http://h/t/7'),
], ids=lambda error: type(error).__name__)
def test_status_errors_survive_pickle_and_copy(error):
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(clone) is type(error) and str(clone) == str(error)
        assert (clone.status_code, clone.body, clone.url) == (error.status_code, error.body, error.url)
        assert getattr(clone, 'transaction_id', None) == getattr(error, 'transaction_id', None)
