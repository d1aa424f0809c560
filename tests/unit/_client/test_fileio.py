"""write_all: every byte arrives, in pieces no larger than WRITE_SIZE, whatever the writer returns."""
from __future__ import annotations

import errno
import io
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacifica._client import fileio
from pacifica._client.fileio import WRITE_SIZE, reserve_space, write_all


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


# A writer that takes few bytes per call makes many calls: the tiny limits go with small buffers,
# so that every example stays far below hypothesis' deadline.
@given(st.one_of(
    st.tuples(st.integers(0, 3000), st.integers(1, 64)),
    st.tuples(st.integers(0, 2 * WRITE_SIZE + 5), st.integers(1024, WRITE_SIZE + 3)),
))
def test_partial_writes_are_resumed_where_they_stopped(size_and_limit):
    size, limit = size_and_limit
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


def _new_file(tmp_path):
    path = str(tmp_path / 'reserved.bin')
    return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def test_reserve_space_keeps_the_size_and_reserves_blocks_where_it_can(tmp_path):
    path, fd = _new_file(tmp_path)
    try:
        reserve_space(fd, 4 << 20, path)
        info = os.fstat(fd)
    finally:
        os.close(fd)
    assert info.st_size == 0  # the size still says how much was written
    if fileio._fallocate() is not None and hasattr(info, 'st_blocks'):
        assert info.st_blocks * 512 >= 4 << 20


def test_reserving_more_than_the_disk_holds_names_the_file(tmp_path):
    path, fd = _new_file(tmp_path)
    try:
        if fileio._fallocate() is None:  # not Linux: reserving is a no-op, never an error
            reserve_space(fd, 1 << 62, path)
            return
        with pytest.raises(OSError) as caught:
            reserve_space(fd, 1 << 62, path)
    finally:
        os.close(fd)
    assert caught.value.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    assert caught.value.filename == path
    assert 'reserving' in str(caught.value)
