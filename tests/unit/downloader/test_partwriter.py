"""PartWriter's fence: the owner of the pieces learns when the writer no longer needs them."""
from __future__ import annotations

import threading

from pacifica.downloader import _partwriter
from pacifica.downloader._partwriter import PartWriter


def test_no_fence_while_nothing_is_written_in_the_background(tmp_path):
    writer = PartWriter()
    part = writer.begin(str(tmp_path / 'small'), None, 10)
    writer.write(part, memoryview(b'0123456789'))
    assert writer.fence() is None  # written on the calling thread: nothing borrowed
    writer.end(part)
    writer.finish()
    assert (tmp_path / 'small').read_bytes() == b'0123456789'


def test_fence_opens_after_the_writes_before_it(tmp_path, monkeypatch):
    release = threading.Event()
    real_write = _partwriter._PartFile.write

    def held_write(part, piece):
        release.wait(5)
        real_write(part, piece)

    monkeypatch.setattr(_partwriter._PartFile, 'write', held_write)
    writer = PartWriter()
    size = PartWriter.BACKGROUND_SIZE
    piece = bytearray(b'x' * size)
    part = writer.begin(str(tmp_path / 'big'), 1_600_000_000, size)
    writer.write(part, memoryview(piece))
    fence = writer.fence()
    assert fence is not None and not fence.wait(0.2), 'the fence opened before the write was done'
    release.set()
    assert fence.wait(5)
    writer.end(part)
    writer.finish()
    assert (tmp_path / 'big').read_bytes() == piece
    assert (tmp_path / 'big').stat().st_mtime == 1_600_000_000


def test_abandon_opens_every_fence(tmp_path):
    writer = PartWriter()
    size = PartWriter.BACKGROUND_SIZE
    part = writer.begin(str(tmp_path / 'big'), None, size)
    writer.write(part, memoryview(bytes(100)))  # queued behind the open; the fences follow it
    fences = [writer.fence() for _ in range(3)]
    writer.abandon(None)
    assert all(fence is not None and fence.is_set() for fence in fences)
    assert writer.fence() is None
