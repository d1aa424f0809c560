"""MetaUpdate resolving a realistic uploader configuration through the real policy server."""
from __future__ import annotations

import copy
import json

import pytest

from pacifica.uploader.metadata import MetaUpdate, metadata_decode
from pacifica.uploader.metadata.policyquery import PolicyQuery

from .conftest import INSTRUMENT, PROJECT, UPLOADER_ID, UPLOADER_NETWORK_ID, Stack

pytestmark = pytest.mark.integration

#: An uploader configuration in the shape of the seed documents' example: the
#: user is known, the project is chosen, the instrument follows from the project.
CONFIGURATION = [
    {
        'destinationTable': 'Transactions.submitter', 'metaID': 'logon', 'displayType': 'logged_on',
        'displayTitle': 'Currently Logged On', 'sourceTable': 'users', 'queryDependency': {'_id': 'logon'},
        'queryFields': ['first_name', 'last_name', '_id'], 'valueField': '_id',
        'displayFormat': '{_id} - {first_name} {last_name}', 'value': UPLOADER_ID,
    },
    {
        'destinationTable': 'Transactions.project', 'metaID': 'project', 'displayType': 'select',
        'displayTitle': 'Projet', 'sourceTable': 'projects', 'queryDependency': {'_id': 'project'},
        'queryFields': ['_id', 'title'], 'valueField': '_id', 'displayFormat': '{_id} – {title}',
        'directoryOrder': 0, 'value': PROJECT,
    },
    {
        'destinationTable': 'Transactions.instrument', 'metaID': 'instrument', 'displayType': 'select',
        'displayTitle': 'Instrument', 'sourceTable': 'instruments', 'queryDependency': {'project_id': 'project'},
        'queryFields': ['_id', 'name_short'], 'valueField': '_id', 'displayFormat': '{_id} {name_short}',
        'directoryOrder': 1, 'value': '',
    },
    {
        'destinationTable': 'TransactionKeyValue', 'metaID': 'tag', 'displayType': 'enter',
        'displayTitle': 'Étiquette', 'key': 'Étiquette', 'value': 'carottes n°3',
    },
]


def configured(user=UPLOADER_NETWORK_ID) -> MetaUpdate:
    return MetaUpdate(user, metadata_decode(json.dumps(CONFIGURATION)))


def test_network_id_user_and_dependencies(stack: Stack) -> None:
    md_update = configured()
    assert list(md_update.dependent_meta_id('instrument')) == ['project']
    assert not md_update.is_valid()  # the instrument has no value yet


def test_update_parents_fills_the_instrument_from_the_project(stack: Stack) -> None:
    md_update = configured()
    md_update.update_parents('instrument')
    assert md_update['instrument'].value == INSTRUMENT
    assert md_update['instrument'].query_results == [{'_id': INSTRUMENT, 'name_short': 'IRMS-δ13C'}]
    assert md_update['project'].query_results == [
        {'_id': PROJECT, 'title': 'Sédiments côtiers: carbon burial rates'}]
    assert md_update.is_valid()


def test_update_parents_keeps_a_value_that_is_already_chosen(stack: Stack) -> None:
    md_update = configured()
    md_update.update_parents('logon')
    assert md_update['logon'].value == UPLOADER_ID
    assert md_update['logon'].query_results == [{'_id': UPLOADER_ID, 'first_name': 'Zoë', 'last_name': 'Håkansson'}]


def test_directory_prefix_renders_non_ascii_names(stack: Stack) -> None:
    md_update = configured()
    md_update.update_parents('instrument')
    assert md_update.directory_prefix() == 'stk1001 – Sédiments côtiers: carbon burial rates/3101 IRMS-δ13C'


def test_resolved_configuration_passes_policy_and_survives_deepcopy(stack: Stack) -> None:
    auth: dict = {}
    md_update = MetaUpdate(str(UPLOADER_ID), metadata_decode(json.dumps(CONFIGURATION)), auth=auth)
    md_update.update_parents('instrument')
    clone = copy.deepcopy(md_update)
    assert clone.get_auth() is auth
    assert clone.is_valid()
    assert PolicyQuery(UPLOADER_ID).valid_metadata(clone) == {'status': 'success'}


def test_query_results_for_the_user_as_network_id(stack: Stack) -> None:
    rows = configured().query_results('logon')
    assert rows == [{'_id': UPLOADER_ID, 'first_name': 'Zoë', 'last_name': 'Håkansson'}]
