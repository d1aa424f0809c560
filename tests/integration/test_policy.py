"""PolicyQuery against the real policy server and the fixture data set."""
from __future__ import annotations

import pytest

from pacifica.uploader.metadata import MetaData, MetaObj
from pacifica.uploader.metadata.policyquery import PolicyQuery

from .conftest import INSTRUMENT, PROJECT, UPLOADER_ID, UPLOADER_NETWORK_ID, Stack, transaction_metadata

pytestmark = pytest.mark.integration


def test_network_id_resolves_to_the_user_id(stack: Stack) -> None:
    query = PolicyQuery(UPLOADER_NETWORK_ID)
    assert query.user_id == UPLOADER_ID
    assert query.get_user() == UPLOADER_ID


def test_digit_string_is_taken_as_the_user_id_without_a_lookup(stack: Stack) -> None:
    assert PolicyQuery(str(UPLOADER_ID)).user_id == UPLOADER_ID


def test_unknown_network_id_raises_a_clear_index_error(stack: Stack) -> None:
    with pytest.raises(IndexError, match='nobody-here'):
        PolicyQuery('nobody-here')


def test_user_query_returns_the_requested_columns_with_non_ascii_names(stack: Stack) -> None:
    rows = PolicyQuery(UPLOADER_ID, columns=['_id', 'first_name', 'last_name'], from_table='users',
                       where={'_id': UPLOADER_ID}).get_results()
    assert rows == [{'_id': UPLOADER_ID, 'first_name': 'Zoë', 'last_name': 'Håkansson'}]


def test_projects_of_the_user(stack: Stack) -> None:
    rows = PolicyQuery(UPLOADER_ID, columns=['_id'], from_table='projects', where={}).get_results()
    assert sorted(row['_id'] for row in rows) == ['stk1001', 'stk1002']


def test_instruments_depend_on_the_chosen_project(stack: Stack) -> None:
    def instruments(project: str) -> list:
        rows = PolicyQuery(UPLOADER_ID, columns=['_id', 'name_short'], from_table='instruments',
                           where={'project_id': project}).get_results()
        return sorted(row['_id'] for row in rows)
    assert instruments('stk1001') == [INSTRUMENT]
    assert instruments('stk1002') == [3101, 3102]


def test_endpoint_keywords_and_query_fields_together(stack: Stack) -> None:
    query = PolicyQuery(UPLOADER_ID, columns=['_id'], from_table='projects', where={'instrument_id': 3102},
                        uploader_url=stack.policy + '/uploader', ingest_url=stack.policy + '/ingest')
    assert [row['_id'] for row in query.get_results()] == ['stk1002']


def test_valid_metadata_accepts_good_metadata(stack: Stack) -> None:
    assert PolicyQuery(UPLOADER_ID).valid_metadata(transaction_metadata()) == {'status': 'success'}


@pytest.mark.parametrize(('submitter', 'project', 'instrument', 'complaint'), [
    (3003, PROJECT, INSTRUMENT, 'project (stk1001) not in user instrument list'),   # not a member
    (UPLOADER_ID, 'no-such-project', INSTRUMENT, 'Invalid values for project'),
    (UPLOADER_ID, PROJECT, 3102, 'instrument (3102) not in user project list'),    # wrong instrument
])
def test_valid_metadata_returns_policys_refusal(stack: Stack, submitter, project, instrument, complaint) -> None:
    reply = PolicyQuery(UPLOADER_ID).valid_metadata(transaction_metadata(submitter, project, instrument))
    assert reply['status'].startswith('412')
    assert complaint in reply['message']


def test_valid_metadata_refuses_metadata_without_a_transaction(stack: Stack) -> None:
    reply = PolicyQuery(UPLOADER_ID).valid_metadata(MetaData([MetaObj(destinationTable='TransactionKeyValue',
                                                                       key='k', value='v')]))
    assert reply['status'].startswith('412')
    assert 'submitter, project, instrument' in reply['message']
