"""The shared HTTP core under every fault the proxy can inject.

Three kinds of request are proven: a GET (always repeatable), a read-only
POST (declared repeatable, as the Policy queries are) and a POST that must
never be repeated once sent (ingest upload, cart creation).
"""
from __future__ import annotations

import dataclasses

import pytest

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import (
    HTTPStatusError, InvalidResponseError, PacificaError, RequestTimeout, ServerConnectionError,
)
from pacifica._client.retry import IDEMPOTENT_METHODS
from pacifica._client.transport import HttpClient
from tests.helpers.faults import Fault, closed_port
from tests.helpers.server import Reply
from tests.reliability.conftest import FAST

pytestmark = pytest.mark.timeout(30)


def Client(**kwargs):
    """The smallest client: an HttpClient as every client object holds one."""
    return HttpClient(**kwargs)


def ReadOnlyPostClient(**kwargs):
    """The client of a service whose POSTs only read (the Policy queries): they are repeated like GETs."""
    return HttpClient(repeatable_methods=IDEMPOTENT_METHODS | {'POST'}, **kwargs)


#: Faults that clear: a repeatable request must get through them.
TRANSIENT = [
    pytest.param(Fault.reset_request(), id='reset-mid-request'),
    pytest.param(Fault.reset_response('head'), id='reset-in-reply-head'),
    pytest.param(Fault.reset_response('body'), id='reset-in-reply-body'),
    pytest.param(Fault.http_status(502), id='502'),
    pytest.param(Fault.http_status(503), id='503'),
    pytest.param(Fault.http_status(504), id='504'),
    pytest.param(Fault.http_status(502, retry_after=0), id='502-retry-after'),
    pytest.param(Fault.http_status(503, retry_after=0), id='503-retry-after'),
    pytest.param(Fault.http_status(504, retry_after=0), id='504-retry-after'),
    pytest.param(Fault.http_status(429), id='429'),
    pytest.param(Fault.http_status(429, retry_after=0), id='429-retry-after'),
    pytest.param(Fault.slow_headers(delay=0.6), id='slow-headers'),
    pytest.param(Fault.truncate_body(), id='truncated-body'),
    pytest.param(Fault.invalid_json(), id='invalid-json'),
]


def _doc_route(upstream, method='GET'):
    upstream.route(method, '/doc', Reply.json({'answer': 42, 'padding': 'x' * 200}))


@pytest.mark.parametrize('fault', TRANSIENT)
@pytest.mark.parametrize('method,cls', [('GET', Client), ('POST', ReadOnlyPostClient)], ids=['GET', 'readonly-POST'])
def test_repeatable_request_survives_two_faults(upstream, proxy, stopwatch, secret_auth, fault, method, cls):
    _doc_route(upstream, method)
    proxy.inject('/doc', fault, times=2)
    client = cls(config=FAST, auth=secret_auth)
    with stopwatch(FAST.deadline):
        reply = client.call(method, proxy.url + '/doc', document=True, data=b'{}')
        assert reply.document == {'answer': 42, 'padding': 'x' * 200}
    assert proxy.pending() == 0 and proxy.received(method, '/doc') == 3


@pytest.mark.parametrize('method,cls', [('GET', Client), ('POST', ReadOnlyPostClient)], ids=['GET', 'readonly-POST'])
def test_backoff_grows_between_attempts(upstream, proxy, stopwatch, method, cls):
    """Four 503s with backoff 0.1 s: sleeps 0, 0.2, 0.4, 0.8 s must really happen."""
    _doc_route(upstream, method)
    proxy.inject('/doc', Fault.http_status(503), times=4)
    config = dataclasses.replace(FAST, backoff_factor=0.1, backoff_max=5, call_deadline=5)
    with stopwatch(3.5) as watch:
        assert cls(config=config).call(method, proxy.url + '/doc', document=True, data=b'{}').document['answer'] == 42
    assert watch.elapsed >= 1.4 and proxy.received(method, '/doc') == 5


def test_retry_after_is_obeyed_and_capped(upstream, proxy, stopwatch):
    _doc_route(upstream)
    proxy.inject('/doc', Fault.http_status(503, retry_after=1))
    proxy.inject('/doc', Fault.http_status(429, retry_after=3600))  # capped at retry_after_max
    config = dataclasses.replace(FAST, retry_after_max=1.2, backoff_factor=0, call_deadline=5)
    with stopwatch(3.5) as watch:
        assert Client(config=config).call('GET', proxy.url + '/doc', document=True).document['answer'] == 42
    assert watch.elapsed >= 2.1  # 1 s as asked, then 1.2 s instead of an hour


@pytest.mark.parametrize('header', ['0.6', 'soon', '-1', ''])
def test_malformed_retry_after_falls_back_to_backoff(upstream, proxy, stopwatch, header):
    _doc_route(upstream)
    proxy.inject('/doc', Fault.http_status(503, retry_after=header), times=2)
    with stopwatch(FAST.deadline):
        assert Client(config=FAST).call('GET', proxy.url + '/doc', document=True).document['answer'] == 42
    assert proxy.received('GET', '/doc') == 3


def test_retry_after_beyond_the_deadline_fails_at_once(upstream, proxy, stopwatch):
    _doc_route(upstream)
    proxy.inject('/doc', Fault.http_status(503, retry_after=30), times=10)
    config = dataclasses.replace(FAST, retry_after_max=60, call_deadline=2)
    with stopwatch(1.0):
        with pytest.raises(RequestTimeout) as info:  # the call cannot end within its deadline: it ends now
            Client(config=config).call('GET', proxy.url + '/doc', document=True)
    assert 'deadline of 2 s' in str(info.value) and 'the last attempt: HTTP 503' in str(info.value)
    assert proxy.received('GET', '/doc') == 1


@pytest.mark.parametrize('status', [502, 503, 504, 429])
@pytest.mark.parametrize('retry_after', [None, 0])
def test_persistent_status_gives_http_status_error_after_all_retries(upstream, proxy, stopwatch, status, retry_after):
    _doc_route(upstream)
    proxy.inject('/doc', Fault.http_status(status, retry_after=retry_after), times=100)
    with stopwatch(FAST.deadline):
        with pytest.raises(HTTPStatusError) as info:
            Client(config=FAST).call('GET', proxy.url + '/doc', document=True)
    assert info.value.status_code == status and 'injected' in info.value.body
    assert proxy.received('GET', '/doc') == FAST.retries + 1


@pytest.mark.parametrize('fault,expected', [
    pytest.param(Fault.reset_request(), ServerConnectionError, id='reset-mid-request'),
    pytest.param(Fault.reset_response('head'), ServerConnectionError, id='reset-in-reply-head'),
    pytest.param(Fault.reset_response('body'), ServerConnectionError, id='reset-in-reply-body'),
    pytest.param(Fault.truncate_body(), ServerConnectionError, id='truncated-body'),
    pytest.param(Fault.invalid_json(), InvalidResponseError, id='invalid-json'),
    pytest.param(Fault.slow_headers(delay=5), RequestTimeout, id='headers-later-than-read-timeout'),
    pytest.param(Fault.slow_headers(interval=0.05), RequestTimeout, id='trickled-headers'),
    pytest.param(Fault.trickle_body(interval=0.05), RequestTimeout, id='trickled-body'),
    pytest.param(Fault.stall_request(10), RequestTimeout, id='server-stops-reading'),
])
def test_persistent_fault_ends_in_time_with_a_specific_error(upstream, proxy, stopwatch, secret_auth, fault, expected):
    _doc_route(upstream)
    proxy.inject('/doc', fault, times=100)
    with stopwatch(FAST.deadline + 0.5):
        with pytest.raises(expected) as info:
            Client(config=FAST, auth=secret_auth).call('GET', proxy.url + '/doc', document=True)
    assert isinstance(info.value, PacificaError)
    assert '/doc' in str(info.value)


def test_refused_connection_clears(upstream, proxy, stopwatch):
    _doc_route(upstream)
    config = dataclasses.replace(FAST, retries=8, backoff_factor=0.05, backoff_max=0.2, call_deadline=5)
    proxy.refuse_for(0.5)
    with stopwatch(3):
        assert Client(config=config).call('GET', proxy.url + '/doc', document=True).document['answer'] == 42


def test_refused_connection_for_good_is_server_connection_error(stopwatch):
    with stopwatch(FAST.deadline):
        with pytest.raises(ServerConnectionError) as info:
            Client(config=FAST).call('GET', 'http://127.0.0.1:{}/doc'.format(closed_port()))
    assert 'refused' in str(info.value).lower()


@pytest.mark.parametrize('timeout', [0.5, (0.5, 0.5)])
def test_timeout_keyword_bounds_a_silent_server(upstream, proxy, stopwatch, timeout):
    _doc_route(upstream)
    proxy.inject('/doc', Fault.slow_headers(delay=10), times=100)
    config = TransferConfig(retries=1, backoff_factor=0)
    with stopwatch(2.5):
        with pytest.raises(RequestTimeout):
            Client(config=config, timeout=timeout).call('GET', proxy.url + '/doc', document=True)


# ------------------------------------------------------------------ a POST that must not repeat
def _job_route(upstream):
    upstream.route('POST', '/upload', lambda req: {'job_id': len(upstream.requests)})


@pytest.mark.parametrize('fault,expected,reached', [
    pytest.param(Fault.reset_request(), ServerConnectionError, 0, id='reset-mid-request'),
    pytest.param(Fault.reset_response('head'), ServerConnectionError, 1, id='reset-in-reply-head'),
    pytest.param(Fault.reset_response('body'), ServerConnectionError, 1, id='reset-in-reply-body'),
    pytest.param(Fault.http_status(502), HTTPStatusError, 0, id='502'),
    pytest.param(Fault.http_status(503, retry_after=0), HTTPStatusError, 0, id='503-retry-after'),
    pytest.param(Fault.http_status(504, forward=True), HTTPStatusError, 1, id='504-after-the-server-saw-it'),
    pytest.param(Fault.http_status(429), HTTPStatusError, 0, id='429'),
    pytest.param(Fault.slow_headers(delay=5), RequestTimeout, 1, id='slow-headers'),
    pytest.param(Fault.trickle_body(interval=0.3), RequestTimeout, 1, id='trickled-body'),
    pytest.param(Fault.truncate_body(), ServerConnectionError, 1, id='truncated-body'),
    pytest.param(Fault.invalid_json(forward=True), InvalidResponseError, 1, id='invalid-json'),
    pytest.param(Fault.stall_request(10), RequestTimeout, 0, id='server-stops-reading'),
])
def test_unrepeatable_post_is_sent_once(upstream, proxy, stopwatch, secret_auth, fault, expected, reached):
    _job_route(upstream)
    proxy.inject('/upload', fault, times=100)
    with stopwatch(FAST.deadline + 0.5):
        with pytest.raises(expected):
            Client(config=FAST, auth=secret_auth).call('POST', proxy.url + '/upload', document=True,
                                                       data=b'x' * 5000)
    assert proxy.received('POST', '/upload') == 1
    assert upstream.count('POST', '/upload') == reached


def test_unrepeatable_post_is_retried_when_the_connection_was_refused(upstream, proxy, stopwatch):
    """Nothing was sent, so repeating is safe: the server sees exactly one POST."""
    _job_route(upstream)
    config = dataclasses.replace(FAST, retries=8, backoff_factor=0.05, backoff_max=0.2, call_deadline=5)
    proxy.refuse_for(0.4)
    with stopwatch(3):
        Client(config=config).call('POST', proxy.url + '/upload', document=True, data=b'x')
    assert upstream.count('POST', '/upload') == 1
