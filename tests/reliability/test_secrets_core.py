"""Secrets in the shared HTTP core: nothing from ``auth`` or a URL's password is ever shown.

The autouse ``secrets`` fixture (conftest) scans every log record and every
PacificaError of each test; these tests drive the core into every failure
path with secrets in play, and check the scanner itself can fail.
"""
from __future__ import annotations

import base64
import logging
import os

import pytest

from pacifica._client.exceptions import (
    ConfigurationError, HTTPStatusError, PacificaError, ServerConnectionError, TransportError,
)
from tests.helpers.faults import KINDS, Fault, closed_port
from tests.helpers.server import Reply
from tests.reliability.conftest import (
    FAST, SECRET_KEY_DIR, SECRET_KEY_NAME, SECRET_PASSWORD, SECRET_TOKEN, SECRET_URL_PASSWORD, SecretScanner,
)
from pacifica._client.transport import HttpClient as Client

pytestmark = pytest.mark.timeout(30)

EVERY_FAULT = [
    Fault.reset_request(), Fault.reset_response('head'), Fault.reset_response('body'),
    Fault.http_status(503), Fault.http_status(429, retry_after=0), Fault.slow_headers(delay=5),
    Fault.trickle_body(interval=0.3), Fault.truncate_body(), Fault.invalid_json(), Fault.stall_request(5),
]


def test_every_fault_kind_is_covered():
    assert {fault.kind for fault in EVERY_FAULT} == set(KINDS)


@pytest.mark.parametrize('fault', EVERY_FAULT, ids=str)
@pytest.mark.parametrize('method', ['GET', 'POST'])
def test_failures_never_show_auth_or_url_password(upstream, proxy, secret_auth, fault, method):
    upstream.route(method, '/doc', Reply.json({'ok': True, 'pad': 'x' * 100}))
    proxy.inject('/doc', fault, times=100)
    url = 'http://bob:{}@127.0.0.1:{}/doc'.format(SECRET_URL_PASSWORD, proxy.port)
    with pytest.raises(PacificaError) as info:
        Client(config=FAST, auth=secret_auth).call(method, url, document=True, data=b'{}')
    assert '***@127.0.0.1' in str(info.value)  # the URL is shown, without its password


def test_refused_connection_never_shows_url_password(secret_auth):
    url = 'http://bob:{}@127.0.0.1:{}/doc'.format(SECRET_URL_PASSWORD, closed_port())
    with pytest.raises(ServerConnectionError):
        Client(config=FAST, auth=secret_auth).call('GET', url)


def test_a_server_echoing_the_credentials_does_not_leak_them(upstream):
    """A 401 page that quotes the Authorization header must not carry the token into the exception."""
    upstream.route('GET', '/doc', lambda req: Reply(401, 'bad credentials: {}'.format(req.headers)))
    auth = {'headers': {'Authorization': 'Bearer ' + SECRET_TOKEN}, 'cookies': {'session': SECRET_PASSWORD}}
    with pytest.raises(HTTPStatusError) as info:
        Client(config=FAST, auth=auth).call('GET', upstream.url + '/doc')
    assert info.value.status_code == 401 and 'bad credentials' in str(info.value)
    assert SECRET_TOKEN not in info.value.body


def test_a_server_echoing_basic_credentials_does_not_leak_them_encoded(upstream):
    upstream.route('GET', '/doc', lambda req: Reply(403, 'denied for {}'.format(req.headers.get('Authorization'))))
    with pytest.raises(HTTPStatusError) as info:
        Client(config=FAST, auth={'auth': ('alice', SECRET_PASSWORD)}).call('GET', upstream.url + '/doc')
    encoded = base64.b64encode('alice:{}'.format(SECRET_PASSWORD).encode()).decode()
    assert 'denied for Basic ***' in str(info.value) and encoded not in repr(info.value.args)


def test_a_missing_client_key_file_is_reported_without_its_path(tmp_path, upstream):
    """requests names a missing key file in its message; the path is the secret."""
    missing = str(tmp_path / SECRET_KEY_DIR / SECRET_KEY_NAME)
    cert = tmp_path / 'client.pem'
    cert.write_text('x')
    with pytest.raises(TransportError):
        Client(config=FAST, auth={'cert': (str(cert), missing)}).call('GET', upstream.url + '/doc')


@pytest.mark.parametrize('bad', [('alice', SECRET_PASSWORD), SECRET_TOKEN, ['auth', SECRET_PASSWORD]])
def test_auth_that_is_not_a_dict_is_a_configuration_error_without_its_value(bad):
    with pytest.raises(ConfigurationError) as info:
        Client(auth=bad)
    assert 'auth must be a dict' in str(info.value)


# ------------------------------------------------------------------ the scanner itself
def test_scanner_finds_a_secret_in_a_log_line(caplog, secrets):
    scanner = SecretScanner()
    logging.getLogger('pacifica.test').debug('auth is %s', ('alice', SECRET_PASSWORD))
    assert any('pacifica.test' in leak for leak in scanner.leaks(caplog))
    caplog.clear()  # planted on purpose: not a leak of the library


def test_scanner_finds_a_secret_in_an_exception_and_its_cause(caplog, secrets):
    scanner = SecretScanner()
    try:
        try:
            raise OSError('key file {} missing'.format(os.path.join(SECRET_KEY_DIR, SECRET_KEY_NAME)))
        except OSError:
            raise TransportError('could not send')  # noqa: B904 - the implicit chain is what is tested
    except TransportError as err:
        scanner.errors.append(err)
    assert scanner.leaks(caplog), 'a secret in the chained context must count'
    secrets.errors.clear()  # planted on purpose: not a leak of the library


def test_scanner_records_every_pacifica_error(secrets):
    before = len(secrets.errors)
    HTTPStatusError('x', 500)
    ServerConnectionError('y')
    assert len(secrets.errors) == before + 2
