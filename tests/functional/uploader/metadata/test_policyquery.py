"""PolicyQuery against a loopback Policy (contract section 7)."""
from __future__ import annotations

import json

import pytest

from pacifica.uploader import (
    ConfigurationError, HTTPStatusError, InvalidResponseError, PolicyRejectedError, UnknownUserError,
    UsageError,
)
from pacifica.uploader.metadata import MetaData, MetaObj
from pacifica.uploader.metadata.policyquery import (
    QUERY_KEYS, PolicyQuery, PolicyQueryData, PolicyQueryDataDecoder, PolicyQueryDataEncoder, _mangle_decode,
    _mangle_encode, _PolicyQueryData,
)
from tests.helpers.server import Raw, Reply, reset_connection
from tests.functional.uploader.conftest import FAST, policy_rejection

VALID_MD = MetaData([MetaObj(destinationTable='Transactions.submitter', value=10)])


def test_query_data_fields():
    assert QUERY_KEYS == ['user', 'columns', 'from_table', 'where']
    assert PolicyQueryData() == (None, None, None, None) and issubclass(PolicyQueryData, _PolicyQueryData)


def test_url_defaults_env_and_keywords(monkeypatch):
    query = PolicyQuery(-1)
    assert (query._uploader_url, query._ingest_url) == ('http://127.0.0.1:8181/uploader', 'http://127.0.0.1:8181/ingest')
    monkeypatch.setenv('POLICY_PROTO', 'https')
    monkeypatch.setenv('POLICY_PORT', '9')
    monkeypatch.setenv('POLICY_INGEST_PATH', '/check')
    query = PolicyQuery(-1, addr='policy.example')
    assert (query._uploader_url, query._ingest_url) == ('https://policy.example:9/uploader',
                                                        'https://policy.example:9/check')
    query = PolicyQuery(-1, uploader_url='http://u.example/q')
    assert query._uploader_url == 'http://u.example/q' and query._ingest_url == 'https://127.0.0.1:9/check'
    with pytest.raises(ConfigurationError):
        PolicyQuery(-1, proto='ftp')


def test_tojson_exact_text():
    assert PolicyQuery(10).tojson() == '{"user": 10, "columns": null, "where": null, "from": null}'
    query = PolicyQuery('12', columns=['_id', 'näme'], from_table='users', where={'a': 1})
    assert query.tojson() == '{"user": 12, "columns": ["_id", "n\\u00e4me"], "where": {"a": 1}, "from": "users"}'
    assert PolicyQuery(-1, ['c'], 'projects').tojson() == \
        '{"user": -1, "columns": ["c"], "where": null, "from": "projects"}'
    assert json.dumps(query.pq_data, cls=PolicyQueryDataEncoder) == query.tojson()


def test_fromjson_round_trip_and_missing_user():
    query = PolicyQuery.fromjson('{"user": 10, "columns": ["_id"], "where": {"x": 1}, "from": "users"}')
    assert isinstance(query, PolicyQuery)
    assert query.pq_data == PolicyQueryData(user=10, columns=['_id'], from_table='users', where={'x': 1})
    assert PolicyQuery.fromjson('{"columns": null}').get_user() == -1
    assert PolicyQuery.fromjson(PolicyQuery(7, from_table='users').tojson()).tojson() == \
        PolicyQuery(7, from_table='users').tojson()
    assert json.loads('{"from": "t", "user": 1}', cls=PolicyQueryDataDecoder) == PolicyQueryData(1, None, 't')


def test_mangle_helpers():
    obj = {'user': 1, 'from_table': 't', 'where': None}
    _mangle_encode(obj)
    assert list(obj) == ['user', 'where', 'from'] and obj['from'] == 't'
    assert _mangle_decode(user=1, **{'from': 'x'}) == PolicyQueryData(user=1, from_table='x')


def test_url_keywords_together_with_query_fields(server, policy):
    """0.3.1 passed addr/port/... on to PolicyQueryData and failed with a TypeError."""
    query = PolicyQuery(10, columns=['_id'], from_table='users', where={'network_id': 'dmlb2001'},
                        addr='127.0.0.1', port=server.port, proto='http', uploader_path='/uploader',
                        ingest_path='/ingest', auth={}, timeout=3, config=FAST)
    assert query.get_results() == [{'_id': 10}]
    assert policy.queries == [{'user': 10, 'columns': ['_id'], 'where': {'network_id': 'dmlb2001'},
                               'from': 'users'}]
    assert server.requests[-1].headers['Content-Type'] == 'application/json'
    query = PolicyQuery(10, uploader_url=server.url + '/uploader', ingest_url=server.url + '/ingest',
                        from_table='projects', columns=['title'], where={'user_id': 10})
    assert query.get_results() == [{'title': 'Pacifica Development'}]


def test_unknown_keyword_is_a_clear_type_error():
    with pytest.raises(TypeError) as info:
        PolicyQuery(10, colums=['x'])
    assert 'colums' in str(info.value) and 'from_table' in str(info.value)


def test_user_ids_and_network_ids(server, policy):
    url = server.url
    assert PolicyQuery(10, addr='127.0.0.1', port=server.port).get_user() == 10
    assert PolicyQuery('11', uploader_url=url + '/uploader').get_user() == 11
    assert PolicyQuery(-1, uploader_url=url + '/uploader').get_user() == -1
    assert policy.queries == []
    query = PolicyQuery('jüri', uploader_url=url + '/uploader', from_table='projects')
    assert query.get_user() == 11 and query.user_id == 11 and query.pq_data.user == 11
    assert policy.queries == [{'user': -1, 'columns': ['_id'], 'where': {'network_id': 'jüri'}, 'from': 'users'}]
    query.set_user('dmlb2001')
    assert query.get_user() == 10 and json.loads(query.tojson())['user'] == 10


@pytest.mark.parametrize('user', [True, 1.5, float('inf'), [1], {}, None])
def test_a_user_that_is_neither_id_nor_network_id_is_a_type_error(user):
    with pytest.raises(UsageError) as info:
        PolicyQuery(user)
    assert isinstance(info.value, TypeError) and repr(user) in str(info.value)


def test_integral_floats_and_signed_digit_strings_are_ids(server, policy):
    assert PolicyQuery(12.0).get_user() == 12
    assert PolicyQuery(' -1 ').get_user() == -1
    assert policy.queries == []
    with pytest.raises(UnknownUserError):  # not a number: looked up as a network id
        PolicyQuery('--5', uploader_url=server.url + '/uploader')
    assert policy.queries[-1]['where'] == {'network_id': '--5'}


def test_network_id_lookup_uses_the_callers_endpoint(server, policy):
    """0.3.1 looked the user up at the default endpoint, ignoring addr/port given by the caller."""
    PolicyQuery('dmlb2001', addr='127.0.0.1', port=server.port)
    assert server.count('POST', '/uploader') == 1


def test_unknown_network_id_names_it(server, policy):
    with pytest.raises(UnknownUserError) as info:
        PolicyQuery('nobody-here', port=server.port)
    assert isinstance(info.value, IndexError) and "'nobody-here'" in str(info.value)


def test_lookup_reply_without_id(server):
    server.route('POST', '/uploader', [{'name': 'x'}])
    with pytest.raises(InvalidResponseError):
        PolicyQuery('someone', port=server.port)


def test_get_results_errors(server):
    server.route('POST', '/uploader', Reply(500, '{"message": "Invalid Query.", "status": "error"}'))
    query = PolicyQuery(10, port=server.port, config=FAST)
    with pytest.raises(HTTPStatusError) as info:
        query.get_results()
    assert info.value.status_code == 500 and 'Invalid Query.' in str(info.value)
    server.route('POST', '/uploader', {'not': 'a list'})
    with pytest.raises(InvalidResponseError):
        query.get_results()
    server.route('POST', '/uploader', b'<html>')
    with pytest.raises(InvalidResponseError):
        query.get_results()


def test_policy_posts_are_retried(server):
    """Policy POSTs only read, so a 503 or a dropped connection is retried like a GET."""
    replies = iter([Reply(503, 'busy'), Raw(reset_connection), [{'_id': 1}]])
    server.route('POST', '/uploader', lambda request: next(replies))
    assert PolicyQuery(10, port=server.port, config=FAST).get_results() == [{'_id': 1}]
    assert server.count('POST', '/uploader') == 3


def test_valid_metadata_success(server, policy):
    query = PolicyQuery(10, port=server.port)
    assert query.valid_metadata(VALID_MD) == {'status': 'success'}
    assert policy.validated == [[{'destinationTable': 'Transactions.submitter', 'value': 10}]]
    assert server.requests[-1].body == b'[{"destinationTable": "Transactions.submitter", "value": 10}]'
    assert query.validate_metadata(VALID_MD) is None


def test_policy_rejection_is_returned_by_valid_metadata(server, policy):
    """pacifica-policy 0.8.3 refuses with HTTP 412 and a JSON error page; consumers inspect that dict."""
    policy.refuse = 'Precondition Failed: Invalid values for project'
    reply = PolicyQuery(10, port=server.port).valid_metadata(VALID_MD)
    assert reply['status'] == '412 Precondition Failed'
    assert reply['message'] == 'Precondition Failed: Invalid values for project'


def test_validate_metadata_raises_with_the_servers_message(server, policy):
    policy.refuse = 'Precondition Failed: Invalid values for submitter, instrument'
    with pytest.raises(PolicyRejectedError) as info:
        PolicyQuery(10, port=server.port).validate_metadata(VALID_MD)
    assert 'Invalid values for submitter, instrument' in str(info.value)
    assert isinstance(info.value, ValueError) and info.value.reply['status'] == '412 Precondition Failed'


def test_policy_internal_error_page_is_a_refusal_too(server):
    server.route('POST', '/ingest', policy_rejection("KeyError: 'value'", '500 Internal Server Error'))
    query = PolicyQuery(10, port=server.port)
    assert query.valid_metadata(VALID_MD)['status'] == '500 Internal Server Error'
    with pytest.raises(PolicyRejectedError) as info:
        query.validate_metadata(VALID_MD)
    assert "KeyError: 'value'" in str(info.value)


def test_valid_metadata_non_policy_errors_raise(server):
    server.route('POST', '/ingest', Reply(502, '<html>bad gateway</html>'))
    query = PolicyQuery(10, port=server.port, config=FAST.__class__(retries=0))
    with pytest.raises(HTTPStatusError) as info:
        query.valid_metadata(VALID_MD)
    assert info.value.status_code == 502
    server.route('POST', '/ingest', Reply.json({'status': 'error'}, status=404))
    with pytest.raises(HTTPStatusError):
        query.valid_metadata(VALID_MD)
    server.route('POST', '/ingest', [1, 2])
    with pytest.raises(InvalidResponseError):
        query.valid_metadata(VALID_MD)


def test_auth_dict_is_sent_and_never_shown(server, debug_logs):
    seen = []

    def uploader(request):
        seen.append((request.headers.get('Authorization'), request.headers.get('X-Token'),
                     request.headers.get('Content-Type')))
        return Reply(500, 'nope')

    server.route('POST', '/uploader', uploader)
    auth = {'auth': ('alice', 'pw-very-secret'), 'headers': {'X-Token': 'token-very-secret'}}
    query = PolicyQuery(10, port=server.port, auth=auth, config=FAST)
    with pytest.raises(HTTPStatusError) as info:
        query.get_results()
    assert seen[0][0].startswith('Basic ') and seen[0][1:] == ('token-very-secret', 'application/json')
    for text in (debug_logs.text, str(info.value), repr(info.value)):
        assert 'very-secret' not in text
    assert 'POST' in debug_logs.text
