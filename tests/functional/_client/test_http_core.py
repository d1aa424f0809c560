"""The HTTP client every client object holds (retries, deadlines, error mapping), and the CommonBase shim."""
from __future__ import annotations

import time

import pytest
import requests

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import (
    ConfigurationError, HTTPStatusError, InvalidResponseError, PacificaError,
    RequestTimeout, ServerConnectionError,
)
from pacifica._client.common import CommonBase
from pacifica._client.transport import HttpClient
from pacifica._client.redact import redact_auth, redact_url
from tests.helpers.server import Raw, Reply

FAST = TransferConfig(connect_timeout=1, read_timeout=1, backoff_factor=0.01, call_deadline=3)


def test_server_url_prefers_kwargs_then_env_then_default(monkeypatch):
    obj = CommonBase()
    monkeypatch.setenv('INGEST_PORT', '9999')
    monkeypatch.setenv('INGEST_ADDR', '')
    obj._server_url([('port', 8066), ('addr', '127.0.0.1'), ('proto', 'http')], 'INGEST', {'proto': 'https'})
    assert (obj._port, obj._addr, obj._proto) == ('9999', '127.0.0.1', 'https')


def test_session_is_none_until_setup():
    obj = CommonBase()
    assert CommonBase.session is None and obj.session is None
    obj._setup_requests_session()
    assert isinstance(obj.session, requests.Session)
    assert obj.session.get_adapter('http://x').max_retries.total == TransferConfig().retries


def test_get_retries_503_then_succeeds(server):
    replies = iter([Reply(503, 'busy'), Reply(503, 'busy', {'Retry-After': '0'}), Reply.json({'ok': 1})])
    server.route('GET', '/x', lambda req: next(replies))
    assert HttpClient(config=FAST).call('GET', server.url + '/x', document=True).document == {'ok': 1}
    assert server.count('GET', '/x') == 3


def test_post_is_not_repeated_after_503(server):
    server.route('POST', '/x', Reply(503, 'busy'))
    with pytest.raises(HTTPStatusError) as info:
        HttpClient(config=FAST).call('POST', server.url + '/x', document=True, data=b'1')
    assert info.value.status_code == 503 and server.count('POST', '/x') == 1


def test_trickling_body_hits_the_deadline(server):
    def trickle(handler):
        handler.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n')
        for _ in range(100):
            handler.wfile.write(b' ')
            handler.wfile.flush()
            time.sleep(0.2)
    server.route('GET', '/slow', Raw(trickle))
    config = TransferConfig(connect_timeout=1, read_timeout=1, call_deadline=1.5, retries=0)
    start = time.monotonic()
    with pytest.raises(RequestTimeout) as info:
        HttpClient(config=config).call('GET', server.url + '/slow', document=True)
    assert time.monotonic() - start < 3
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, requests.Timeout)


@pytest.mark.parametrize('retries', [0, 1])
def test_refused_connection_is_server_connection_error(retries):
    """Not RequestTimeout: urllib3 2 derives NewConnectionError from ConnectTimeoutError."""
    sock = __import__('socket').socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ServerConnectionError) as info:
        HttpClient(config=TransferConfig(retries=retries, backoff_factor=0)).call(
            'GET', 'http://127.0.0.1:{}/'.format(port))
    assert isinstance(info.value, requests.ConnectionError) and isinstance(info.value, PacificaError)
    assert not isinstance(info.value, RequestTimeout)


def test_invalid_json_is_invalid_response_error(server):
    server.route('GET', '/x', b'<html>')
    with pytest.raises(InvalidResponseError) as info:
        HttpClient(config=FAST).call('GET', server.url + '/x', document=True)
    assert isinstance(info.value, ValueError) and '<html>' in str(info.value)


def test_auth_values_never_shown(server, debug_logs):
    server.route('GET', '/x', Reply(500, 'nope'))
    secret = 's3cr3t-pw'
    client = HttpClient(config=TransferConfig(retries=0), auth={'auth': ('user', secret)})
    with pytest.raises(HTTPStatusError) as info:
        client.call('GET', 'http://user:{}@127.0.0.1:{}/x'.format(secret, server.port))
    assert secret not in str(info.value) and secret not in debug_logs.text
    assert secret not in repr(redact_auth(client.auth))
    assert redact_url('http://u:p@h:1/a') == 'http://***@h:1/a'


@pytest.mark.parametrize('bad', [0, -1, 'soon', (1, 2, 3), float('inf')])
def test_bad_timeouts_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError):
        HttpClient(timeout=bad)


@pytest.mark.parametrize('retries', [0, 1])
@pytest.mark.parametrize('bulk', [False, True])
def test_read_timeout_after_retries_is_request_timeout(server, retries, bulk):
    """urllib3 ends a GET whose read timeouts used up the retries with MaxRetryError(ReadTimeoutError),
    which requests raises as ConnectionError: it is still a timeout."""
    server.route('GET', '/stall', Raw(lambda handler: time.sleep(0.8)))  # silent, then hangs up
    config = TransferConfig(connect_timeout=1, read_timeout=0.2, backoff_factor=0, call_deadline=30, retries=retries)
    with pytest.raises(RequestTimeout) as info:
        HttpClient(config=config).call('GET', server.url + '/stall', bulk=bulk)
    assert isinstance(info.value, requests.Timeout) and isinstance(info.value, TimeoutError)
    assert 'ReadTimeoutError' in str(info.value) and 'deadline' not in str(info.value)
    assert server.count('GET', '/stall') == retries + 1


def test_call_headers_merge_with_auth_headers(server):
    seen = []
    server.route('POST', '/x', lambda req: seen.append(dict(req.headers)) or Reply.json({}))
    client = HttpClient(config=FAST, auth={'headers': {'X-Token': 'tok', 'Content-Type': 'text/plain'}})
    client.call('POST', server.url + '/x', data=b'{}', headers={'Content-Type': 'application/json'})
    client.call('POST', server.url + '/x', data=b'{}')
    assert seen[0]['X-Token'] == 'tok' and seen[0]['Content-Type'] == 'application/json'
    assert seen[1]['X-Token'] == 'tok' and seen[1]['Content-Type'] == 'text/plain'
    assert client.auth == {'headers': {'X-Token': 'tok', 'Content-Type': 'text/plain'}}  # not changed in place
