"""fetch_transaction: transaction records from a loopback policy stand-in, and the package's exports."""
from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

import pacifica._client.exceptions as exceptions_module
import pacifica.downloader as package
from pacifica.downloader import (
    ConfigurationError, Downloader, InvalidResponseError, PolicyError, UnknownTransactionError, UsageError,
    fetch_transaction,
)
from pacifica.downloader.policy import policy_base_url
from tests.helpers.server import LoopbackServer, Reply
from tests.functional.downloader.conftest import FAST, final_files

RECORD: Dict[str, Any] = {
    '_id': 42, 'submitter': 10, 'project': '1234a', 'instrument': 54,
    'files': {'103': {'_id': 103, 'name': 'foo.txt', 'subdir': 'a/b', 'size': 12, 'hashtype': 'sha1',
                      'hashsum': '22596363b3de40b06f981fb85d82312e8c0ed511', 'mtime': '2019-03-04T05:06:07'}},
}


@pytest.fixture
def policy() -> Iterator[LoopbackServer]:
    """Policy's status API: transaction 42 exists; others get the 200-with-error-document policy sends."""
    server = LoopbackServer()
    server.route('GET', '/status/transactions/by_id/42', lambda req: RECORD)
    server.route('GET', '*', lambda req: {'status': '404 Not Found', 'traceback': '',
                                          'message': 'No Transaction with an ID of {} was found'.format(
                                              req.path.rsplit('/', 1)[1])})
    try:
        yield server
    finally:
        server.close()


def test_the_record_comes_back_as_policy_sent_it(policy: LoopbackServer) -> None:
    assert fetch_transaction(42, policy_url=policy.url, config=FAST) == RECORD
    assert fetch_transaction('42', policy_url=policy.url + '/', config=FAST) == RECORD
    assert policy.count('GET', '/status/transactions/by_id/42') == 2


def test_the_policy_environment_locates_the_server(policy: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('POLICY_ADDR', '127.0.0.1')
    monkeypatch.setenv('POLICY_PORT', str(policy.port))
    assert policy_base_url() == policy.url
    assert fetch_transaction(42, config=FAST)['_id'] == 42


def test_the_keyword_wins_over_the_environment(policy: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('POLICY_PORT', '9')
    assert fetch_transaction(42, policy_url=policy.url, config=FAST)['_id'] == 42


def test_defaults_are_those_of_policy_query() -> None:
    assert policy_base_url() == 'http://127.0.0.1:8181'


def test_auth_travels_with_the_request(policy: LoopbackServer) -> None:
    fetch_transaction(42, policy_url=policy.url, auth={'headers': {'X-Remote-User': 'dmlb2001'}}, config=FAST)
    assert policy.requests[-1].headers.get('X-Remote-User') == 'dmlb2001'


def test_an_unknown_id_answered_200_with_an_error_document(policy: LoopbackServer) -> None:
    with pytest.raises(UnknownTransactionError) as caught:
        fetch_transaction(43, policy_url=policy.url, config=FAST)
    assert caught.value.transaction_id == 43
    assert 'knows no transaction 43' in str(caught.value)
    assert 'No Transaction with an ID of 43 was found' in str(caught.value)
    assert isinstance(caught.value, (PolicyError, LookupError))


def test_an_error_document_without_a_message(server: LoopbackServer) -> None:
    server.route('GET', '*', lambda req: {'status': '404 Not Found'})
    with pytest.raises(UnknownTransactionError) as caught:
        fetch_transaction(44, policy_url=server.url, config=FAST)
    assert str(caught.value) == 'the policy server at {} knows no transaction 44'.format(server.url)


def test_an_unknown_id_answered_404(server: LoopbackServer) -> None:
    server.route('GET', '*', Reply(404, b'<html>Not Found</html>'))
    with pytest.raises(UnknownTransactionError, match='knows no transaction 7'):
        fetch_transaction(7, policy_url=server.url, config=FAST)


@pytest.mark.parametrize('reply', [
    [RECORD],
    {'_id': 42},
    {'_id': 42, 'files': ['103']},
    {'status': '500 Internal Server Error', 'message': 'database gone'},
])
def test_a_reply_that_is_no_record(server: LoopbackServer, reply: Any) -> None:
    server.route('GET', '*', lambda req: reply)
    with pytest.raises(InvalidResponseError, match='answered no transaction record'):
        fetch_transaction(42, policy_url=server.url, config=FAST)


def test_an_error_status_other_than_404_is_a_server_error(server: LoopbackServer) -> None:
    server.route('GET', '*', Reply(400, b'<html>bad id</html>'))
    with pytest.raises(exceptions_module.HTTPStatusError) as caught:
        fetch_transaction(42, policy_url=server.url, config=FAST)
    assert caught.value.status_code == 400


@pytest.mark.parametrize('value, error', [
    (0, ConfigurationError), (-3, ConfigurationError), ('4x', ConfigurationError), ('', ConfigurationError),
    ('١٢', ConfigurationError), (True, UsageError), (4.0, UsageError), (None, UsageError),
])
def test_what_is_no_transaction_id_is_refused_before_any_request(server: LoopbackServer, value: Any,
                                                                   error: type) -> None:
    with pytest.raises(error):
        fetch_transaction(value, policy_url=server.url, config=FAST)
    assert server.requests == []


def test_an_unusable_policy_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match='policy server URL'):
        fetch_transaction(42, policy_url='ftp://policy.example')


def test_the_record_feeds_the_downloader(policy: LoopbackServer, cartd: Any, dest: str) -> None:
    record = fetch_transaction(42, policy_url=policy.url, config=FAST)
    Downloader(cart_api_url=cartd.server.url, config=FAST).transactioninfo(dest, record)
    assert final_files(dest) == {'data/a/b/foo.txt': b'hello world\n'}


def test_the_package_exports_fetch_transaction_and_the_whole_exception_tree() -> None:
    assert package.fetch_transaction is fetch_transaction
    for name in ('Downloader', 'CartAPI', 'CloudEvent', 'TransactionInfo', 'fetch_transaction', 'TransferConfig',
                 'IgnoredKeywordWarning', '__version__'):
        assert name in package.__all__ and hasattr(package, name)
    for name in exceptions_module.__all__:
        assert getattr(package, name) is getattr(exceptions_module, name)
        assert name in package.__all__
