"""Upload a directory to the real ingest server and download it back through policy and cartd."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Dict

import pytest

from pacifica.downloader import Downloader
from pacifica.uploader import Uploader

# The bundler is imported inside the tests that build bundles, so the download
# and failure tests still run while a piece of the library is missing.

from .conftest import (
    INSTRUMENT, PROJECT, TREE_FILES, UPLOADER_ID, Stack, close_file_data, cloud_event_for, file_data_for,
    files_by_path, make_tree, sha1, transaction_metadata, tree_on_disk, wait_for_transaction,
)

pytestmark = pytest.mark.integration

JOB_DEADLINE = 90.0


@pytest.fixture(scope='module')
def uploaded(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """One upload with upload_bundle, shared by the download tests: its final state and transaction."""
    root = make_tree(tmp_path_factory.mktemp('bundle') / 'tree')
    from pacifica.uploader.bundler import Bundler
    entries = file_data_for(root)
    try:
        uploader = Uploader()
        job_id = uploader.upload_bundle(Bundler(transaction_metadata(), entries))
    finally:
        close_file_data(entries)
    final = uploader.wait(job_id, timeout=JOB_DEADLINE, interval=0.2)
    return {'job_id': job_id, 'state': final, 'transaction': wait_for_transaction(stack, job_id)}


def check_transaction_files(transaction: Dict[str, Any]) -> None:
    found = files_by_path(transaction)
    assert sorted(found) == sorted(TREE_FILES)
    for relative, data in TREE_FILES.items():
        assert found[relative]['size'] == len(data), relative
        assert found[relative]['hashtype'] == 'sha1'
        assert found[relative]['hashsum'] == sha1(data), relative


def test_upload_bundle_then_wait_reports_success(uploaded: Dict[str, Any]) -> None:
    state = uploaded['state']
    assert state['state'] == 'OK'
    assert state['task'] == 'ingest metadata'
    assert float(state['task_percent']) == 100.0
    assert int(state['job_id']) == int(uploaded['job_id'])


def test_uploaded_files_are_in_metadata_with_right_hashes(uploaded: Dict[str, Any]) -> None:
    transaction = uploaded['transaction']
    assert transaction['submitter'] == UPLOADER_ID
    assert transaction['project'] == PROJECT
    assert transaction['instrument'] == INSTRUMENT
    assert transaction['key_values'] == {'Tag': 'intégration'}
    check_transaction_files(transaction)


def test_documented_temp_file_flow(stack: Stack, upload_tree: Path) -> None:
    """The seed documents' flow: stream the bundle into a file, then upload that file."""
    from pacifica.uploader.bundler import Bundler
    md_update = transaction_metadata(tag='temp-file flow')
    entries = file_data_for(upload_tree)
    with tempfile.TemporaryFile() as bundle_file:
        try:
            Bundler(md_update, entries).stream(bundle_file)
        finally:
            close_file_data(entries)
        size = bundle_file.tell()
        bundle_file.seek(0)
        uploader = Uploader()
        job_id = uploader.upload(bundle_file, content_length=size)
    final = uploader.wait(job_id, timeout=JOB_DEADLINE, interval=0.2)
    assert final['state'] == 'OK'
    # the bundler appended one FileObj per file to the caller's metadata
    assert sorted(obj.name for obj in md_update if obj.destinationTable == 'Files') == sorted(
        Path(name).name for name in TREE_FILES)
    check_transaction_files(wait_for_transaction(stack, job_id))


def test_getstate_of_a_finished_job(uploaded: Dict[str, Any]) -> None:
    state = Uploader().getstate(uploaded['job_id'])
    assert state['state'] == 'OK'
    assert state['complete'] is True


def test_download_with_the_seed_documents_convention(stack: Stack, uploaded: Dict[str, Any], tmp_path: Path) -> None:
    Downloader(str(tmp_path), stack.cartd).transactioninfo(uploaded['transaction'])
    assert tree_on_disk(tmp_path / 'data') == TREE_FILES


def test_download_with_the_0_4_convention_and_a_filename(stack: Stack, uploaded: Dict[str, Any],
                                                         tmp_path: Path) -> None:
    Downloader(cart_api_url=stack.cartd).transactioninfo(str(tmp_path), uploaded['transaction'], filename='bündel')
    assert tree_on_disk(tmp_path / 'bündel') == TREE_FILES


def test_download_through_the_cartd_environment(uploaded: Dict[str, Any], tmp_path: Path) -> None:
    Downloader().transactioninfo(str(tmp_path), uploaded['transaction'])  # CARTD_CART_API_URL from the env
    assert tree_on_disk(tmp_path / 'data') == TREE_FILES


def test_download_through_a_cloud_event(stack: Stack, uploaded: Dict[str, Any], tmp_path: Path) -> None:
    event = json.loads(json.dumps(cloud_event_for(uploaded['transaction'])))  # as read from a file
    Downloader(cart_api_url=stack.cartd).cloudevent(str(tmp_path), event)
    assert tree_on_disk(tmp_path / 'data') == TREE_FILES


def test_download_through_a_cloud_event_seed_convention(stack: Stack, uploaded: Dict[str, Any],
                                                        tmp_path: Path) -> None:
    Downloader(str(tmp_path), stack.cartd).cloudevent(cloud_event_for(uploaded['transaction']), filename='ce')
    assert tree_on_disk(tmp_path / 'ce') == TREE_FILES


def test_fixture_transaction_with_a_top_level_file(stack: Stack, tmp_path: Path) -> None:
    """Transaction 900 holds a file with an empty subdir: it lands at <filename>/<name>."""
    Downloader(cart_api_url=stack.cartd).transactioninfo(str(tmp_path), stack.transaction(900))
    contents = {row['subdir'] + '/' + row['name'] if row['subdir'] else row['name']: row['content'].encode()
                for row in stack.fixture_rows('files') if 'content' in row}
    assert tree_on_disk(tmp_path / 'data') == contents
