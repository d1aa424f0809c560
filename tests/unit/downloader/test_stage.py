"""The staging folder's pieces without a server: names, dead stages, the staged tree and the moves."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import List

import pytest

from pacifica._client.exceptions import UnsafeArchiveError
from pacifica.downloader import _stage
from pacifica.downloader._stage import Stage, by_name, is_dead_stage, stage_name
from pacifica.downloader._target import Parts, Target


def test_a_stage_name_is_hidden_and_names_this_host_and_process():
    name = stage_name()
    assert name.startswith('.pacifica-stage-')
    assert name.split('-')[-2] == str(os.getpid())
    assert stage_name() != name  # a random token each time
    assert not is_dead_stage(name)  # this process runs


def test_only_stages_of_gone_processes_of_this_host_are_dead():
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    if os.name == 'posix':
        assert is_dead_stage(stage_name(child.pid))
    assert not is_dead_stage('.pacifica-stage-someotherhost-{}-0123456789abcdef'.format(child.pid))
    assert not is_dead_stage(stage_name(child.pid) + 'x')  # not a name a stage gets
    assert not is_dead_stage('.pacifica-stage-')


def test_files_are_grouped_by_their_name_at_a_depth_in_their_order():
    files = [('a', 'b', 'x'), ('a', 'y'), ('top',), ('a', 'b', 'z')]
    assert by_name(files, 0) == {'a': [files[0], files[1], files[3]], 'top': [files[2]]}
    assert list(by_name(files, 0)) == ['a', 'top']
    assert by_name([files[0], files[3]], 1) == {'b': [files[0], files[3]]}


def _staged(tmp_path, files: List[Parts]) -> Stage:
    stage = Stage(Target(str(tmp_path), ('data',)))
    for parts in files:
        stage.files.directory(parts[:-1], create=True)
        with open(stage.path(parts), 'wb') as handle:
            handle.write('/'.join(parts).encode())
    return stage


def _files(root: str) -> List[str]:
    return sorted(os.path.relpath(os.path.join(base, name), root).replace(os.sep, '/')
                  for base, _dirs, names in os.walk(root) for name in names)


def test_new_subtrees_move_whole_and_existing_folders_are_merged(tmp_path):
    files = [('a', 'b', 'x'), ('a', 'c', 'y'), ('new', 'deep', 'z'), ('top',)]
    stage = _staged(tmp_path, files)
    os.makedirs(os.path.join(str(tmp_path), 'data', 'a', 'b'))
    moved: List[Parts] = []
    stage.place(files, moved)
    assert moved == [('a', 'b', 'x'), ('a', 'c'), ('new',), ('top',)]
    stage.remove()
    assert _files(os.path.join(str(tmp_path), 'data')) == ['a/b/x', 'a/c/y', 'new/deep/z', 'top']


def test_a_rename_refused_because_the_folder_exists_falls_back_to_the_merge(tmp_path, monkeypatch):
    """As on Windows, where os.rename onto an existing folder fails."""
    files = [('a', 'x')]
    stage = _staged(tmp_path, files)
    real_rename = os.rename

    def rename(src: str, dst: str) -> None:
        os.makedirs(dst, exist_ok=True)
        raise FileExistsError(17, 'Cannot create a file when that file already exists', dst)
    monkeypatch.setattr(_stage.os, 'rename', rename)
    moved: List[Parts] = []
    stage.place(files, moved)
    monkeypatch.setattr(_stage.os, 'rename', real_rename)
    assert moved == [('a', 'x')]
    assert _files(os.path.join(str(tmp_path), 'data', 'a')) == ['x']


def test_a_rename_that_fails_for_another_reason_is_raised(tmp_path, monkeypatch):
    files = [('a', 'x')]
    stage = _staged(tmp_path, files)

    def rename(src: str, dst: str) -> None:
        raise PermissionError(13, 'denied', dst)
    monkeypatch.setattr(_stage.os, 'rename', rename)
    with pytest.raises(PermissionError):
        stage.place(files, [])


@pytest.mark.skipif(not hasattr(os, 'symlink'), reason='no symbolic links here')
def test_a_symlink_where_a_folder_goes_is_refused_at_any_depth(tmp_path):
    files = [('a', 'b', 'x')]
    stage = _staged(tmp_path, files)
    outside = tmp_path / 'outside'
    outside.mkdir()
    os.makedirs(os.path.join(str(tmp_path), 'data', 'a'))
    os.symlink(str(outside), os.path.join(str(tmp_path), 'data', 'a', 'b'))
    moved: List[Parts] = []
    with pytest.raises(UnsafeArchiveError, match='symbolic link'):
        stage.place(files, moved)
    assert moved == [] and list(outside.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, 'symlink'), reason='no symbolic links here')
def test_the_download_folder_swapped_for_a_symlink_is_refused(tmp_path):
    files = [('a', 'x')]
    stage = _staged(tmp_path, files)
    data = os.path.join(str(tmp_path), 'data')
    os.rename(data, str(tmp_path / 'moved'))
    os.symlink(str(tmp_path / 'moved'), data)
    with pytest.raises(UnsafeArchiveError, match='symbolic link'):
        stage.place(files, [])


def test_a_download_folder_is_searched_for_dead_stages_once_per_process(tmp_path, monkeypatch):
    """download_parallel makes a stage per cart: listing a big folder each time would cost per cart."""
    listed: List[str] = []
    real_listdir = os.listdir

    def listdir(path: str) -> List[str]:
        listed.append(path)
        return real_listdir(path)
    monkeypatch.setattr(_stage.os, 'listdir', listdir)
    first = Stage(Target(str(tmp_path), ('data',)))
    second = Stage(Target(str(tmp_path), ('data',)))
    assert listed == [first.target.root] and first.files.root != second.files.root
