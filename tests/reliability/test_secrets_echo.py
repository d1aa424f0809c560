"""Servers that echo the request's headers: every call of the three services, every place an echo can hide.

An echoing server puts the request headers (with the Authorization and Cookie
values) into its body, its reason phrase and its ``X-Pacifica-Message``
header. Whatever the call makes of such a reply (an exception, a DEBUG log
line), the autouse scanner (tests/helpers/secrets.py) fails the test if a
secret shows; each test also checks that the echo did reach the error, so it
cannot pass by never seeing one.
"""
from __future__ import annotations

import base64
import io
import json
from typing import Any, Callable, Dict, List

import pytest

from pacifica._client.exceptions import (
    CartDownloadError, CartFailedError, CartRequestError, CartTimeoutError, HTTPStatusError,
    IngestJobFailedError, InvalidResponseError, PolicyRejectedError, UnknownTransactionError, UploadRejectedError,
)
from pacifica._client.redact import excerpt, redact, secrets_of
from pacifica.downloader import CartAPI, fetch_transaction
from pacifica.uploader import Uploader
from pacifica.uploader.metadata import MetaData, MetaObj
from pacifica.uploader.metadata.policyquery import PolicyQuery
from tests.helpers.secrets import KNOWN_SECRETS, SECRET_COOKIE, SECRET_PASSWORD, SECRET_TOKEN, SECRET_URL_PASSWORD
from tests.helpers.server import LoopbackServer, Raw, Request
from tests.reliability.conftest import FAST

pytestmark = pytest.mark.timeout(60)

#: What an echoed error starts with, so a test can see the echo reached the message.
MARK = 'you sent'


def _header_lines(req: Request) -> str:
    return '; '.join('{}: {}'.format(name, value) for name, value in req.headers.items())


def echo(status: int, json_doc: Callable[[Request], Any] = None, pacifica_status: str = 'error') -> Callable:
    """A handler answering ``status`` with the request headers in the reason phrase, X-Pacifica-Message and body.

    The body holds them three ways (a Python dict, JSON, raw header lines), or
    is ``json_doc(request)`` (a document whose texts quote them).
    """
    def handler(req: Request) -> Raw:
        if json_doc is not None:
            body = json.dumps(json_doc(req)).encode()
        else:
            body = '{} {!r}\n{}\n{}\r\n'.format(MARK, req.headers, json.dumps(req.headers), '\r\n'.join(
                '{}: {}'.format(name, value) for name, value in req.headers.items())).encode()
        head = ('HTTP/1.1 {} {} {}\r\nX-Pacifica-Status: {}\r\nX-Pacifica-Message: {} {}\r\n'
                'Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n').format(
            status, MARK, _header_lines(req), pacifica_status, MARK, _header_lines(req), len(body))

        def write(h: Any) -> None:
            h.wfile.write(head.encode('latin-1') + (b'' if req.method == 'HEAD' else body))
        return Raw(write)
    return handler


def quoting(req: Request) -> Dict[str, Any]:
    return {'status': '412 Precondition Failed', 'message': '{} {}'.format(MARK, req.headers),
            'state': 'FAILED', 'task': MARK + ' ' + _header_lines(req), 'task_percent': '0',
            'exception': '{} {}'.format(MARK, req.headers)}


@pytest.fixture(params=['auth-dict', 'url-password', 'netrc'])
def client_auth(request, secret_auth, tmp_path, monkeypatch, secrets) -> Dict[str, Any]:
    """How the credentials reach the request: the auth dict, a password in the URL, or ~/.netrc.

    With .netrc the library never sees the password: only what requests put
    into the Authorization header tells it.
    """
    if request.param == 'auth-dict':
        return {'auth': secret_auth, 'userinfo': ''}
    if request.param == 'url-password':
        return {'auth': {'cookies': {'session': SECRET_COOKIE}}, 'userinfo': 'bob:{}@'.format(SECRET_URL_PASSWORD)}
    netrc = tmp_path / 'netrc'
    netrc.write_text('machine 127.0.0.1 login carol password netrc-5ecr3t-Qw1\n')
    monkeypatch.setenv('NETRC', str(netrc))
    secrets.add('netrc-5ecr3t-Qw1')
    secrets.add(base64.b64encode(b'carol:netrc-5ecr3t-Qw1').decode())
    return {'auth': {}, 'userinfo': ''}


@pytest.fixture
def echo_server() -> LoopbackServer:
    srv = LoopbackServer()
    yield srv
    srv.close()


def _base(server: LoopbackServer, client_auth: Dict[str, Any]) -> str:
    return server.url.replace('http://', 'http://' + client_auth['userinfo'], 1)


def _uploader(server, client_auth) -> Uploader:
    base = _base(server, client_auth)
    return Uploader(upload_url=base + '/upload', status_url=base + '/get_state', config=FAST, auth=client_auth['auth'])


def _policy(server, client_auth) -> PolicyQuery:
    base = _base(server, client_auth)
    return PolicyQuery(10, columns=['_id'], from_table='users', uploader_url=base + '/uploader',
                       ingest_url=base + '/ingest', config=FAST, auth=client_auth['auth'])


def _cart(server, client_auth) -> CartAPI:
    return CartAPI(_base(server, client_auth), config=FAST, auth=client_auth['auth'])


def _metadata() -> MetaData:
    return MetaData([MetaObj(destinationTable='Transactions.submitter', value='10')])


def _fetch(server, client_auth, transaction_id: int) -> dict:
    return fetch_transaction(transaction_id, policy_url=_base(server, client_auth), config=FAST,
                             auth=client_auth['auth'])


def _cart_url(server, client_auth) -> str:
    return _base(server, client_auth) + '/0123'


#: (name, route, handler, call, expected error) for every call of ingest, policy and cartd.
CASES: List[Any] = [
    ('ingest upload, error page', ('POST', '/upload'), echo(500),
     lambda s, a: _uploader(s, a).upload(io.BytesIO(b'tar bytes')), HTTPStatusError),
    ('ingest upload, answer without job_id', ('POST', '/upload'), echo(200, quoting),
     lambda s, a: _uploader(s, a).upload(io.BytesIO(b'tar bytes')), UploadRejectedError),
    ('ingest get_state, error page', ('GET', '/get_state'), echo(500),
     lambda s, a: _uploader(s, a).getstate(7), HTTPStatusError),
    ('ingest get_state, failed job quoting the request', ('GET', '/get_state'), echo(200, quoting),
     lambda s, a: _uploader(s, a).wait(7, timeout=5, interval=0.05), IngestJobFailedError),
    ('policy uploader, error page', ('POST', '/uploader'), echo(500),
     lambda s, a: _policy(s, a).get_results(), HTTPStatusError),
    ('policy uploader, not a list', ('POST', '/uploader'), echo(200, quoting),
     lambda s, a: _policy(s, a).get_results(), InvalidResponseError),
    ('policy ingest, error page', ('POST', '/ingest'), echo(500),
     lambda s, a: _policy(s, a).valid_metadata(_metadata()), HTTPStatusError),
    ('policy ingest, refusal quoting the request', ('POST', '/ingest'), echo(412, quoting),
     lambda s, a: _policy(s, a).validate_metadata(_metadata()), PolicyRejectedError),
    ('cartd POST', ('POST', '*'), echo(500),
     lambda s, a: _cart(s, a).setup_cart(lambda: iter([])), CartRequestError),
    ('cartd HEAD, failed', ('HEAD', '*'), echo(500),
     lambda s, a: _cart(s, a).wait_for_cart(_cart_url(s, a), timeout=5), CartFailedError),
    ('cartd HEAD, unknown cart', ('HEAD', '*'), echo(404),
     lambda s, a: _cart(s, a).wait_for_cart(_cart_url(s, a), timeout=5), CartFailedError),
    ('cartd HEAD, staging until the deadline', ('HEAD', '*'), echo(204, pacifica_status='staging'),
     lambda s, a: _cart(s, a).wait_for_cart(_cart_url(s, a), timeout=0.3), CartTimeoutError),
    ('cartd GET', ('GET', '*'), echo(500),
     lambda s, a: _cart(s, a).open_cart(_cart_url(s, a), 'data'), CartDownloadError),
    ('cartd DELETE', ('DELETE', '*'), echo(500),
     lambda s, a: _cart(s, a).delete_cart(_cart_url(s, a)), CartFailedError),
    ('policy transaction record, not a record', ('GET', '/status/transactions/by_id/5'), echo(200, quoting),
     lambda s, a: _fetch(s, a, 5), InvalidResponseError),
    ('policy transaction record, unknown', ('GET', '/status/transactions/by_id/5'),
     echo(200, lambda req: dict(quoting(req), status='404 Not Found')),
     lambda s, a: _fetch(s, a, 5), UnknownTransactionError),
]


@pytest.mark.parametrize('name,route,handler,call,expected', CASES, ids=[case[0] for case in CASES])
def test_an_echoing_server_never_shows_a_secret(echo_server, client_auth, caplog, name, route, handler, call,
                                               expected):
    echo_server.route(*route, handler)
    with pytest.raises(expected) as info:
        call(echo_server, client_auth)
    shown = str(info.value) + repr(info.value.args) + repr(vars(info.value))
    seen = shown + caplog.text
    assert MARK in seen, 'the echo never reached the error or the log, so this test proves nothing'
    sent = echo_server.requests[-1].headers
    assert 'Authorization' in sent or 'Cookie' in sent, 'the request carried no credentials to echo'
    assert not [secret for secret in KNOWN_SECRETS if secret in seen]


def test_the_reason_phrase_and_pacifica_message_reach_the_error_redacted(echo_server, secret_auth):
    """The echo is shown (it helps), with *** where the credentials were."""
    echo_server.route('DELETE', '*', echo(500))
    echo_server.route('HEAD', '*', echo(500))
    cart = CartAPI(echo_server.url, config=FAST, auth=secret_auth)
    with pytest.raises(CartFailedError) as deleted:
        cart.delete_cart(echo_server.url + '/1')
    with pytest.raises(CartFailedError) as polled:
        cart.wait_for_cart(echo_server.url + '/1', timeout=5)
    for err in (deleted.value, polled.value):
        assert 'Authorization: ***' in str(err) and MARK in str(err)


def test_a_session_of_the_callers_own_is_redacted_too(echo_server):
    """CartAPI(session=...) sends whatever that session carries; its credentials are secrets as well."""
    import requests
    session = requests.Session()
    session.headers['Authorization'] = 'Bearer ' + SECRET_TOKEN
    echo_server.route('GET', '*', echo(500))
    with pytest.raises(CartDownloadError) as info:
        CartAPI(echo_server.url, session=session, config=FAST).open_cart(echo_server.url + '/1', 'data')
    assert MARK in str(info.value) and SECRET_TOKEN not in str(info.value)


# ------------------------------------------------------------------ the redaction rule itself
ECHOES = [
    "{'Authorization': 'Basic YWxpY2U6cHc=', 'Host': 'h'}",
    '{"Authorization": "Bearer abc.def", "Host": "h"}',
    'Authorization: Bearer abc.def\r\nHost: h',
    'Proxy-Authorization: Basic Zm9vOmJhcg==',
    'Cookie: session=abcdef; other=1',
    '{\\"Cookie\\": \\"session=abcdef\\"}',
]


@pytest.mark.parametrize('text', ECHOES)
def test_values_after_a_sensitive_header_name_are_blanked_unknown_or_not(text):
    shown = redact(text)
    assert '***' in shown
    for secret in ('YWxpY2U6cHc=', 'abc.def', 'Zm9vOmJhcg==', 'abcdef'):
        assert secret not in shown
    assert 'Host' in shown or 'Host' not in text  # only the credential goes


def test_known_secrets_go_in_every_form_requests_sends_them():
    secrets = secrets_of({'auth': ('alice', SECRET_PASSWORD), 'cookies': {'s': SECRET_COOKIE}},
                         ['http://bob:{}@h/x'.format(SECRET_URL_PASSWORD)])
    basic = base64.b64encode('alice:{}'.format(SECRET_PASSWORD).encode()).decode()
    text = 'pw {} b64 {} cookie {} url http://bob:{}@h/x'.format(SECRET_PASSWORD, basic, SECRET_COOKIE,
                                                               SECRET_URL_PASSWORD)
    shown = redact(text, secrets)
    assert not [secret for secret in KNOWN_SECRETS if secret in shown] and basic not in shown


def test_an_excerpt_cut_inside_a_secret_does_not_show_its_start():
    secrets = secrets_of({'headers': {'X-Token': SECRET_TOKEN}})
    shown = excerpt('token is ' + SECRET_TOKEN[:9], secrets)
    assert shown == 'token is ***'


def test_an_excerpt_is_redacted_before_it_is_cut():
    secrets = secrets_of({'headers': {'X-Token': SECRET_TOKEN}})
    shown = excerpt('x' * 995 + SECRET_TOKEN + 'y' * 100, secrets)
    assert SECRET_TOKEN[:4] not in shown and shown.endswith('...')


def test_a_job_id_quoting_the_request_is_logged_redacted(echo_server, secret_auth, caplog):
    """The job id is returned as the server sent it (it is the caller's data); the DEBUG line shows it redacted."""
    echo_server.route('POST', '/upload', echo(200, lambda req: {'job_id': '{} {}'.format(MARK, _header_lines(req))}))
    job_id = Uploader(upload_url=echo_server.url + '/upload', config=FAST, auth=secret_auth).upload(b'tar bytes')
    assert MARK in job_id
    assert 'Upload started ingest job {} Host'.format(MARK) in caplog.text and 'Authorization: ***' in caplog.text
