"""A server that cannot be reached is called what it is, by every public call.

Three ways to fail before a byte was sent: a closed port (connection
refused), a host name that does not resolve (``.invalid`` never does) and a
TLS failure (an https:// URL answered by a plain-HTTP server). Each message
names the cause, the URL, the attempts and the time; the type stays the one
0.3.1 raised (requests.ConnectionError), never a timeout. All calls, bulk
or not, share one retry budget.
"""
from __future__ import annotations

import io
import logging
import re
from typing import Any, Callable, Dict

import pytest
import requests

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import JobTimeoutError, RequestTimeout, ServerConnectionError
from pacifica.downloader import CartAPI, Downloader
from pacifica.uploader import Uploader
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.metadata import MetaData, MetaObj, MetaUpdate
from pacifica.uploader.metadata.policyquery import PolicyQuery
from tests.helpers.cartd import cloud_event, transaction_info
from tests.helpers.faults import closed_port
from tests.helpers.server import LoopbackServer

pytestmark = pytest.mark.timeout(60)

#: Two retries with tiny pauses: three attempts, well inside the deadline.
QUICK = TransferConfig(connect_timeout=1, read_timeout=1, retries=2, backoff_factor=0.01, backoff_max=0.02)


@pytest.fixture(scope='module')
def plain_http() -> LoopbackServer:
    srv = LoopbackServer()
    yield srv
    srv.close()


@pytest.fixture(params=['refused', 'unresolvable', 'tls'])
def unreachable(request, plain_http) -> Dict[str, Any]:
    """A base URL nothing usable answers on, the words its error must use, and the attempts it gets."""
    if request.param == 'refused':
        return {'base': 'http://127.0.0.1:{}'.format(closed_port()), 'cause': 'connection refused', 'attempts': 3}
    if request.param == 'unresolvable':
        # A resolver may take seconds to say no: then fewer attempts fit the deadline.
        return {'base': 'http://pacifica-nowhere.invalid:8066', 'cause': "host name 'pacifica-nowhere.invalid' "
                'could not be resolved', 'attempts': r'[123]'}
    # A TLS failure comes from the set-up (certificates, a plain-HTTP port): a retry cannot change it.
    return {'base': 'https://127.0.0.1:{}'.format(plain_http.port), 'cause': 'TLS failure', 'attempts': 1}


def _metadata() -> MetaData:
    return MetaData([MetaObj(destinationTable='Transactions.submitter', value='10')])


def _uploader(base: str) -> Uploader:
    return Uploader(upload_url=base + '/upload', status_url=base + '/get_state', config=QUICK)


def _meta_update(base: str) -> MetaUpdate:
    update = MetaUpdate(10, uploader_url=base + '/uploader', config=QUICK)
    update.append(MetaObj(destinationTable='Transactions.project', metaID='project', sourceTable='projects',
                          queryFields=['_id'], valueField='_id', queryDependency={}))
    return update


def _policy(base: str) -> PolicyQuery:
    return PolicyQuery(10, uploader_url=base + '/uploader', ingest_url=base + '/ingest', config=QUICK)


CALLS: Dict[str, Callable[[str, str], Any]] = {
    'Uploader.upload': lambda base, tmp: _uploader(base).upload(io.BytesIO(b'x' * 100)),
    'Uploader.upload_bundle': lambda base, tmp: _uploader(base).upload_bundle(
        Bundler(_metadata(), [{'name': 'data/a', 'size': 1, 'mtime': 0, 'fileobj': io.BytesIO(b'a')}])),
    'Uploader.getstate': lambda base, tmp: _uploader(base).getstate(1),
    'PolicyQuery.get_results': lambda base, tmp: _policy(base).get_results(),
    'PolicyQuery.valid_metadata': lambda base, tmp: _policy(base).valid_metadata(_metadata()),
    'PolicyQuery.validate_metadata': lambda base, tmp: _policy(base).validate_metadata(_metadata()),
    'CartAPI.setup_cart': lambda base, tmp: CartAPI(base, config=QUICK).setup_cart(lambda: iter([])),
    'CartAPI.wait_for_cart': lambda base, tmp: CartAPI(base, config=QUICK).wait_for_cart(base + '/c', timeout=30),
    'CartAPI.open_cart': lambda base, tmp: CartAPI(base, config=QUICK).open_cart(base + '/c', 'data'),
    'CartAPI.delete_cart': lambda base, tmp: CartAPI(base, config=QUICK).delete_cart(base + '/c'),
    'Downloader.transactioninfo': lambda base, tmp: Downloader(cart_api_url=base, config=QUICK).transactioninfo(
        tmp, transaction_info({1: ('', 'a.txt', b'a')}), timeout=30),
    'Downloader.cloudevent': lambda base, tmp: Downloader(cart_api_url=base, config=QUICK).cloudevent(
        tmp, cloud_event({1: ('', 'a.txt', b'a')}), timeout=30),
    'PolicyQuery(network id)': lambda base, tmp: PolicyQuery('dmlb2001', uploader_url=base + '/uploader',
                                                             config=QUICK),
    'MetaUpdate.update_parents': lambda base, tmp: _meta_update(base).update_parents('project'),
}


@pytest.mark.parametrize('call', sorted(CALLS))
def test_every_call_names_the_cause_the_url_the_attempts_and_the_time(unreachable, call, tmp_path):
    with pytest.raises(ServerConnectionError) as info:
        CALLS[call](unreachable['base'], str(tmp_path))
    message = str(info.value)
    assert isinstance(info.value, requests.ConnectionError) and not isinstance(info.value, RequestTimeout)
    assert unreachable['cause'] in message
    assert unreachable['base'] in message  # the URL the call used
    attempts = unreachable['attempts']
    assert re.search(r'\({} attempts? in \d+\.\d s\)'.format(attempts), message), message
    assert 'deadline' not in message and 'NewConnectionError' not in message and '_Watched' not in message


def test_the_deadline_does_not_turn_a_refusal_into_a_timeout():
    """The issue's case: timeout=(1, 1), default backoff; the next pause would pass the 2 s deadline."""
    base = 'http://127.0.0.1:{}'.format(closed_port())
    calls = [lambda: Uploader(status_url=base + '/get_state', upload_url=base + '/upload', timeout=(1, 1)).getstate(1),
             lambda: PolicyQuery(10, uploader_url=base + '/uploader', timeout=(1, 1)).get_results(),
             lambda: PolicyQuery(10, ingest_url=base + '/ingest', timeout=(1, 1)).valid_metadata(_metadata())]
    for call in calls:
        with pytest.raises(ServerConnectionError) as info:
            call()
        assert 'connection refused by 127.0.0.1' in str(info.value)
        assert re.search(r'\(\d attempts in \d\.\d s\)', str(info.value)) and 'deadline' not in str(info.value)


def test_wait_says_why_no_state_could_be_read():
    base = 'http://127.0.0.1:{}'.format(closed_port())
    with pytest.raises(JobTimeoutError) as info:
        _uploader(base).wait(5, timeout=0.5, interval=0.05)
    message = str(info.value)
    assert 'no state could be read' in message and 'connection refused' in message
    assert base + '/get_state' in message and 'attempt' in message


def test_bulk_and_other_calls_share_one_retry_budget():
    """An upload (bulk: no overall deadline) gets exactly the attempts a status query gets."""
    base = 'http://127.0.0.1:{}'.format(closed_port())
    config = TransferConfig(connect_timeout=1, read_timeout=1, retries=4, backoff_factor=0.01)
    texts = []
    for call in (lambda: Uploader(upload_url=base + '/upload', config=config).upload(io.BytesIO(b'abc')),
                 lambda: Uploader(status_url=base + '/get_state', config=config).getstate(1)):
        with pytest.raises(ServerConnectionError) as info:
            call()
        texts.append(str(info.value))
    assert all('(5 attempts in' in text for text in texts), texts


def test_a_bulk_call_stops_retrying_at_the_deadline_too():
    """Before its request goes out, a bulk call has the same deadline as any call (not 15 s of backoff)."""
    base = 'http://127.0.0.1:{}'.format(closed_port())
    config = TransferConfig(connect_timeout=0.5, read_timeout=0.5, retries=5, backoff_factor=0.5)  # 0, 1, 2 ... s
    with pytest.raises(ServerConnectionError) as info:
        Uploader(upload_url=base + '/upload', config=config).upload(io.BytesIO(b'abc'))
    assert '(2 attempts in 0.' in str(info.value) or '(2 attempts in 1.0 s)' in str(info.value), str(info.value)


def test_each_retry_is_logged_as_it_happens(caplog):
    caplog.set_level(logging.DEBUG, logger='pacifica')
    base = 'http://127.0.0.1:{}'.format(closed_port())
    with pytest.raises(ServerConnectionError):
        _uploader(base).getstate(1)
    retries = [record.getMessage() for record in caplog.records
               if record.name == 'pacifica._client.retry' and 'trying again' in record.getMessage()]
    assert len(retries) == 2, retries
    assert all('connection refused' in line and base + '/get_state' in line for line in retries)
    assert 'attempt 1 failed' in retries[0] and 'attempt 2 failed' in retries[1]
