"""Failures on the real servers end in clear exceptions, never in something that looks like success."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from pacifica._client.exceptions import CartFailedError, IngestJobFailedError, PacificaError
from pacifica.downloader import Downloader
from pacifica.uploader import Uploader

from .conftest import Stack, close_file_data, file_data_for, transaction_metadata, upload_directory

pytestmark = pytest.mark.integration

JOB_DEADLINE = 90.0


def test_metadata_policy_rejects_fails_the_job_and_wait_raises(stack: Stack, upload_tree: Path) -> None:
    job_id = upload_directory(upload_tree, transaction_metadata(submitter=3003))  # not a project member
    with pytest.raises(IngestJobFailedError) as caught:
        Uploader().wait(job_id, timeout=JOB_DEADLINE, interval=0.2)
    assert isinstance(caught.value, RuntimeError)
    assert 'Precondition Failed' in str(caught.value)
    assert Uploader().getstate(job_id)['task'] == 'Policy Validation'


def test_bytes_that_do_not_match_their_hash_fail_the_job(stack: Stack, upload_tree: Path) -> None:
    from pacifica.uploader.bundler import Bundler
    (upload_tree / 'marker.txt').write_bytes(b'original bytes here')
    entries = file_data_for(upload_tree)
    bundle = io.BytesIO()
    try:
        Bundler(transaction_metadata(), entries).stream(bundle)
    finally:
        close_file_data(entries)
    tampered = bundle.getvalue().replace(b'original bytes here', b'ORIGINAL BYTES HERE')
    assert tampered != bundle.getvalue()
    uploader = Uploader()
    job_id = uploader.upload(io.BytesIO(tampered), content_length=len(tampered))
    with pytest.raises(IngestJobFailedError, match='failed to validate'):
        uploader.wait(job_id, timeout=JOB_DEADLINE, interval=0.2)
    assert uploader.getstate(job_id)['task'] == 'ingest files'


def test_bytes_that_are_not_a_tar_fail_the_job(stack: Stack) -> None:
    garbage = b'definitely not a tar archive ' * 64
    uploader = Uploader()
    job_id = uploader.upload(io.BytesIO(garbage), content_length=len(garbage))
    with pytest.raises(IngestJobFailedError, match='Failed to open tarfile'):
        uploader.wait(job_id, timeout=JOB_DEADLINE, interval=0.2)


def test_wait_for_an_unknown_job_raises(stack: Stack) -> None:
    with pytest.raises(PacificaError):
        Uploader().wait(987654321, timeout=10, interval=0.2)


def test_cart_for_a_file_the_archive_lacks_fails_cleanly(stack: Stack, tmp_path: Path) -> None:
    transaction = stack.transaction(901)  # fixture: file 903 is in metadata only
    assert list(transaction['files']) == ['903']
    with pytest.raises(CartFailedError) as caught:
        Downloader(cart_api_url=stack.cartd).transactioninfo(str(tmp_path), transaction, timeout=60)
    assert isinstance(caught.value, AssertionError)  # what the old downloader raised
    assert not any(path.is_file() for path in tmp_path.rglob('*')), 'a failed cart left files behind'


def test_transaction_policy_does_not_know_is_refused(stack: Stack, tmp_path: Path) -> None:
    document = stack.transaction(424242)  # policy answers 200 with an error document
    assert 'files' not in document
    with pytest.raises(ValueError):
        Downloader(cart_api_url=stack.cartd).transactioninfo(str(tmp_path), document)
