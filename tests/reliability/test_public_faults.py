"""Every public call of both packages under every injected fault.

Idempotent calls (getstate, get_results, valid_metadata, wait, wait_for_cart,
the cart download) must get through faults that clear, and end with a
specific PacificaError within their time limit when a fault persists.
Calls that create something on the server (upload, upload_bundle,
setup_cart) must never create it twice: the stand-ins count what arrived.
"""
from __future__ import annotations

import dataclasses
import io
import os
from typing import Any, Callable, Dict

import pytest

from pacifica._client.exceptions import (
    ArchiveError, CartDownloadError, CartFailedError, CartRequestError, CartTimeoutError, HTTPStatusError,
    InvalidResponseError, JobTimeoutError, PacificaError, PacificaTimeoutError, RequestTimeout, ServerConnectionError,
)
from pacifica.uploader.bundler import Bundler
from tests.helpers.faults import Fault, closed_port
from tests.reliability import stands as st
from tests.reliability.conftest import FAST

pytestmark = pytest.mark.timeout(60)

#: Deadlines of this suite: one call may take FAST.deadline, a wait is given WAIT_TIMEOUT.
WAIT_TIMEOUT = 1.0
#: What each limit allows beyond the call's own bound, for a loaded machine's scheduling.
SLACK = 1.0
#: Uploader.wait makes a last poll at its deadline, and that poll may take one call's deadline:
#: the wait's own bound is WAIT_TIMEOUT + WAIT_LAST_POLL. (A limit of WAIT_TIMEOUT + SLACK left it
#: no slack: at load 8, with every attempt slow, that last poll used its whole second and the wait overran.)
WAIT_LAST_POLL = FAST.deadline


# ---------------------------------------------------------------------------- the calls
@dataclasses.dataclass
class Call:
    name: str
    proxy: str           # which proxy of Stands carries it
    method: str
    path: str
    run: Callable[[st.Stands, Dict[str, Any]], Any]
    check: Callable[[st.Stands, Any], None]
    limit: float = FAST.deadline + SLACK
    prepare: Callable[[st.Stands], Dict[str, Any]] = lambda stands: {}


def _getstate(s, ctx):
    return s.uploader().getstate(ctx['job'])


def _check_state(s, result):
    assert result['state'] == 'OK' and result['task'] == 'ingest metadata'


def _wait(s, ctx):
    return s.uploader().wait(ctx['job'], timeout=WAIT_TIMEOUT, interval=0.05)


def _get_results(s, ctx):
    return s.policy_query().get_results()


def _valid_metadata(s, ctx):
    return s.policy_query().valid_metadata(st.metadata())


def _wait_for_cart(s, ctx):
    return s.cart_api().wait_for_cart(ctx['cart'], timeout=WAIT_TIMEOUT)


def _download(s, ctx):
    downloader = s.downloader()
    assert downloader.transactioninfo(s.download_dir(), s.transinfo(), timeout=WAIT_TIMEOUT) is None  # as 0.4.x
    return downloader.paths_written


def _check_download(s, paths):
    assert len(paths) == len(st.CART_FILES)
    by_name = {name: content for (_, name, content) in st.CART_FILES.values()}
    for path in paths:
        with open(path, 'rb') as handle:
            assert handle.read() == by_name[os.path.basename(path)]


IDEMPOTENT = [
    Call('getstate', 'ingest_proxy', 'GET', '/get_state', _getstate, _check_state,
         prepare=lambda s: {'job': s.direct_job()}),
    Call('wait', 'ingest_proxy', 'GET', '/get_state', _wait, _check_state, limit=WAIT_TIMEOUT + WAIT_LAST_POLL + SLACK,
         prepare=lambda s: {'job': s.direct_job()}),
    Call('get_results', 'policy_proxy', 'POST', '/uploader', _get_results,
         lambda s, rows: rows == st.POLICY_ROWS or pytest.fail(rows)),
    Call('valid_metadata', 'policy_proxy', 'POST', '/ingest', _valid_metadata,
         lambda s, reply: reply == {'status': 'success'} or pytest.fail(reply)),
    Call('wait_for_cart', 'cart_proxy', 'HEAD', '/*', _wait_for_cart,
         lambda s, url: url.startswith(s.cart_proxy.url) or pytest.fail(url), limit=WAIT_TIMEOUT + SLACK,
         prepare=lambda s: {'cart': s.direct_cart()}),
    Call('download', 'cart_proxy', 'GET', '/*', _download, _check_download, limit=WAIT_TIMEOUT + 2 * FAST.deadline),
]

#: Faults that clear after two requests.
TRANSIENT = [
    Fault.reset_request(), Fault.reset_response('head'), Fault.reset_response('body'),
    Fault.http_status(502), Fault.http_status(503), Fault.http_status(504),
    Fault.http_status(502, retry_after=0), Fault.http_status(503, retry_after=1), Fault.http_status(504, retry_after=0),
    Fault.http_status(429), Fault.http_status(429, retry_after=0),
    Fault.slow_headers(delay=0.6), Fault.truncate_body(), Fault.invalid_json(),
]
#: Faults in the body of a streamed cart: the download fails, and a second call finishes the job.
BODY_FAULT_KINDS = {'reset-response in body', 'truncate-body', 'invalid-json (not forwarded)'}


#: A HEAD reply has no body to break, and a 200 to a HEAD is no cart state at all.
HEAD_NOT_APPLICABLE = {'reset-response in body', 'truncate-body', 'invalid-json (not forwarded)'}


def _transient_cases():
    for call in IDEMPOTENT:
        for fault in TRANSIENT:
            if call.method == 'HEAD' and str(fault) in HEAD_NOT_APPLICABLE:
                continue
            yield pytest.param(call, fault, id='{}-{}'.format(call.name, fault))


@pytest.mark.parametrize('call,fault', list(_transient_cases()))
def test_idempotent_call_gets_through_a_fault_that_clears(stands, stopwatch, call, fault):
    ctx = call.prepare(stands)
    proxy = getattr(stands, call.proxy)
    times = 1 if call.name == 'download' else 2
    proxy.inject(call.path, fault, times=times, method=call.method)
    if call.name == 'download' and str(fault) in BODY_FAULT_KINDS:
        # The stream broke after it began: the call fails cleanly, nothing looks complete ...
        with stopwatch(call.limit), pytest.raises(ArchiveError):
            call.run(stands, ctx)
        assert not os.path.exists(os.path.join(stands.download_dir(), 'data', 'raw', 'a.txt'))
    with stopwatch(call.limit):
        result = call.run(stands, ctx)  # ... and the same call again succeeds
    call.check(stands, result)
    assert proxy.pending() == 0


@pytest.mark.parametrize('call', IDEMPOTENT, ids=[c.name for c in IDEMPOTENT])
def test_idempotent_call_gets_through_refused_connections(stands, stopwatch, call):
    ctx = call.prepare(stands)
    stands.config = dataclasses.replace(FAST, retries=8, backoff_factor=0.05, backoff_max=0.2, call_deadline=5)
    getattr(stands, call.proxy).refuse_for(0.4)
    with stopwatch(call.limit + 2):
        call.check(stands, call.run(stands, ctx))


#: The persistent faults, and which error each call must end in.
PERSISTENT = {
    'reset-request': Fault.reset_request(),
    'reset-head': Fault.reset_response('head'),
    'reset-body': Fault.reset_response('body'),
    '503': Fault.http_status(503, retry_after=0),
    '429': Fault.http_status(429),
    'slow-headers': Fault.slow_headers(delay=30),
    'trickled-headers': Fault.slow_headers(interval=0.1),
    'trickled-body': Fault.trickle_body(interval=0.25),
    'truncated': Fault.truncate_body(),
    'invalid-json': Fault.invalid_json(),
}
_CONN = ServerConnectionError
EXPECTED = {
    #                reset-req reset-head reset-body 503 429 slow trickled-h trickled-b truncated invalid-json
    'getstate': (_CONN, _CONN, _CONN, HTTPStatusError, HTTPStatusError, RequestTimeout, RequestTimeout,
                 RequestTimeout, _CONN, InvalidResponseError),
    'wait': (JobTimeoutError,) * 9 + (InvalidResponseError,),
    'get_results': (_CONN, _CONN, _CONN, HTTPStatusError, HTTPStatusError, RequestTimeout, RequestTimeout,
                    RequestTimeout, _CONN, InvalidResponseError),
    'valid_metadata': (_CONN, _CONN, _CONN, HTTPStatusError, HTTPStatusError, RequestTimeout, RequestTimeout,
                       RequestTimeout, _CONN, InvalidResponseError),
    # A HEAD that outlasts the wait's own timeout ends the wait: CartTimeoutError (a PacificaTimeoutError too).
    # A busy cartd (503, 429) is no verdict on the cart: the wait polls on until its deadline.
    'wait_for_cart': (_CONN, _CONN, None, CartTimeoutError, CartTimeoutError, PacificaTimeoutError,
                      PacificaTimeoutError, None, None, CartFailedError),
    'download': (_CONN, _CONN, ArchiveError, CartDownloadError, CartDownloadError, RequestTimeout, RequestTimeout,
                 None, ArchiveError, ArchiveError),
}


def _persistent_cases():
    for call in IDEMPOTENT:
        for (fault_id, fault), expected in zip(PERSISTENT.items(), EXPECTED[call.name]):
            if expected is None:  # HEAD has no body to break; a trickled cart stream is bounded, not stuck
                continue
            yield pytest.param(call, fault, expected, id='{}-{}'.format(call.name, fault_id))


@pytest.mark.parametrize('call,fault,expected', list(_persistent_cases()))
def test_idempotent_call_fails_in_time_with_a_specific_error(stands, stopwatch, call, fault, expected):
    ctx = call.prepare(stands)
    proxy = getattr(stands, call.proxy)
    proxy.inject(call.path, fault, times=1000, method=call.method)
    with stopwatch(call.limit), pytest.raises(PacificaError) as info:
        call.run(stands, ctx)
    assert type(info.value) is expected or isinstance(info.value, expected), repr(info.value)
    assert proxy.received(call.method, call.path) >= 1
    if isinstance(info.value, JobTimeoutError):  # the wait held on until its timeout, not a moment less
        assert stopwatch.elapsed >= WAIT_TIMEOUT, stopwatch.elapsed


@pytest.mark.parametrize('call', IDEMPOTENT, ids=[c.name for c in IDEMPOTENT])
def test_idempotent_call_to_a_dead_port_is_server_connection_error(stands, stopwatch, call):
    stands.dead[call.proxy] = 'http://127.0.0.1:{}'.format(closed_port())
    ctx = call.prepare(stands)
    with stopwatch(call.limit), pytest.raises((ServerConnectionError, JobTimeoutError)):
        call.run(stands, ctx)


# ---------------------------------------------------------------------------- calls that create
def _upload(s):
    return s.uploader().upload(io.BytesIO(st.tar_of_bundle()))


def _upload_bundle(s):
    return s.uploader().upload_bundle(Bundler(st.metadata(), st.file_data()))


def _setup_cart(s):
    return s.cart_api().setup_cart(lambda: iter([{'id': 101, 'path': 'raw/a.txt', 'hashtype': 'sha1',
                                                  'hashsum': ''}]))


CREATING = {
    'upload': (_upload, 'ingest_proxy', '/upload'),
    'upload_bundle': (_upload_bundle, 'ingest_proxy', '/upload'),
    'setup_cart': (_setup_cart, 'cart_proxy', '/*'),
}
#: fault -> (error of an upload, error of setup_cart, reaches the server)
CREATING_FAULTS = [
    (Fault.reset_request(), _CONN, _CONN, False),
    (Fault.reset_response('head'), _CONN, _CONN, True),
    (Fault.reset_response('body'), _CONN, _CONN, True),
    (Fault.http_status(502), HTTPStatusError, CartRequestError, False),
    (Fault.http_status(503, retry_after=0), HTTPStatusError, CartRequestError, False),
    (Fault.http_status(504, forward=True), HTTPStatusError, CartRequestError, True),
    (Fault.http_status(429, retry_after=0), HTTPStatusError, CartRequestError, False),
    (Fault.slow_headers(delay=30), RequestTimeout, RequestTimeout, True),
    (Fault.slow_headers(interval=0.1), RequestTimeout, RequestTimeout, True),
    (Fault.trickle_body(interval=0.5), RequestTimeout, RequestTimeout, True),
    (Fault.truncate_body(), _CONN, None, True),
    (Fault.invalid_json(forward=True), InvalidResponseError, None, True),
]


def _created(s, name):
    return len(s.cartd.carts) if name == 'setup_cart' else len(s.ingest.jobs)


def _creating_cases():
    for name in CREATING:
        for fault, upload_error, cart_error, reaches in CREATING_FAULTS:
            expected = cart_error if name == 'setup_cart' else upload_error
            if expected is not None:  # cartd's 201 body is not read: a broken one does not matter
                yield pytest.param(name, fault, expected, reaches, id='{}-{}'.format(name, fault))


@pytest.mark.parametrize('name,fault,expected,reaches', list(_creating_cases()))
def test_creating_call_never_creates_twice(stands, stopwatch, name, fault, expected, reaches):
    run, proxy_name, path = CREATING[name]
    proxy = getattr(stands, proxy_name)
    proxy.inject(path, fault, times=1, method='POST')
    with stopwatch(FAST.deadline + SLACK), pytest.raises(PacificaError) as info:
        run(stands)
    assert isinstance(info.value, expected), repr(info.value)
    assert proxy.received('POST', path) == 1, 'sent again behind the caller\'s back'
    assert _created(stands, name) == (1 if reaches else 0)
    # The fault has cleared: the next call creates exactly one more, and it is sound.
    result = run(stands)
    assert _created(stands, name) == (2 if reaches else 1)
    if name != 'setup_cart':
        assert stands.ingest.job(result).ok, stands.ingest.job(result).problem


@pytest.mark.parametrize('name', list(CREATING))
def test_creating_call_is_repeated_only_when_nothing_was_sent(stands, stopwatch, name):
    run, proxy_name, _ = CREATING[name]
    stands.config = dataclasses.replace(FAST, retries=8, backoff_factor=0.05, backoff_max=0.2, call_deadline=5)
    getattr(stands, proxy_name).refuse_for(0.4)
    with stopwatch(4):
        run(stands)
    assert _created(stands, name) == 1


@pytest.mark.parametrize('name', list(CREATING))
def test_creating_call_to_a_dead_port_creates_nothing(stands, stopwatch, name):
    run, proxy_name, _ = CREATING[name]
    stands.dead[proxy_name] = 'http://127.0.0.1:{}'.format(closed_port())
    with stopwatch(FAST.deadline + SLACK), pytest.raises(ServerConnectionError):
        run(stands)
    assert _created(stands, name) == 0


# ---------------------------------------------------------------------------- a large upload body
def _large_bundle():
    return Bundler(st.metadata(), [{'name': 'data/big.bin', 'size': 8_000_000, 'mtime': 1,
                                    'fileobj': io.BytesIO(b'\x07' * 8_000_000)}])


@pytest.mark.parametrize('fault,expected,reaches', [
    (Fault.reset_request(), ServerConnectionError, 0),
    (Fault.stall_request(30), (RequestTimeout, ServerConnectionError), 0),
    (Fault.reset_response('head'), ServerConnectionError, 1),
    (Fault.slow_headers(delay=30), RequestTimeout, 1),
], ids=str)
def test_a_large_upload_fails_fast_and_creates_at_most_one_job(stands, stopwatch, fault, expected, reaches):
    """8 MB cannot sit in socket buffers: the client is mid-send (or waiting) when the server fails."""
    stands.ingest_proxy.inject('/upload', fault, method='POST')
    with stopwatch(FAST.deadline + 2 * FAST.read_timeout + SLACK), pytest.raises(expected):
        stands.uploader().upload_bundle(_large_bundle())
    assert stands.ingest_proxy.received('POST', '/upload') == 1 and len(stands.ingest.jobs) == reaches
    job = stands.uploader().upload_bundle(_large_bundle())
    assert stands.ingest.job(job).ok and len(stands.ingest.jobs) == reaches + 1
