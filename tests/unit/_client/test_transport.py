"""HttpClient.call's keyword options and its own retries, without sockets (a canned session answers)."""
from __future__ import annotations

import json

import pytest

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import ConfigurationError, HTTPStatusError, InvalidResponseError
from pacifica._client.retry import IDEMPOTENT_METHODS
from pacifica._client.transport import HttpClient
from tests.helpers.canned import answer_with

URL = 'http://server.invalid:9/doc'
OK = (200, {'Content-Type': 'application/json'}, json.dumps({'ok': 1}).encode())
NOT_JSON = (200, {'Content-Type': 'application/json'}, b'{"ok": ')
QUICK = TransferConfig(retries=2, backoff_factor=0, connect_timeout=2, read_timeout=3)


def test_the_call_options_reach_requests_and_the_auth_dict_is_left_alone(monkeypatch):
    adapter = answer_with(monkeypatch, {'POST': OK})
    auth = {'headers': {'X-Token': 'tok', 'Content-Type': 'text/plain'}, 'verify': False}
    client = HttpClient(QUICK, auth)
    client.call('POST', URL, data=b'{}', params={'job_id': 5}, headers={'Content-Type': 'application/json'},
                timeout=(1, 9))
    client.call('POST', URL, data=b'{}')
    (first, first_options), (second, second_options) = adapter.sent
    assert first.url == URL + '?job_id=5' and first.body == b'{}'
    assert first.headers['X-Token'] == 'tok' and first.headers['Content-Type'] == 'application/json'
    assert first_options['timeout'] == (1, 9) and first_options['verify'] is False and first_options['stream']
    assert second.headers['Content-Type'] == 'text/plain' and second_options['timeout'] == (2, 3)
    assert auth == {'headers': {'X-Token': 'tok', 'Content-Type': 'text/plain'}, 'verify': False}


def test_accept_lists_the_statuses_the_caller_handles(monkeypatch):
    answer_with(monkeypatch, {'HEAD': (404, {}, b''), 'DELETE': (404, {}, b'')})
    client = HttpClient(QUICK)
    assert client.call('HEAD', URL, accept=range(100, 600)).status_code == 404
    with pytest.raises(HTTPStatusError) as caught:
        client.call('DELETE', URL)
    assert caught.value.status_code == 404 and '404' in str(caught.value)


def test_a_broken_json_body_of_a_repeatable_call_is_asked_for_again(monkeypatch):
    adapter = answer_with(monkeypatch, {'GET': [NOT_JSON, NOT_JSON, OK]})
    assert HttpClient(QUICK).call('GET', URL, document=True).document == {'ok': 1}
    assert len(adapter.sent) == 3


def test_a_broken_json_body_stays_broken_after_the_retries(monkeypatch):
    adapter = answer_with(monkeypatch, {'GET': NOT_JSON})
    with pytest.raises(InvalidResponseError):
        HttpClient(QUICK).call('GET', URL, document=True)
    assert len(adapter.sent) == QUICK.retries + 1


@pytest.mark.parametrize('repeatable, sent', [(IDEMPOTENT_METHODS, 1), (IDEMPOTENT_METHODS | {'POST'}, 3)],
                         ids=['ingest-POST', 'read-only-POST'])
def test_a_post_is_asked_for_again_only_where_it_only_reads(monkeypatch, repeatable, sent):
    adapter = answer_with(monkeypatch, {'POST': NOT_JSON})
    with pytest.raises(InvalidResponseError):
        HttpClient(QUICK, repeatable_methods=repeatable).call('POST', URL, document=True, data=b'{}')
    assert len(adapter.sent) == sent


def test_a_body_that_cannot_be_sent_twice_is_not_sent_twice(monkeypatch):
    adapter = answer_with(monkeypatch, {'PUT': NOT_JSON})
    with pytest.raises(InvalidResponseError):
        HttpClient(QUICK).call('PUT', URL, document=True, data=iter([b'{}']))
    assert len(adapter.sent) == 1


def test_an_error_page_that_is_no_json_is_the_status_error(monkeypatch):
    answer_with(monkeypatch, {'GET': (500, {}, b'<h1>down</h1>')})
    with pytest.raises(HTTPStatusError) as caught:
        HttpClient(QUICK).call('GET', URL, accept=range(200, 600), document=True)
    assert caught.value.status_code == 500 and 'down' in caught.value.body


def test_an_echoed_password_is_blanked_in_the_error(monkeypatch):
    secret = 'pw-that-must-not-show'
    answer_with(monkeypatch, {'GET': (401, {}, 'no access for {}'.format(secret).encode())})
    with pytest.raises(HTTPStatusError) as caught:
        HttpClient(QUICK, {'auth': ('alice', secret)}).call('GET', URL)
    assert secret not in str(caught.value) and secret not in caught.value.body


@pytest.mark.parametrize('config, auth', [('fast', None), (None, ('alice', 'pw')), (None, 'token')])
def test_what_is_no_config_or_auth_dict_is_refused(config, auth):
    with pytest.raises(ConfigurationError):
        HttpClient(config, auth)


def test_the_auth_setter_checks_too():
    client = HttpClient()
    client.auth = {'verify': False}
    assert client.auth == {'verify': False}
    with pytest.raises(ConfigurationError):
        client.auth = ('alice', 'pw')
