"""MetaUpdate against a loopback Policy (contract section 7)."""
from __future__ import annotations

import copy
import threading

import pytest

from pacifica.uploader import InvalidMetadataError, InvalidResponseError, MissingQueryResultsError
from pacifica.uploader.metadata import MetaData, MetaObj, MetaUpdate


def upload_form():
    """The usual form: who is logged on, then a project of theirs, then an instrument of that project."""
    return [
        MetaObj(destinationTable='Transactions.submitter', metaID='logon', sourceTable='users',
                queryDependency={'network_id': 'logon_name'}, queryFields=['_id', 'first_name'],
                valueField='_id', displayFormat='{_id} {first_name}', directoryOrder=None),
        MetaObj(destinationTable='Transactions.project', metaID='project', sourceTable='projects',
                queryDependency={'user_id': 'logon'}, queryFields=['_id', 'title'], valueField='_id',
                displayFormat='Project {_id}', directoryOrder=0),
        MetaObj(destinationTable='Transactions.instrument', metaID='instrument', sourceTable='instruments',
                queryDependency={'project_id': 'project'}, queryFields=['_id', 'display_name'],
                valueField='_id', displayFormat='{display_name}', directoryOrder=1),
        MetaObj(destinationTable='TransactionKeyValue', metaID='logon_name', key='network_id', value='dmlb2001',
                queryDependency={}),
    ]


class Unpicklable:
    """Stands for a Kerberos auth: deepcopy must not try to copy it."""

    def __init__(self):
        self.lock = threading.Lock()

    def __deepcopy__(self, memo):
        raise AssertionError('auth was deep-copied')


def test_is_a_metadata_with_auth():
    auth = {'auth': Unpicklable()}
    update = MetaUpdate('dmlb2001', upload_form(), auth=auth)
    assert isinstance(update, MetaData) and update.get_auth() is auth and update['project'].valueField == '_id'
    assert MetaUpdate(10).get_auth() == {} and len(MetaUpdate(10)) == 0


def test_deepcopy_copies_items_and_shares_auth():
    auth = {'auth': Unpicklable()}
    update = MetaUpdate('dmlb2001', upload_form(), auth=auth, port=1234)
    clone = copy.deepcopy(update)
    assert type(clone) is MetaUpdate and clone == update and clone.get_auth() is auth
    assert clone['project'].queryFields is not update['project'].queryFields
    clone['logon_name'] = clone['logon_name']._replace(value='changed')
    clone.insert(0, MetaObj(metaID='new'))
    assert update['logon_name'].value == 'dmlb2001' and clone['logon_name'].value == 'changed'
    with pytest.raises(IndexError):
        update['new']  # noqa: B018
    assert copy.copy(update).get_auth() is auth


def test_dependent_meta_id():
    update = MetaUpdate(10, upload_form())
    assert update.dependent_meta_id('project') == ['logon']
    assert update.dependent_meta_id('logon_name') == []
    update.append(MetaObj(metaID='self', queryDependency={'a': 'self', 'b': 'logon'}))
    assert update.dependent_meta_id('self') == ['logon']


def test_query_results_uses_dependencies_user_and_auth(policy, policy_env):
    auth = {'headers': {'X-Remote-User': 'dmlb2001'}}
    update = MetaUpdate(10, upload_form(), auth=auth)
    assert update.query_results('logon') == [{'_id': 10, 'first_name': 'David'}]
    assert policy.queries[-1] == {'user': 10, 'columns': ['_id', 'first_name'],
                                  'where': {'network_id': 'dmlb2001'}, 'from': 'users'}
    assert policy_env.requests[-1].headers['X-Remote-User'] == 'dmlb2001'


def test_update_parents_fills_dependencies_first(policy, policy_env):
    update = MetaUpdate('dmlb2001', upload_form())
    update.update_parents('instrument')
    assert update['logon'].value == 10 and update['logon'].query_results == [{'_id': 10, 'first_name': 'David'}]
    assert update['project'].value == '1234a'
    assert update['instrument'].value == 54
    assert update['instrument'].query_results == [{'_id': 54, 'display_name': 'NMR'}]
    froms = [query['from'] for query in policy.queries if query['user'] != -1]
    assert froms == [None, 'users', 'projects', 'instruments']  # logon_name (no sourceTable) is queried too
    assert update['logon_name'].value == 'dmlb2001' and update['logon_name'].query_results == []
    assert update.directory_prefix() == 'Project 1234a/NMR'
    assert update.is_valid()


def test_update_parents_keeps_a_chosen_value(policy, policy_env):
    update = MetaUpdate(11, upload_form())
    update['logon'] = update['logon']._replace(value=10)
    update.update_parents('logon')
    assert update['logon'].value == 10
    assert update['logon'].query_results == [{'_id': 10, 'first_name': 'David'}]


def test_update_parents_survives_cycles(policy, policy_env):
    form = MetaUpdate(10, [
        MetaObj(metaID='a', sourceTable='users', queryFields=['_id'], valueField='_id', queryDependency={'_id': 'b'}),
        MetaObj(metaID='b', sourceTable='users', queryFields=['_id'], valueField='_id', queryDependency={'_id': 'a'},
                value=10),
    ])
    form.update_parents('a')
    assert form['a'].value == 10


def test_update_parents_names_a_missing_value_field(server, policy_env):
    server.route('POST', '/uploader', [{'other': 1}])
    update = MetaUpdate(10, [MetaObj(metaID='x', sourceTable='users', queryFields=['other'], valueField='_id')])
    with pytest.raises(InvalidResponseError) as info:
        update.update_parents('x')
    assert "'x'" in str(info.value) and "'_id'" in str(info.value) and isinstance(info.value, KeyError)


def test_policy_keywords_reach_the_queries(server, policy):
    update = MetaUpdate(10, upload_form(), addr='127.0.0.1', port=server.port, timeout=5)
    update['logon'] = update['logon']._replace(value=10)
    assert update.query_results('project') == [{'_id': '1234a', 'title': 'Pacifica Development'}]
    assert server.count('POST', '/uploader') == 1
    assert policy.queries == [{'user': 10, 'columns': ['_id', 'title'], 'where': {'user_id': 10}, 'from': 'projects'}]
    with pytest.raises(TypeError):
        MetaUpdate(10, upload_form(), prot='http')


def test_directory_prefix_order_and_errors():
    update = MetaUpdate(10, [
        MetaObj(metaID='b', directoryOrder=2, displayFormat='{x}', query_results=[{'x': 'second'}]),
        MetaObj(metaID='a', directoryOrder=1, displayFormat='{x}-{y}', query_results=[{'x': 'first', 'y': 1}]),
        MetaObj(metaID='c'),
    ])
    assert update.directory_prefix() == 'first-1/second'
    update.append(MetaObj(metaID='d', directoryOrder=0, displayFormat='{x}'))
    with pytest.raises(InvalidMetadataError) as info:
        update.directory_prefix()
    assert "'d'" in str(info.value)


@pytest.mark.parametrize('results, old_error', [([], IndexError), (None, TypeError)])
def test_directory_prefix_without_results_is_caught_as_0_3_1_errors(results, old_error):
    """0.3.1 raised IndexError for [] and TypeError for None; old except clauses must still catch it."""
    update = MetaUpdate(10, [MetaObj(metaID='d', directoryOrder=0, displayFormat='{x}', query_results=results)])
    with pytest.raises(old_error) as info:
        update.directory_prefix()
    assert isinstance(info.value, MissingQueryResultsError) and isinstance(info.value, InvalidMetadataError)
    assert isinstance(info.value, IndexError) and isinstance(info.value, TypeError)
    assert 'update_parents' in str(info.value)
