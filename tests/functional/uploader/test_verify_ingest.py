"""Uploader.verify_ingest: the transaction's files on the (loopback) metadata service against what was sent."""
from __future__ import annotations

import io
import pickle
from typing import Any, Iterator, Tuple

import pytest

from pacifica.uploader import (
    ChecksumMismatch, FileMissing, HTTPStatusError, IngestError, IngestVerificationError, SizeMismatch,
    TransferConfig, UnexpectedFile, Uploader,
)
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.metadata import MetaData, MetaObj
from tests.helpers.ingestd import IngestServer
from tests.helpers.metadatad import MetadataServer
from tests.helpers.server import LoopbackServer, Reply

CONFIG = TransferConfig(connect_timeout=2, read_timeout=5, retries=1, backoff_factor=0.01, poll_interval=0.05)
FILES = {'data/a/one.txt': b'one\n', 'data/a/two.bin': b'\x00' * 300, 'data/top.txt': b''}


@pytest.fixture
def servers() -> Iterator[Tuple[IngestServer, MetadataServer]]:
    server = LoopbackServer()
    ingest = IngestServer(server)
    try:
        yield ingest, MetadataServer(server, ingest=ingest)
    finally:
        server.close()


def upload(ingest: IngestServer) -> Tuple[Uploader, Any, MetaData]:
    md_obj = MetaData([MetaObj(destinationTable='Transactions.submitter', value=10)])
    entries = [{'name': name, 'size': len(data), 'mtime': 1e9, 'fileobj': io.BytesIO(data)}
               for name, data in FILES.items()]
    uploader = Uploader(upload_url=ingest.url + '/upload', status_url=ingest.url + '/get_state', config=CONFIG)
    job_id = uploader.upload_bundle(Bundler(md_obj, entries))
    uploader.wait(job_id, timeout=10)
    return uploader, job_id, md_obj


def test_a_transaction_holding_what_was_sent_verifies(servers: Tuple[IngestServer, MetadataServer]) -> None:
    ingest, metadata = servers
    uploader, job_id, md_obj = upload(ingest)
    held = uploader.verify_ingest(job_id, md_obj, metadata.url)
    assert sorted((record.path, record.size) for record in held) == [
        ('a/one.txt', 4), ('a/two.bin', 300), ('top.txt', 0)]


def test_every_difference_is_named_and_typed(servers: Tuple[IngestServer, MetadataServer]) -> None:
    ingest, metadata = servers
    uploader, job_id, md_obj = upload(ingest)
    uploader.verify_ingest(job_id, md_obj, metadata.url)  # the rows exist now: alter them
    metadata.file_row(job_id, 'one.txt')['hashsum'] = 'f' * 40
    metadata.file_row(job_id, 'two.bin')['size'] = 299
    metadata.files.remove(metadata.file_row(job_id, 'top.txt'))
    metadata.add_transaction(job_id, {}, [{'name': 'stray.dat', 'subdir': 'a', 'size': 5, 'hashsum': 'e' * 40}])
    with pytest.raises(IngestVerificationError) as caught:
        uploader.verify_ingest(job_id, md_obj, metadata.url)
    error = caught.value
    assert isinstance(error, IngestError) and error.transaction_id == job_id
    assert [(type(p), p.path) for p in error.problems] == [
        (ChecksumMismatch, 'a/one.txt'), (UnexpectedFile, 'a/stray.dat'), (SizeMismatch, 'a/two.bin'),
        (FileMissing, 'top.txt')]
    size = error.problems[2]
    assert (size.expected_size, size.actual_size) == (300, 299)
    for name in ('a/one.txt', 'a/stray.dat', 'a/two.bin', 'top.txt'):
        assert name in str(error)
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.problems == error.problems


def test_a_transaction_the_server_does_not_know_misses_every_file(
        servers: Tuple[IngestServer, MetadataServer]) -> None:
    ingest, metadata = servers
    uploader, job_id, md_obj = upload(ingest)
    with pytest.raises(IngestVerificationError) as caught:
        uploader.verify_ingest(job_id + 1, md_obj, metadata.url)
    assert {type(problem) for problem in caught.value.problems} == {FileMissing}
    assert len(caught.value.problems) == len(FILES)


def test_a_failing_metadata_server_is_an_http_status_error(servers: Tuple[IngestServer, MetadataServer]) -> None:
    ingest, metadata = servers
    uploader, job_id, md_obj = upload(ingest)
    metadata.server.route('GET', '/files', Reply(503, b'maintenance'))
    with pytest.raises(HTTPStatusError) as caught:
        uploader.verify_ingest(job_id, md_obj, metadata.url)
    assert not isinstance(caught.value, IngestVerificationError) and caught.value.status_code == 503
