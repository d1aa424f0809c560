"""The read-ahead process: same bytes, same errors, and never a new way to fail."""
from __future__ import annotations

import io
import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import ConfigurationError, FileChangedError
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.bundler import tarwriter
from pacifica.uploader.bundler import readahead
from pacifica.uploader.bundler.tarwriter import SMALL_FILE

from tests.helpers.bundles import MTIME, bundle_bytes, valid_metadata

posix_only = pytest.mark.skipif(sys.platform == 'win32', reason='POSIX file types and executables')

ON = TransferConfig(read_ahead=True)
OFF = TransferConfig(read_ahead=False)


class Spy:
    """Records every ReadAhead the bundler starts and how many files it handed over."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, after_take: Any = None) -> None:
        self.instances: List[readahead.ReadAhead] = []
        self.taken = 0
        spy = self

        class Recorded(readahead.ReadAhead):
            def __init__(self, *args: Any) -> None:
                super().__init__(*args)
                spy.instances.append(self)

            def take(self, name: str, target: memoryview) -> bytes:
                digest = super().take(name, target)
                spy.taken += 1
                if after_take is not None:
                    after_take(self, spy.taken)
                return digest

        monkeypatch.setattr(tarwriter, 'ReadAhead', Recorded)


def write_files(root: Path, sizes: List[int], prefix: str = 'f') -> List[Dict[str, Any]]:
    entries = []
    for index, size in enumerate(sizes):
        path = root / 'd{}'.format(index % 7) / '{}{}.bin'.format(prefix, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes((index + offset) % 251 for offset in range(size)))
        entries.append({'name': 'data/{}/{}'.format(path.parent.name, path.name), 'size': size, 'mtime': MTIME,
                        'path': str(path)})
    return entries


def mixed_entries(root: Path) -> List[Dict[str, Any]]:
    """Small files of awkward sizes, a large file, a file object and a non-ASCII path, interleaved."""
    root.mkdir()
    entries = write_files(root, [0, 1, 511, 512, 513, 4096, SMALL_FILE, 3000, 7])
    large = root / 'large.bin'
    large.write_bytes(b'L' * (SMALL_FILE + 1))
    entries.insert(3, {'name': 'data/large.bin', 'size': SMALL_FILE + 1, 'mtime': MTIME, 'path': str(large)})
    entries.insert(5, {'name': 'data/object.txt', 'size': 5, 'mtime': MTIME, 'fileobj': io.BytesIO(b'hello')})
    accented = root / 'Zürich café.dat'
    accented.write_bytes(b'accents')
    entries.append({'name': 'data/zurich.dat', 'size': 7, 'mtime': MTIME, 'path': str(accented)})
    return entries


@pytest.mark.parametrize('hashfunc', ['sha1', 'sha256', 'md5', 'shake_128'])
@pytest.mark.parametrize('chunk_size', [512, 4096, 1 << 20])
def test_the_stream_is_byte_identical_with_and_without_it(tmp_path, monkeypatch, hashfunc, chunk_size):
    entries = mixed_entries(tmp_path / 'off')
    without = bundle_bytes(Bundler(valid_metadata(), entries, hashfunc=hashfunc,
                                   config=TransferConfig(chunk_size=chunk_size, read_ahead=False)))
    entries = mixed_entries(tmp_path / 'on')  # a fresh file object
    small_paths = sum(1 for entry in entries if 'path' in entry and entry['size'] <= SMALL_FILE)
    spy = Spy(monkeypatch)
    with_it = bundle_bytes(Bundler(valid_metadata(), entries, hashfunc=hashfunc,
                                   config=TransferConfig(chunk_size=chunk_size, read_ahead=True)))
    assert spy.taken == small_paths, 'every small path file came from the read-ahead process'
    assert with_it == without


def test_by_default_it_starts_from_2000_small_files_and_skips_the_first_1000(tmp_path, monkeypatch):
    entries = write_files(tmp_path, [64] * readahead.AUTO_MIN_FILES)
    reference = bundle_bytes(Bundler(valid_metadata(), entries, config=OFF))
    spy = Spy(monkeypatch)
    assert bundle_bytes(Bundler(valid_metadata(), entries)) == reference
    assert len(spy.instances) == 1
    assert spy.taken == readahead.AUTO_MIN_FILES - readahead.STARTUP_FILES
    fewer = entries[:readahead.AUTO_MIN_FILES - 1]
    bundle_bytes(Bundler(valid_metadata(), fewer))
    assert len(spy.instances) == 1, 'below AUTO_MIN_FILES the start-up would cost more than it saves'


@pytest.mark.parametrize('startup', [0, 1, 2, 5])
def test_by_default_the_files_it_serves_start_after_the_first_small_ones_among_others(tmp_path, monkeypatch,
                                                                                       startup):
    """Small path files between large files and file objects: the first ``startup`` of them are read here."""
    entries = mixed_entries(tmp_path / 'off')
    entries.insert(0, entries.pop(3))  # the large file first
    reference = bundle_bytes(Bundler(valid_metadata(), entries, config=OFF))
    small_paths = sum(1 for entry in entries if 'path' in entry and entry['size'] <= SMALL_FILE)
    monkeypatch.setattr(tarwriter, 'AUTO_MIN_FILES', small_paths)
    monkeypatch.setattr(tarwriter, 'STARTUP_FILES', startup)
    for entry in entries:
        if 'fileobj' in entry:
            entry['fileobj'].seek(0)
    spy = Spy(monkeypatch)
    assert bundle_bytes(Bundler(valid_metadata(), entries)) == reference
    assert len(spy.instances) == 1 and spy.taken == small_paths - startup


def test_off_means_no_process(tmp_path, monkeypatch):
    entries = write_files(tmp_path, [10] * 50)
    spy = Spy(monkeypatch)
    bundle_bytes(Bundler(valid_metadata(), entries, config=OFF))
    assert spy.instances == []


@pytest.mark.parametrize('value', ['yes', 1, 0.5])
def test_read_ahead_setting_must_be_none_or_a_bool(value):
    with pytest.raises(ConfigurationError, match='read_ahead'):
        TransferConfig(read_ahead=value)


def _delete(path: Path) -> None:
    path.unlink()


def _shrink(path: Path) -> None:
    path.write_bytes(b'x')


def _grow(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b'more')


def _same_size_other_file(path: Path) -> None:
    """Replaced by a directory: opening works on POSIX, reading fails."""
    path.unlink()
    path.mkdir()


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(str(path))


CHANGES = [pytest.param(_delete, id='deleted'), pytest.param(_shrink, id='shrank'),
           pytest.param(_grow, id='grew'),
           pytest.param(_same_size_other_file, id='directory', marks=posix_only),
           pytest.param(_fifo, id='fifo', marks=posix_only)]


def _failure(entries: List[Dict[str, Any]], config: TransferConfig, change: Any, victim: Path) -> BaseException:
    bundler = Bundler(valid_metadata(), entries, config=config)
    change(victim)
    with pytest.raises(Exception) as info:
        bundle_bytes(bundler)
    return info.value


@pytest.mark.parametrize('change', CHANGES)
def test_a_file_changed_after_listing_raises_the_same_error_either_way(tmp_path, monkeypatch, change):
    errors = []
    for config, folder in ((OFF, 'off'), (ON, 'on')):
        entries = write_files(tmp_path / folder, [100] * 6)
        victim = Path(entries[4]['path'])
        spy = Spy(monkeypatch)
        errors.append(_failure(entries, config, change, victim))
        if config is ON:
            assert spy.taken == 4, 'the files before the changed one came from the process'
            assert spy.instances[0]._process is None, 'the failed stream stopped its process'
    off, on = errors
    assert isinstance(on, FileChangedError) and isinstance(off, FileChangedError)
    assert str(on).replace('/on/', '/off/') == str(off)
    assert on.errno == off.errno


def test_a_worker_that_dies_midway_is_replaced_by_reading_here(tmp_path, monkeypatch, caplog):
    # 8 MB: far more than the pipe and the buffers on both of its ends hold (1.5 MiB)
    entries = write_files(tmp_path, [100_000] * 80)
    reference = bundle_bytes(Bundler(valid_metadata(), entries, config=OFF))

    def kill_after_ten(instance: readahead.ReadAhead, taken: int) -> None:
        if taken == 10:
            assert instance._process is not None
            instance._process.kill()
            instance._process.wait()

    spy = Spy(monkeypatch, after_take=kill_after_ten)
    with caplog.at_level(logging.WARNING, logger=tarwriter.__name__):
        assert bundle_bytes(Bundler(valid_metadata(), entries, config=ON)) == reference
    # The worker may have sent a few more files before it died; the rest were read here.
    assert 10 <= spy.taken < 80
    assert 'reading the remaining small files in this process' in caplog.text


def _fake_python(tmp_path: Path, script: str, mode: int) -> str:
    fake = tmp_path / 'bin' / 'python3'
    fake.parent.mkdir()
    fake.write_text(script)
    fake.chmod(mode)
    return str(fake)


@posix_only
@pytest.mark.parametrize('script, mode', [
    pytest.param('#!/bin/sh\necho "this is not python"\n', 0o755, id='answers-garbage'),
    pytest.param('#!/bin/sh\nexit 3\n', 0o755, id='exits'),
    pytest.param('not even a script', 0o644, id='cannot-be-run'),
])
def test_an_interpreter_that_does_not_work_is_not_used(tmp_path, monkeypatch, script, mode, caplog):
    entries = write_files(tmp_path / 'files', [50] * 20)
    reference = bundle_bytes(Bundler(valid_metadata(), entries, config=OFF))
    monkeypatch.setattr(sys, 'executable', _fake_python(tmp_path, script, mode))
    with caplog.at_level(logging.INFO, logger=tarwriter.__name__):
        assert bundle_bytes(Bundler(valid_metadata(), entries, config=ON)) == reference
    assert 'in this process' in caplog.text


@pytest.mark.parametrize('executable', ['', '/usr/sbin/httpd', 'C:\\Program Files\\App\\app.exe'])
def test_a_sys_executable_that_is_no_python_is_never_started(tmp_path, monkeypatch, executable):
    monkeypatch.setattr(sys, 'executable', executable)
    assert not readahead.can_start()
    entries = write_files(tmp_path, [50] * 20)
    spy = Spy(monkeypatch)
    bundle_bytes(Bundler(valid_metadata(), entries, config=ON))
    assert spy.instances == []


def test_a_frozen_application_does_not_start_it(monkeypatch):
    monkeypatch.setattr(sys, 'frozen', True, raising=False)
    assert not readahead.can_start()


@posix_only
def test_stopping_early_kills_and_reaps_the_worker(tmp_path, monkeypatch):
    entries = write_files(tmp_path, [4000] * 600)
    spy = Spy(monkeypatch)
    chunks = Bundler(valid_metadata(), entries, config=TransferConfig(chunk_size=4096, read_ahead=True)).iter_bytes()
    next(chunks)
    next(chunks)
    process = spy.instances[0]._process
    assert process is not None and process.poll() is None
    chunks.close()
    assert spy.instances[0]._process is None
    assert process.returncode is not None, 'the worker was reaped'
    assert process.stdout is not None and process.stdout.closed


@posix_only
def test_the_worker_ignores_ctrl_c_meant_for_the_terminal(tmp_path, monkeypatch):
    """SIGINT goes to the whole foreground process group; the bundler decides what happens."""
    import signal
    entries = write_files(tmp_path, [100] * 30)
    reference = bundle_bytes(Bundler(valid_metadata(), entries, config=OFF))

    def interrupt_worker(instance: readahead.ReadAhead, taken: int) -> None:
        if taken == 1:
            assert instance._process is not None
            os.kill(instance._process.pid, signal.SIGINT)

    spy = Spy(monkeypatch, after_take=interrupt_worker)
    assert bundle_bytes(Bundler(valid_metadata(), entries, config=ON)) == reference
    assert spy.taken == 30


def test_paths_as_bytes_and_path_objects_are_sent_as_the_file_system_names_them(tmp_path, monkeypatch):
    entries = write_files(tmp_path, [20, 30, 40])
    entries[0]['path'] = os.fsencode(entries[0]['path'])
    entries[1]['path'] = Path(entries[1]['path'])
    reference = bundle_bytes(Bundler(valid_metadata(), entries, config=OFF))
    spy = Spy(monkeypatch)
    assert bundle_bytes(Bundler(valid_metadata(), entries, config=ON)) == reference
    assert spy.taken == 3


@pytest.mark.parametrize('change', CHANGES)
def test_the_workers_own_report_raises_the_error_without_falling_back(tmp_path, monkeypatch, caplog, change):
    """FileChangedError is an OSError: it must not be mistaken for a broken pipe to the worker."""
    entries = write_files(tmp_path, [100] * 6)
    spy = Spy(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=tarwriter.__name__):
        error = _failure(entries, ON, change, Path(entries[4]['path']))
    assert isinstance(error, FileChangedError)
    assert 'read-ahead process failed' not in caplog.text
    assert spy.taken == 4 and spy.instances[0]._next == 5, 'the fifth file was taken from the worker, and failed'
