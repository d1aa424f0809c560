"""CartAPI against the cartd stand-in: URLs, the cart request, waiting, errors."""
from __future__ import annotations

import logging
import time

import pytest
import requests

from pacifica.downloader import (
    CartDownloadError, CartFailedError, CartRequestError, CartTimeoutError, DownloadError, IgnoredKeywordWarning,
    PacificaTimeoutError,
)
from pacifica.downloader.cartapi import LOGGER, CartAPI
from pacifica.downloader.policy import TransactionInfo
from tests.helpers.cartd import transaction_info
from tests.helpers.server import Reply

from .conftest import FAST, FILES

SECRET = 's3cr3t-pa55'


def test_logger_is_a_logger():
    assert isinstance(LOGGER, logging.Logger)


def test_url_positional_keyword_env_and_parts(monkeypatch):
    assert CartAPI('http://h:1').cart_api_url == 'http://h:1'
    assert CartAPI(cart_api_url='http://h:2').cart_api_url == 'http://h:2'
    monkeypatch.setenv('CARTD_CART_API_URL', 'https://env:3')
    assert CartAPI().cart_api_url == 'https://env:3'
    assert CartAPI('http://h:4').cart_api_url == 'http://h:4'
    monkeypatch.delenv('CARTD_CART_API_URL')
    assert CartAPI().cart_api_url == 'http://127.0.0.1:8081'
    monkeypatch.setenv('CARTD_PROTO', 'https')
    monkeypatch.setenv('CARTD_ADDR', 'cart.example')
    assert CartAPI(port=9).cart_api_url == 'https://cart.example:9'
    monkeypatch.setenv('CARTD_PORT', '7')
    assert CartAPI().cart_api_url == 'https://cart.example:7'


def test_auth_property_and_default():
    auth = {'auth': ('user', SECRET), 'verify': False}
    assert CartAPI('http://h:1', auth=auth).auth == auth
    assert CartAPI('http://h:1').auth == {}


def test_unknown_keyword_is_ignored_with_a_warning():
    with pytest.warns(IgnoredKeywordWarning, match="'atuh' \\(did you mean 'auth'\\?\\)") as caught:
        api = CartAPI('http://h:1', atuh={'auth': ('u', 'p')})
    assert api.auth == {} and len(caught) == 1
    assert caught[0].filename == __file__


def test_setup_cart_posts_fileids_and_extra_args(cartd):
    api = CartAPI(cartd.url, extra_args={'bundle': False, 'note': ['x']}, config=FAST)
    cart_url = api.setup_cart(TransactionInfo.yield_files(transaction_info(FILES)))
    uid = cart_url.rsplit('/', 1)[1]
    assert cart_url == '{}/{}'.format(cartd.url, uid) and len(uid) == 36
    body = cartd.carts[uid].body
    assert body['bundle'] is False and body['note'] == ['x']
    assert [item['id'] for item in body['fileids']] == ['103', '104', '105']
    assert set(body['fileids'][0]) == {'id', 'path', 'hashtype', 'hashsum'}
    post = [req for req in cartd.server.requests if req.method == 'POST'][0]
    assert post.headers['Content-Type'] == 'application/json'


def test_each_cart_gets_a_new_uuid(cartd):
    api = CartAPI(cartd.url, config=FAST)
    produce = TransactionInfo.yield_files(transaction_info(FILES))
    assert api.setup_cart(produce) != api.setup_cart(produce)


@pytest.mark.parametrize('status', [200, 400, 500, 503])
def test_cart_request_not_201_is_an_assertion_error_and_not_resent(cartd, status):
    cartd.behaviour.post_status = status
    with pytest.raises(CartRequestError) as caught:
        CartAPI(cartd.url, config=FAST).setup_cart(lambda: iter([]))
    assert isinstance(caught.value, AssertionError)
    assert str(status) in str(caught.value) and 'refused' in str(caught.value)
    assert cartd.server.count('POST', cartd.server.requests[0].path) == 1


def test_extra_args_must_be_json_and_not_replace_fileids():
    with pytest.raises(ValueError):
        CartAPI('http://h:1', extra_args={'fileids': []})
    with pytest.raises(ValueError):
        CartAPI('http://h:1', extra_args={'x': object()})
    with pytest.raises(ValueError):
        CartAPI('http://h:1', extra_args=['bundle'])


def test_wait_for_cart_polls_until_ready(cartd):
    cartd.behaviour.staging_polls = 3
    api = CartAPI(cartd.url, config=FAST)
    cart_url = api.setup_cart(lambda: iter([]))
    assert api.wait_for_cart(cart_url, timeout=10) == cart_url
    assert cartd.carts[cart_url.rsplit('/', 1)[1]].heads == 4


def test_wait_for_cart_error_state_carries_message(cartd):
    cartd.behaviour.fail_message = 'Failed to pull file(archive says no)'
    api = CartAPI(cartd.url, config=FAST)
    with pytest.raises(CartFailedError, match='archive says no') as caught:
        api.wait_for_cart(api.setup_cart(lambda: iter([])))
    assert isinstance(caught.value, AssertionError) and '500' in str(caught.value)


def test_wait_for_cart_unknown_cart_is_404(cartd):
    with pytest.raises(CartFailedError, match='404'):
        CartAPI(cartd.url, config=FAST).wait_for_cart(cartd.url + '/no-such-cart')


def test_wait_for_cart_head_500_without_error_state(cartd):
    cartd.behaviour.head_status = 500
    api = CartAPI(cartd.url, config=FAST)
    with pytest.raises(CartFailedError, match='500'):
        api.wait_for_cart(api.setup_cart(lambda: iter([])))


@pytest.mark.parametrize('busy', [429, 502, 503, 504])
def test_wait_for_cart_polls_on_through_a_busy_server(server, busy):
    replies = iter([Reply(busy, b'')] * 8 + [Reply(204, b'', {'X-Pacifica-Status': 'ready'})])
    server.route('HEAD', '/cart', lambda request: next(replies))
    assert CartAPI(server.url, config=FAST).wait_for_cart(server.url + '/cart', timeout=10) == server.url + '/cart'
    assert server.count('HEAD', '/cart') == 9


def test_wait_for_cart_busy_until_the_deadline_is_a_timeout(server):
    server.route('HEAD', '/cart', Reply(503, b''))
    with pytest.raises(CartTimeoutError, match='busy'):
        CartAPI(server.url, config=FAST).wait_for_cart(server.url + '/cart', timeout=1)


def test_wait_for_cart_timeout_is_wall_clock(server):
    def slow_staging(request):
        time.sleep(0.3)  # each HEAD takes a while: counting polls would overrun
        return Reply(204, b'', {'X-Pacifica-Status': 'staging', 'X-Pacifica-Message': ''})
    server.route('HEAD', '/cart', slow_staging)
    api = CartAPI(server.url, config=FAST)
    started = time.monotonic()
    with pytest.raises(CartTimeoutError, match='staging') as caught:
        api.wait_for_cart(server.url + '/cart', timeout=1)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0
    assert isinstance(caught.value, AssertionError) and isinstance(caught.value, PacificaTimeoutError)


def test_wait_for_cart_rejects_bad_timeout():
    with pytest.raises(ValueError):
        CartAPI('http://h:1').wait_for_cart('http://h:1/x', timeout='soon')


@pytest.mark.parametrize('status', [202, 403, 404, 500])
def test_open_cart_refuses_non_200(cartd, status):
    cartd.behaviour.get_status = status
    with pytest.raises(CartDownloadError) as caught:
        CartAPI(cartd.url, config=FAST).open_cart(cartd.url + '/x', 'data')
    assert caught.value.status_code == status and isinstance(caught.value, DownloadError)
    assert 'forced status' in str(caught.value)


def test_open_cart_url_encodes_filename(server):
    server.route('GET', '/cart', Reply(200, b''))
    CartAPI(server.url, config=FAST).open_cart(server.url + '/cart', 'my data&x=1#?.tar').close()
    assert server.requests[-1].query == {'filename': 'my data&x=1#?.tar'}


def test_callers_session_is_used(cartd):
    seen = []
    session = requests.Session()
    session.hooks['response'].append(lambda resp, *args, **kwargs: seen.append(resp.request.method))
    api = CartAPI(cartd.url, session=session, config=FAST)
    assert api.session is session
    api.wait_for_cart(api.setup_cart(lambda: iter([])))
    assert seen == ['POST', 'HEAD']


def test_auth_is_sent_and_never_shown(cartd, debug_logs):
    cartd.behaviour.fail_message = 'nope'
    api = CartAPI(cartd.url, auth={'auth': ('user', SECRET), 'headers': {'X-Token': SECRET}}, config=FAST)
    with pytest.raises(CartFailedError) as caught:
        api.wait_for_cart(api.setup_cart(lambda: iter([])))
    assert all('X-Token' in req.headers and 'Authorization' in req.headers for req in cartd.server.requests)
    post = [req for req in cartd.server.requests if req.method == 'POST'][0]
    assert post.headers['Content-Type'] == 'application/json'  # the call's header merged with auth's
    assert api.auth['headers'] == {'X-Token': SECRET}
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert SECRET not in debug_logs.text and 'CartAPI URL' in debug_logs.text


def test_delete_cart(cartd):
    api = CartAPI(cartd.url, config=FAST)
    cart_url = api.setup_cart(lambda: iter([]))
    api.delete_cart(cart_url)
    assert cartd.carts[cart_url.rsplit('/', 1)[1]].deleted
    api.delete_cart(cart_url)  # already gone: 404 is fine
