"""Secrets through the public API: auth values and URL passwords never in logs, reprs or errors.

The autouse scanner (conftest) fails any test of this directory whose DEBUG
logs or PacificaErrors show a secret; here every public client runs its
success path and its failure paths with an auth dict of secrets and a
password in every URL.
"""
from __future__ import annotations

import pytest

from pacifica._client.exceptions import PacificaError, UnknownUserError
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.metadata.policyquery import PolicyQuery
from tests.helpers.faults import Fault
from tests.helpers.server import Reply
from tests.reliability import stands as st
from tests.reliability.conftest import FAST, KNOWN_SECRETS, SECRET_TOKEN, SECRET_URL_PASSWORD

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def stands(stands):
    """The shared deployment, with a password in every URL the clients get."""
    stands.userinfo = 'bob:{}@'.format(SECRET_URL_PASSWORD)
    return stands


def _no_secret_in(text):
    assert not [secret for secret in KNOWN_SECRETS if secret in text], text


def test_every_client_runs_its_success_path_without_showing_secrets(stands):
    uploader = stands.uploader()
    job = uploader.upload_bundle(Bundler(st.metadata(), st.file_data()))
    assert uploader.wait(job, timeout=5, interval=0.05)['state'] == 'OK'
    query = stands.policy_query()
    assert query.get_results() == st.POLICY_ROWS
    assert query.valid_metadata(st.metadata()) == {'status': 'success'}
    downloader = stands.downloader()
    downloader.transactioninfo(stands.download_dir(), stands.transinfo(), timeout=5)
    assert len(downloader.paths_written) == len(st.CART_FILES)
    for client in (uploader, query, stands.cart_api(), stands.downloader()):
        _no_secret_in(repr(client))
        _no_secret_in(str(client))


FAILURES = [Fault.http_status(500, body=b'boom'), Fault.reset_request(), Fault.truncate_body(),
            Fault.invalid_json(), Fault.slow_headers(delay=30)]


@pytest.mark.parametrize('fault', FAILURES, ids=str)
def test_every_client_fails_without_showing_secrets(stands, fault):
    stands.ingest_proxy.inject('*', fault, times=1000)
    stands.policy_proxy.inject('*', fault, times=1000)
    stands.cart_proxy.inject('*', fault, times=1000)
    calls = [
        lambda: stands.uploader().getstate(1),
        lambda: stands.uploader().upload_bundle(Bundler(st.metadata(), st.file_data())),
        lambda: stands.uploader().wait(1, timeout=0.5, interval=0.05),
        lambda: stands.policy_query().get_results(),
        lambda: stands.policy_query().valid_metadata(st.metadata()),
        lambda: stands.cart_api().setup_cart(lambda: iter([])),
        lambda: stands.cart_api().wait_for_cart(stands.base('cart_proxy') + '/x', timeout=0.5),
        lambda: stands.downloader().transactioninfo(stands.download_dir(), stands.transinfo(), timeout=1),
    ]
    for call in calls:
        with pytest.raises(PacificaError) as info:
            call()
        _no_secret_in(str(info.value) + repr(info.value))


@pytest.mark.parametrize('userinfo', ['', 'bob:{}@'.format(SECRET_URL_PASSWORD)], ids=['token', 'url-password'])
def test_a_server_quoting_the_request_in_its_errors_does_not_leak(stands, userinfo):
    """Error pages that echo the request headers back (a bearer token is sent as is)."""
    stands.auth = {'headers': {'Authorization': 'Bearer ' + SECRET_TOKEN}}
    stands.userinfo = userinfo  # URL credentials replace the token with Basic auth
    echo = lambda req: Reply(500, 'request was: {}'.format(req.headers))  # noqa: E731
    for route in (('POST', '/uploader'), ('POST', '/ingest')):
        stands.policy.route(*route, echo)
    for route in (('POST', '/upload'), ('GET', '/get_state')):
        stands.ingest.server.route(*route, echo)
    stands.cartd.server.route('POST', '*', echo)
    stands.cartd.server.route('HEAD', '*', echo)
    calls = [stands.policy_query().get_results, lambda: stands.policy_query().valid_metadata(st.metadata()),
             lambda: stands.uploader().getstate(1),
             lambda: stands.uploader().upload_bundle(Bundler(st.metadata(), st.file_data())),
             lambda: stands.cart_api().setup_cart(lambda: iter([])),
             lambda: stands.cart_api().wait_for_cart(stands.base('cart_proxy') + '/x', timeout=1)]
    for call in calls:
        with pytest.raises(PacificaError):
            call()


def test_an_unknown_network_id_is_reported_without_secrets(stands, monkeypatch):
    stands.policy.route('POST', '/uploader', lambda req: [])
    with pytest.raises(UnknownUserError) as info:
        PolicyQuery('dmlb2001', uploader_url=stands.base('policy_proxy') + '/uploader', config=FAST,
                    auth=stands.auth)
    assert 'dmlb2001' in str(info.value)
