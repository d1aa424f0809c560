"""Uploader against a loopback Ingest (contract section 4, upload_bundle, wait)."""
from __future__ import annotations

import io
import os
import threading
import time

import pytest

from pacifica.uploader import (
    BundleError, ConfigurationError, FileChangedError, HTTPStatusError, IngestJobFailedError, InvalidResponseError,
    JobTimeoutError, PacificaError, ServerConnectionError, TransferConfig, Uploader, UploadLengthError,
    UploadRejectedError,
)
from pacifica.uploader import uploader as uploader_module
from pacifica.uploader.uploader import LOGGER
from pacifica.uploader.bundler import Bundler
from tests.helpers.ingestd import IngestServer
from tests.helpers.server import Raw, Reply, reset_connection
from tests.helpers.bundles import valid_metadata
from tests.functional.uploader.conftest import FAST, job_state

NO_RETRY = TransferConfig(connect_timeout=2, read_timeout=2, call_deadline=4, retries=0, chunk_size=4096)


def make_uploader(server, **kwargs):
    kwargs.setdefault('config', FAST)
    return Uploader(upload_url=server.url + '/upload', status_url=server.url + '/get_state', **kwargs)


def settled(condition, seconds=3.0):
    """Wait for the server thread to catch up with a client that already gave up."""
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.05)  # room for a (wrong) second request to show up
    return condition()


class IngestRecorder:
    """POST /upload: reads the body the way its framing says and remembers it."""

    def __init__(self, server, reply=None):
        self.bodies = []
        self.headers = []
        self.reply = reply if reply is not None else {'job_id': 1234}
        server.route('POST', '/upload', self.handle, read_body=False)

    def handle(self, request):
        self.headers.append(request.headers)
        if request.content_length is not None:
            body = bytearray()
            while len(body) < request.content_length:
                piece = request.rfile.read(min(65536, request.content_length - len(body)))
                if not piece:
                    break
                body += piece
            self.bodies.append(bytes(body))
            if len(body) < request.content_length:
                return Raw(lambda handler: None)  # the client gave up: never a complete upload
        else:
            self.bodies.append(self.read_chunked(request.rfile))
        return self.reply

    @staticmethod
    def read_chunked(rfile):
        body = bytearray()
        while True:
            size = int(rfile.readline().split(b';')[0], 16)
            if not size:
                rfile.readline()
                return bytes(body)
            body += rfile.read(size)
            rfile.readline()


class RecordingReader:
    """A binary reader that remembers the sizes it was asked for."""

    def __init__(self, data):
        self.source = io.BytesIO(data)
        self.sizes = []

    def read(self, size=-1):
        self.sizes.append(size)
        return self.source.read(size)


class CliStyleReader:
    """What pacifica-cli 0.5.2 passes: read(size) and a len attribute, nothing else."""

    def __init__(self, data, length):
        self.rfd = io.BytesIO(data)
        self.len = length

    def read(self, size=-1):
        return self.rfd.read(size)


class FakeBundler:
    """The Bundler interface: content_length() and iter_bytes() yielding views of one reused buffer."""

    def __init__(self, pieces, announced=None, fail_after=None):
        self.pieces = pieces
        self.announced = sum(len(piece) for piece in pieces) if announced is None else announced
        self.fail_after = fail_after
        self.callbacks = []

    def content_length(self):
        return self.announced

    def iter_bytes(self, callback=None, sleeptime=5):
        self.callbacks.append(callback)
        buffer = bytearray(max(len(piece) for piece in self.pieces))
        for number, piece in enumerate(self.pieces):
            if number == self.fail_after:
                raise FileChangedError('data/b.txt: 10 bytes declared, 7 read')
            buffer[:len(piece)] = piece
            yield memoryview(buffer)[:len(piece)]
            buffer[:] = b'\xee' * len(buffer)  # a sender that kept the old view would now send garbage
        if callback:
            callback(1.0)


# -- construction -----------------------------------------------------------------
def test_url_parts_env_and_whole_urls(monkeypatch):
    uploader = Uploader()
    assert (uploader._upload_url, uploader._status_url) == ('http://127.0.0.1:8066/upload',
                                                            'http://127.0.0.1:8066/get_state')
    monkeypatch.setenv('INGEST_ADDR', 'ingest.example')
    monkeypatch.setenv('INGEST_UPLOAD_PATH', '/up')
    uploader = Uploader(port=9000, proto='https')
    assert (uploader._upload_url, uploader._status_url) == ('https://ingest.example:9000/up',
                                                            'https://ingest.example:9000/get_state')
    assert Uploader(status_url='http://s.example/state')._status_url == 'http://s.example/state'
    assert isinstance(LOGGER, __import__('logging').Logger) and LOGGER.name == 'pacifica.uploader.uploader'


@pytest.mark.parametrize('kwargs,error', [
    ({'proto': 'ftp'}, ConfigurationError),
    ({'upload_url': 'not a url'}, ConfigurationError),
    ({'timeout': -1}, ConfigurationError),
    ({'auth': ('user', 'pw')}, ConfigurationError),
    ({'config': {'retries': 1}}, ConfigurationError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        Uploader(**kwargs)


# -- upload ---------------------------------------------------------------------------
def test_upload_file_object(server):
    ingest = IngestRecorder(server)
    data = os.urandom(10000)
    assert make_uploader(server).upload(io.BytesIO(data)) == 1234
    headers = ingest.headers[0]
    assert ingest.bodies == [data] and headers['Content-Length'] == '10000'
    assert headers['Content-Type'] == 'application/octet-stream' and 'Transfer-Encoding' not in headers


def test_upload_reads_in_chunk_size_pieces(server):
    IngestRecorder(server)
    reader = RecordingReader(b'x' * 20000)
    make_uploader(server, config=TransferConfig(chunk_size=12288)).upload(reader, content_length=20000)
    assert set(reader.sizes) == {12288} and len(reader.sizes) >= 2  # neither http.client's 8 KiB nor urllib3's 16


def test_upload_cli_style_object_with_len(server):
    ingest = IngestRecorder(server)
    data = bytes(range(256)) * 40
    assert make_uploader(server).upload(CliStyleReader(data, len(data)), content_length=len(data)) == 1234
    assert make_uploader(server).upload(CliStyleReader(data, len(data))) == 1234
    assert ingest.bodies == [data, data] and ingest.headers[1]['Content-Length'] == str(len(data))


def test_upload_real_file_and_pipe(server, tmp_path):
    ingest = IngestRecorder(server)
    path = tmp_path / 'bundle.tar'
    path.write_bytes(b'0123456789' * 1000)
    with open(path, 'rb') as handle:
        handle.read(10)
        make_uploader(server).upload(handle)
    assert ingest.bodies[0] == (b'0123456789' * 1000)[10:] and ingest.headers[0]['Content-Length'] == '9990'
    read_fd, write_fd = os.pipe()

    def feed():
        with os.fdopen(write_fd, 'wb') as writer:
            for _ in range(50):
                writer.write(b'p' * 1000)

    thread = threading.Thread(target=feed)
    thread.start()
    with os.fdopen(read_fd, 'rb') as reader:
        make_uploader(server).upload(reader)
    thread.join()
    assert ingest.bodies[1] == b'p' * 50000 and ingest.headers[1].get('Transfer-Encoding') == 'chunked'


def test_upload_bytes_and_string_length(server):
    ingest = IngestRecorder(server)
    make_uploader(server).upload(b'raw bytes')
    make_uploader(server).upload(io.BytesIO(b'four'), content_length='4')
    assert ingest.bodies == [b'raw bytes', b'four'] and ingest.headers[1]['Content-Length'] == '4'


@pytest.mark.parametrize('read_fd,content_length', [(io.BytesIO(b'x'), 'many'), (io.BytesIO(b'x'), -3),
                                                    ('a str', None), (None, None)])
def test_upload_bad_arguments(server, read_fd, content_length):
    with pytest.raises(ConfigurationError):
        make_uploader(server).upload(read_fd, content_length=content_length)
    assert server.count('POST', '/upload') == 0


@pytest.mark.parametrize('announced', [9999, 10001, 4096, 1])
def test_upload_length_mismatch_never_completes(server, announced):
    ingest = IngestRecorder(server)
    with pytest.raises(UploadLengthError) as info:
        make_uploader(server).upload(io.BytesIO(b'z' * 10000), content_length=announced)
    assert info.value.expected == announced and isinstance(info.value, ValueError)
    assert settled(lambda: len(ingest.bodies) == 1) and server.count('POST', '/upload') == 1
    assert len(ingest.bodies[0]) < announced  # the server never held a complete body


def test_reset_mid_body_is_not_resent(server):
    def reset_after_some(request):
        request.rfile.read(65536)
        return Raw(reset_connection)

    server.route('POST', '/upload', reset_after_some, read_body=False)
    uploader = make_uploader(server, config=TransferConfig(retries=5, backoff_factor=0.01, chunk_size=65536))
    with pytest.raises(ServerConnectionError):
        uploader.upload(io.BytesIO(b'r' * (8 * 1024 * 1024)))
    assert settled(lambda: server.count('POST', '/upload') >= 1, seconds=0.5)
    assert server.count('POST', '/upload') == 1


def test_upload_503_is_not_retried(server):
    server.route('POST', '/upload', Reply(503, 'busy', {'Retry-After': '0'}))
    with pytest.raises(HTTPStatusError) as info:
        make_uploader(server).upload(io.BytesIO(b'data'))
    assert info.value.status_code == 503
    assert settled(lambda: server.count('POST', '/upload') >= 1, seconds=0.5)
    assert server.count('POST', '/upload') == 1


@pytest.mark.parametrize('reply,error', [
    ({'state': 'OK'}, UploadRejectedError),
    ([1234], UploadRejectedError),
    (b'<html>ok</html>', InvalidResponseError),
    (Reply(500, '{"message": "disk full"}'), HTTPStatusError),
])
def test_bad_upload_answers(server, reply, error):
    IngestRecorder(server, reply=reply)
    with pytest.raises(error) as info:
        make_uploader(server).upload(io.BytesIO(b'data'))
    assert isinstance(info.value, PacificaError)


# -- upload_bundle --------------------------------------------------------------------------
def test_upload_bundle_streams_each_chunk_before_the_next(server):
    ingest = IngestRecorder(server)
    pieces = [b'a' * 5000, b'b' * 3000, b'c' * 7000, b'd']
    bundler = FakeBundler(pieces)
    progress = []
    assert make_uploader(server).upload_bundle(bundler, callback=progress.append) == 1234
    assert ingest.bodies == [b''.join(pieces)] and ingest.headers[0]['Content-Length'] == '15001'
    assert bundler.callbacks == [progress.append] and progress == [1.0]
    assert make_uploader(server).upload_bundle(FakeBundler([b'q'])) == 1234


@pytest.mark.parametrize('announced', [14999, 15001, 100])
def test_upload_bundle_detects_a_wrong_length(server, announced):
    ingest = IngestRecorder(server)
    bundler = FakeBundler([b'a' * 5000, b'b' * 10000], announced=announced)
    with pytest.raises(UploadLengthError) as info:
        make_uploader(server).upload_bundle(bundler)
    assert str(announced) in str(info.value)
    assert settled(lambda: len(ingest.bodies) == 1) and server.count('POST', '/upload') == 1
    assert len(ingest.bodies[0]) < announced


def test_upload_bundle_raises_the_bundlers_error(server):
    """A FileChangedError is an OSError: it must not turn into a connection error, nor a retry."""
    ingest = IngestRecorder(server)
    bundler = FakeBundler([b'a' * 5000, b'b' * 5000, b'c' * 5000], fail_after=1)
    with pytest.raises(FileChangedError) as info:
        make_uploader(server).upload_bundle(bundler)
    assert 'data/b.txt' in str(info.value)
    assert settled(lambda: len(ingest.bodies) == 1) and server.count('POST', '/upload') == 1
    assert ingest.bodies == [b'a' * 5000]


@pytest.mark.parametrize('length', [0, -5, 1.5, '10', True])
def test_upload_bundle_needs_a_byte_count(server, length):
    with pytest.raises(BundleError):
        make_uploader(server).upload_bundle(FakeBundler([b'x'], announced=length))
    assert server.count('POST', '/upload') == 0


def test_body_refuses_a_second_pass():
    body = uploader_module._SizedStreamBody(lambda: [b'abc'], 3)
    assert b''.join(bytes(chunk) for chunk in body) == b'abc'
    with pytest.raises(uploader_module._AbortUpload):
        iter(body)


# -- getstate -------------------------------------------------------------------------------
def test_getstate(server):
    server.route('GET', '/get_state', lambda request: job_state(int(request.query['job_id']), task='open tar'))
    state = make_uploader(server).getstate(77)
    assert state == job_state(77, task='open tar')
    assert server.requests[-1].query == {'job_id': '77'}


def test_getstate_errors(server):
    server.route('GET', '/get_state', Reply.json({'message': 'job ID 5 does not exist.'}, status=404))
    with pytest.raises(HTTPStatusError) as info:
        make_uploader(server).getstate(5)
    assert info.value.status_code == 404 and 'does not exist' in str(info.value)
    server.route('GET', '/get_state', ['not', 'a', 'state'])
    with pytest.raises(InvalidResponseError):
        make_uploader(server).getstate(5)


# -- wait -------------------------------------------------------------------------------------
def scripted_states(server, replies):
    replies = iter(replies)
    last = {}

    def handler(request):
        last['reply'] = next(replies, last.get('reply'))
        return last['reply']

    server.route('GET', '/get_state', handler)


def test_wait_success(server):
    scripted_states(server, [job_state(9), job_state(9, task='ingest files', percent='50.0'),
                             job_state(9, task='ingest metadata', percent='0.0'),
                             job_state(9, task='ingest metadata', percent='100.0')])
    state = make_uploader(server).wait(9, timeout=10, interval=0.01)
    assert state['task'] == 'ingest metadata' and state['task_percent'] == '100.0'
    assert server.count('GET', '/get_state') == 4


def test_wait_failure_carries_the_server_exception(server):
    text = 'Traceback ...\nIngestException: hash mismatch for data/a.txt'
    scripted_states(server, [job_state(9, task='ingest files'),
                             job_state(9, state='FAILED', task='ingest files', exception=text)])
    with pytest.raises(IngestJobFailedError) as info:
        make_uploader(server).wait(9, interval=0.01)
    assert info.value.server_exception == text and 'hash mismatch for data/a.txt' in str(info.value)
    assert info.value.job_id == 9 and info.value.state['task'] == 'ingest files'
    assert isinstance(info.value, RuntimeError)


def test_wait_timeout(server):
    scripted_states(server, [job_state(9, task='ingest files', percent='10.0')])
    start = time.monotonic()
    with pytest.raises(JobTimeoutError) as info:
        make_uploader(server).wait(9, timeout=0.5, interval=0.1)
    assert 0.5 <= time.monotonic() - start < 2.5
    assert isinstance(info.value, TimeoutError) and info.value.state['task'] == 'ingest files'
    assert "'ingest files'" in str(info.value)


def test_wait_timeout_bounds_a_hanging_poll(server):
    def hang(request):
        time.sleep(4)
        return job_state(9)

    server.route('GET', '/get_state', hang)
    start = time.monotonic()
    with pytest.raises(JobTimeoutError):
        make_uploader(server, config=TransferConfig(read_timeout=30, retries=0)).wait(9, timeout=0.5)
    assert time.monotonic() - start < 2.5


def test_wait_rides_out_transient_poll_errors(server):
    scripted_states(server, [job_state(9), Reply(503, 'restarting'), Raw(reset_connection), Reply(502, 'proxy'),
                             job_state(9, task='ingest metadata', percent='100.0')])
    state = make_uploader(server, config=NO_RETRY).wait(9, timeout=20, interval=0.01)
    assert state['task_percent'] == '100.0' and server.count('GET', '/get_state') == 5


def test_wait_without_timeout_gives_up_after_two_failed_polls(server):
    scripted_states(server, [job_state(9), Reply(503, 'down'), Reply(503, 'still down')])
    with pytest.raises(HTTPStatusError):
        make_uploader(server, config=NO_RETRY).wait(9, interval=0.01)
    assert server.count('GET', '/get_state') == 3


def test_wait_unknown_job_fails_at_once(server):
    server.route('GET', '/get_state', Reply.json({'message': 'job ID 9 does not exist.'}, status=404))
    with pytest.raises(HTTPStatusError):
        make_uploader(server).wait(9, timeout=30, interval=0.01)
    assert server.count('GET', '/get_state') == 1


def ingest_job(server, progress_polls):
    """An ingest stand-in holding one job that reports done at poll ``progress_polls + 1``; its id."""
    ingest = IngestServer(server, progress_polls=progress_polls)
    bundle = Bundler(valid_metadata(), [{'name': 'data/a.txt', 'size': 3, 'mtime': 0, 'fileobj': io.BytesIO(b'abc')}])
    return ingest, make_uploader(server).upload_bundle(bundle)


@pytest.mark.parametrize('config, interval, pause', [
    (TransferConfig(poll_interval=7.5), None, 7.5),
    (TransferConfig(poll_interval=7.5), 0.25, 0.25),
    (TransferConfig(), None, 1.0),
])
def test_wait_polls_every_config_poll_interval_unless_given_one(server, monkeypatch, config, interval, pause):
    """docs/configuration.rst: poll_interval is the time between two polls of an ingest job."""
    ingest, job_id = ingest_job(server, progress_polls=3)
    naps = []
    monkeypatch.setattr(time, 'sleep', naps.append)  # counts the pauses instead of sitting them out
    state = make_uploader(server, config=config).wait(job_id, timeout=3600, interval=interval)
    assert state['task'] == 'ingest metadata' and ingest.job(job_id).polls == 4
    assert naps == [pause] * 3


@pytest.mark.parametrize('timeout', [None, float('inf')])
def test_wait_without_a_limit(server, timeout):
    _, job_id = ingest_job(server, progress_polls=1)
    state = make_uploader(server, config=TransferConfig(poll_interval=0.01)).wait(job_id, timeout=timeout)
    assert state['task_percent'] == '100.0'


@pytest.mark.parametrize('kwargs', [{'interval': 0}, {'interval': 'often'}, {'timeout': -1}, {'timeout': 0},
                                    {'timeout': True}, {'interval': float('inf')}, {'timeout': float('nan')}])
def test_wait_bad_arguments(server, kwargs):
    with pytest.raises(ConfigurationError):
        make_uploader(server).wait(9, **kwargs)


# -- secrets ------------------------------------------------------------------------------------
def test_auth_is_sent_and_never_shown(server, debug_logs):
    ingest = IngestRecorder(server, reply=Reply(500, 'ingest broke'))
    server.route('GET', '/get_state', Reply(500, 'state broke'))
    auth = {'auth': ('alice', 'pw-very-secret'), 'headers': {'X-Token': 'token-very-secret'}}
    secret_url = 'http://alice:url-very-secret@127.0.0.1:{}'.format(server.port)
    uploader = Uploader(upload_url=secret_url + '/upload', status_url=secret_url + '/get_state', auth=auth,
                        config=NO_RETRY)
    errors = []
    for call in (lambda: uploader.upload(io.BytesIO(b'data')), lambda: uploader.getstate(1),
                 lambda: uploader.wait(1, timeout=0.2, interval=0.05)):
        with pytest.raises(PacificaError) as info:
            call()
        errors.append(info.value)
    headers = ingest.headers[0]
    assert headers['Authorization'].startswith('Basic ') and headers['X-Token'] == 'token-very-secret'
    assert headers['Content-Type'] == 'application/octet-stream'
    assert 'Upload URL' in debug_logs.text
    for text in [debug_logs.text] + [str(error) for error in errors] + [repr(error) for error in errors]:
        assert 'very-secret' not in text


# -- with the real Bundler ----------------------------------------------------------------------
def test_upload_bundle_with_the_real_bundler(server, tmp_path):
    """The POSTed body is exactly what Bundler.stream() writes: a tar ingest can open and check."""
    import contextlib
    import tarfile

    from pacifica.uploader import bundler as bundler_package
    from pacifica.uploader.metadata import MetaData, MetaObj, metadata_decode

    ingest = IngestRecorder(server)
    contents = {'data/a.txt': b'alpha\n' * 1000, 'data/sub/dir/ü.bin': os.urandom(70000), 'data/empty': b''}
    for name, data in contents.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    files = contextlib.ExitStack()

    def new_bundler():
        md_obj = MetaData([MetaObj(destinationTable='Transactions.instrument', value=54)])
        file_data = [{'name': name, 'size': len(data), 'mtime': 1545127200,
                      'fileobj': files.enter_context(open(tmp_path / name, 'rb'))} for name, data in contents.items()]
        return bundler_package.Bundler(md_obj, file_data), md_obj

    with files:
        bundler, md_obj = new_bundler()
        assert make_uploader(server).upload_bundle(bundler) == 1234
        body = ingest.bodies[0]
        assert ingest.headers[0]['Content-Length'] == str(len(body))
        reference, _ = new_bundler()
        expected = io.BytesIO()
        reference.stream(expected)
    assert body == expected.getvalue()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert archive.getnames() == list(contents) + ['metadata.txt']
        for name, data in contents.items():
            assert archive.extractfile(name).read() == data
        sent_metadata = metadata_decode(archive.extractfile('metadata.txt').read())
    assert sent_metadata == md_obj and [item.name for item in md_obj[1:]] == ['a.txt', 'ü.bin', 'empty']
