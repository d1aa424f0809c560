"""The part-file process: the files it makes, what it confirms, and what it never leaves behind."""
from __future__ import annotations

import errno
import io
import math
import os
import subprocess

import pytest

from pacifica._client.exceptions import ArchiveError, UnsafeArchiveError
from pacifica.downloader import _creator
from pacifica.downloader import _creator_worker as worker
from pacifica.downloader._creator import PartCreator, start_creator
from pacifica.downloader._partwriter import PartWriter


def _record(path, data: bytes, mtime=None) -> bytes:
    encoded = os.fsencode(str(path))
    return worker.RECORD.pack(len(encoded), len(data), math.nan if mtime is None else mtime) + encoded + data


def _serve(stream: bytes):
    sink = io.BytesIO()
    status = worker.serve(io.BytesIO(stream), sink)
    report = sink.getvalue()
    assert report.startswith(worker.GREETING)
    return status, report[len(worker.GREETING):]


def test_worker_makes_each_file_with_its_bytes_and_mtime(tmp_path):
    status, report = _serve(_record(tmp_path / 'a', b'alpha', 1_600_000_000) + _record(tmp_path / 'b', b''))
    assert (status, report) == (0, worker.DONE + worker.COUNT.pack(2))
    assert (tmp_path / 'a').read_bytes() == b'alpha'
    assert (tmp_path / 'a').stat().st_mtime == 1_600_000_000
    assert (tmp_path / 'b').read_bytes() == b''


def test_worker_drops_a_record_cut_short(tmp_path):
    stream = _record(tmp_path / 'whole', b'whole') + _record(tmp_path / 'cut', b'0123456789')[:-3]
    assert _serve(stream) == (0, worker.DONE + worker.COUNT.pack(1))
    assert sorted(os.listdir(tmp_path)) == ['whole']


def test_worker_stops_at_the_first_error_and_leaves_nothing_of_it(tmp_path):
    stream = (_record(tmp_path / 'first', b'1') + _record(tmp_path / 'no-such-dir' / 'second', b'2')
              + _record(tmp_path / 'third', b'3'))
    status, report = _serve(stream)
    assert status == 1 and report[:1] == worker.FAILED
    made, code, _text, _path = worker.PROBLEM.unpack_from(report, 1)
    assert (made, code) == (1, errno.ENOENT)
    assert sorted(os.listdir(tmp_path)) == ['first']


def test_worker_replaces_a_stale_part_and_refuses_a_directory(tmp_path):
    (tmp_path / 'stale').write_bytes(b'from a killed run, and longer')
    (tmp_path / 'dir').mkdir()
    status, report = _serve(_record(tmp_path / 'stale', b'fresh') + _record(tmp_path / 'dir', b'x'))
    assert (tmp_path / 'stale').read_bytes() == b'fresh'
    assert status == 1 and worker.PROBLEM.unpack_from(report, 1)[:2] == (1, errno.EISDIR)


def _send(creator: PartCreator, path, data: bytes, mtime=None) -> None:
    creator.begin(str(path), mtime, len(data))
    for start in range(0, len(data), 7):  # in pieces, as a cart's buffers hand them out
        creator.write(memoryview(data)[start:start + 7])


def test_creator_makes_every_file_before_finish_returns(tmp_path, monkeypatch):
    monkeypatch.setattr(_creator, 'BATCH_BYTES', 64)  # many batches
    files = {tmp_path / 'f{}'.format(index): bytes([index]) * (index * 13) for index in range(40)}
    creator = PartCreator()
    for path, data in files.items():
        _send(creator, path, data, 1_500_000_000 + len(data))
    creator.finish()
    assert creator.incomplete == []
    for path, data in files.items():
        assert path.read_bytes() == data
        assert path.stat().st_mtime == 1_500_000_000 + len(data)


def test_creator_error_fails_finish_and_marks_the_rest_incomplete(tmp_path):
    creator = PartCreator()
    paths = [tmp_path / 'one', tmp_path / 'missing' / 'two', tmp_path / 'three']
    for path in paths:
        _send(creator, path, b'data')
    with pytest.raises(OSError) as caught:
        creator.finish()
    assert caught.value.errno == errno.ENOENT and caught.value.filename == str(paths[1])
    assert creator.incomplete == [str(paths[1]), str(paths[2])]
    assert sorted(os.listdir(tmp_path)) == ['one']


def test_creator_directory_at_a_part_path_is_an_unsafe_archive(tmp_path):
    (tmp_path / 'dir').mkdir()
    creator = PartCreator()
    _send(creator, tmp_path / 'dir', b'x')
    with pytest.raises(UnsafeArchiveError):
        creator.finish()


def test_a_lost_process_fails_finish_and_confirms_nothing(tmp_path):
    creator = PartCreator()
    _send(creator, tmp_path / 'one', b'one')
    creator._process.kill()  # what an out-of-memory kill would do
    creator._process.wait()
    _send(creator, tmp_path / 'two', b'two' * 1000)
    with pytest.raises(ArchiveError):
        creator.finish()
    assert creator.incomplete == [str(tmp_path / 'one'), str(tmp_path / 'two')]


def test_abandon_mid_file_makes_the_whole_ones_only(tmp_path):
    creator = PartCreator()
    _send(creator, tmp_path / 'whole', b'whole')
    creator.begin(str(tmp_path / 'half'), None, 100)
    creator.write(memoryview(b'only half'))
    creator.abandon()
    assert creator.incomplete == [str(tmp_path / 'half')]
    assert sorted(os.listdir(tmp_path)) == ['whole']
    creator.abandon()  # twice is harmless


def test_part_writer_sends_small_parts_to_the_creator_and_writes_big_ones_itself(tmp_path):
    writer = PartWriter(creator=PartCreator())
    big = bytes(range(256)) * (PartWriter.BACKGROUND_SIZE // 256)
    for name, data in (('small', b'small'), ('big', big)):
        part = writer.begin(str(tmp_path / name), None, len(data))
        assert part.remote == (name == 'small')
        writer.write(part, memoryview(data))
        writer.end(part)
    writer.finish()
    assert (tmp_path / 'small').read_bytes() == b'small' and (tmp_path / 'big').read_bytes() == big


def test_part_writer_abandon_reports_the_creators_incomplete_parts(tmp_path):
    writer = PartWriter(creator=PartCreator())
    part = writer.begin(str(tmp_path / 'half'), None, 10)
    writer.write(part, memoryview(b'12345'))
    writer.abandon(part)
    assert writer.incomplete == {str(tmp_path / 'half')}
    assert not os.listdir(tmp_path)


def test_start_creator_only_when_it_pays_and_can_start(monkeypatch):
    assert start_creator(_creator.AUTO_MIN_FILES - 1) is None
    monkeypatch.setattr(_creator, 'can_start', lambda: False)
    assert start_creator(_creator.AUTO_MIN_FILES) is None


def test_start_creator_falls_back_when_the_process_does_not_start(monkeypatch):
    def no_process(*_args, **_kwargs):
        raise OSError(errno.EAGAIN, 'no more processes')

    monkeypatch.setattr(subprocess, 'Popen', no_process)
    assert start_creator(_creator.AUTO_MIN_FILES) is None


def test_a_process_that_is_no_python_worker_fails_finish(monkeypatch, tmp_path):
    monkeypatch.setattr(_creator, '_WORKER_PATH', os.devnull)  # runs, says nothing, ends
    creator = PartCreator()
    _send(creator, tmp_path / 'one', b'one')
    with pytest.raises(ArchiveError):
        creator.finish()
    assert creator.incomplete == [str(tmp_path / 'one')]
