"""write_all: every byte arrives, in pieces no larger than WRITE_SIZE, whatever the writer returns."""
from __future__ import annotations

import io
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacifica._client.fileio import WRITE_SIZE, write_all


class RecordingWriter:
    """Takes at most ``limit`` bytes per call and remembers every call's length."""

    def __init__(self, limit: int, answer_none: bool = False) -> None:
        self.limit = limit
        self.answer_none = answer_none
        self.calls: list[int] = []
        self.data = bytearray()

    def write(self, piece: memoryview):
        self.calls.append(len(piece))
        if self.answer_none:
            self.data += piece
            return None
        taken = bytes(piece[:self.limit])
        self.data += taken
        return len(taken)


def test_large_buffer_is_written_in_pieces_of_at_most_write_size():
    data = os.urandom(3 * WRITE_SIZE + 17)
    writer = RecordingWriter(limit=1 << 30)
    write_all(writer.write, data)
    assert bytes(writer.data) == data
    assert writer.calls == [WRITE_SIZE, WRITE_SIZE, WRITE_SIZE, 17]


@given(size=st.integers(0, 2 * WRITE_SIZE + 5), limit=st.integers(1, WRITE_SIZE + 3))
def test_partial_writes_are_resumed_where_they_stopped(size, limit):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    writer = RecordingWriter(limit)
    write_all(writer.write, bytearray(data))
    assert bytes(writer.data) == data
    assert all(call <= WRITE_SIZE for call in writer.calls)


def test_none_from_the_writer_means_everything_was_taken():
    writer = RecordingWriter(limit=0, answer_none=True)
    write_all(writer.write, b'x' * (WRITE_SIZE + 1))
    assert bytes(writer.data) == b'x' * (WRITE_SIZE + 1)
    assert writer.calls == [WRITE_SIZE, 1]


def test_a_writer_that_takes_nothing_is_an_error_not_a_spin():
    with pytest.raises(OSError, match='accepted no bytes'):
        write_all(lambda piece: 0, b'abc')


def test_raw_file_descriptor_writes_land_in_the_file(tmp_path):
    path = tmp_path / 'out.bin'
    data = os.urandom(WRITE_SIZE * 2 + 1)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        write_all(lambda piece: os.write(fd, piece), memoryview(data))
    finally:
        os.close(fd)
    assert path.read_bytes() == data


def test_empty_buffer_writes_nothing():
    out = io.BytesIO()
    calls = []
    write_all(lambda piece: calls.append(piece) or out.write(piece), b'')
    assert calls == [] and out.getvalue() == b''
