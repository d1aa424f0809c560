"""benchmarks/servers.py drops a body of known length before its kept tail: by splice, or by the plain read.

The ingest stand-in must count every byte and keep the last ones exactly,
whichever way it drops the rest; a body that ends one byte early or late
would also break the next request on the same connection, so each
connection carries two.
"""
from __future__ import annotations

import json
import os
import random
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'benchmarks'))
import metadata_tables  # noqa: E402 - benchmarks/ is a folder of scripts, importable once on sys.path
import servers  # noqa: E402

TAIL = 64 << 10
#: Whether this Python and system can splice: then the splice path must be the one taken.
CAN_SPLICE = hasattr(os, 'splice') and sys.platform.startswith('linux')


def payload(size: int) -> bytes:
    """Bytes that differ everywhere (no period an off-by-N error could hide in)."""
    return random.Random(size).randbytes(size)


@pytest.fixture
def tcp_pair() -> Iterator[Tuple[socket.socket, socket.socket]]:
    """Both ends of a loopback TCP connection: (client, server side)."""
    with socket.create_server(('127.0.0.1', 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    with client, accepted:
        yield client, accepted


@pytest.mark.parametrize('splice', [True, False])
@pytest.mark.parametrize('count', [0, 100, 40_000, (3 << 20) + 5])
def test_discard_drops_exactly_count_bytes(tcp_pair: Tuple[socket.socket, socket.socket], count: int,
                                           splice: bool) -> None:
    client, accepted = tcp_pair
    body = payload(count + 1000)
    sender = threading.Thread(target=lambda: (client.sendall(b'HEAD\r\n' + body), client.shutdown(socket.SHUT_WR)))
    sender.start()
    with accepted.makefile('rb') as rfile:
        assert rfile.readline() == b'HEAD\r\n'  # the buffer now holds the first bytes of the body
        spliced = servers.discard(rfile, accepted, count, splice)
        assert rfile.read() == body[count:]
    sender.join()
    if not splice:
        assert spliced == 0
    elif count > (1 << 20):
        assert (spliced > 0) == CAN_SPLICE
    assert spliced <= count


class _Recorded(servers._JobBook):
    """The job book, also keeping what each upload's handler took for its byte count and tail."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: List[Tuple[int, bytes]] = []

    def open(self, received: int, tail: bytes) -> int:
        self.bodies.append((received, bytes(tail)))
        return super().open(received, tail)


def _post(connection: socket.socket, replies, body: bytes) -> dict:
    """POST /upload with Content-Length, headers and body in one send (the body's start lands in the buffer)."""
    connection.sendall(b'POST /upload HTTP/1.1\r\nHost: stand-in\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    assert replies.readline().startswith(b'HTTP/1.1 200')
    length = 0
    for line in iter(replies.readline, b'\r\n'):
        name, _, value = line.decode('ascii').partition(':')
        if name.lower() == 'content-length':
            length = int(value)
    return json.loads(replies.read(length))


@pytest.mark.parametrize('splice', [True, False])
@pytest.mark.parametrize('size', [1000, TAIL, TAIL + 1, (5 << 20) + 3])
def test_stand_in_counts_every_byte_and_keeps_the_tail(size: int, splice: bool) -> None:
    server = servers.StandInServer({}, tail_size=TAIL, splice=splice)
    server.jobs = recorded = _Recorded()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bodies = [payload(size), payload(size + 7)]
    try:
        with socket.create_connection(server.server_address) as connection, connection.makefile('rb') as replies:
            answers = [_post(connection, replies, body) for body in bodies]
    finally:
        server.shutdown()
        server.server_close()
    assert answers == [{'job_id': 1}, {'job_id': 2}]
    assert recorded.bodies == [(len(body), body[-TAIL:]) for body in bodies]


#: Values a decoded metadata.txt may hold: the record fields are usually text, but need not be.
JSON_VALUES = st.one_of(st.text(), st.integers(), st.floats(allow_infinity=False), st.none(), st.booleans(),
                        st.sampled_from(['4096', ' 12 ', 'x', '']))
RECORDS = st.lists(st.dictionaries(st.sampled_from(['name', 'subdir', 'size', 'hashtype', 'hashsum', 'mimetype',
                                                    'ctime']),
                                   st.one_of(st.text(), JSON_VALUES)), max_size=6)


def _outcome(make: Any) -> Any:
    """The bytes made, or the exception's type and text."""
    try:
        return make()
    except (KeyError, TypeError, ValueError) as err:
        return type(err), str(err)


@settings(max_examples=300, deadline=None)
@given(RECORDS, st.integers(1, 10 ** 6), st.integers(1, 10 ** 6))
def test_the_files_answer_is_json_dumps_of_the_rows(records: list, first_id: int, transaction_id: int) -> None:
    made = _outcome(lambda: metadata_tables.files_answer(records, first_id, transaction_id))
    plain = _outcome(lambda: json.dumps(metadata_tables.file_rows(records, first_id, transaction_id)).encode())
    assert made == plain


def test_well_formed_records_answer_as_json_dumps_writes_them() -> None:
    records = [{'name': 'n\u00e9 "1".bin', 'subdir': 'd/\u2603', 'size': '12', 'hashtype': 'sha1', 'hashsum': 'ab',
                'mimetype': 'text/plain'}, {'name': 'b', 'size': 0}]
    assert metadata_tables.files_answer(records, 5, 3) == json.dumps([
        {'_id': 5, 'transaction': 3, 'name': 'n\u00e9 "1".bin', 'subdir': 'd/\u2603', 'size': 12, 'hashtype': 'sha1',
         'hashsum': 'ab', 'mimetype': 'text/plain'},
        {'_id': 6, 'transaction': 3, 'name': 'b', 'subdir': '', 'size': 0, 'hashtype': '', 'hashsum': '',
         'mimetype': ''}]).encode()


def test_a_reset_keep_alive_connection_prints_nothing(capsys: pytest.CaptureFixture) -> None:
    """A client that resets its idle connection is no error of the stand-in; other errors are still printed."""
    server = servers.StandInServer({})
    try:
        try:
            raise ConnectionResetError(104, 'reset by peer')
        except ConnectionResetError:
            server.handle_error(None, ('127.0.0.1', 1))
        try:
            raise ValueError('a real problem')
        except ValueError:
            server.handle_error(None, ('127.0.0.1', 1))
    finally:
        server.server_close()
    printed = capsys.readouterr().err
    assert 'ConnectionResetError' not in printed
    assert 'a real problem' in printed
