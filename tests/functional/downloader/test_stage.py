"""The staging folder: files verified below it, moved into place a subtree at a time, safely.

Each test runs with small files made here and by the part-file process
(conftest's ``part_files``). A hook after verification stands for what
another program (or another cart) does to the download folder while a
cart is being received.
"""
from __future__ import annotations

import errno
import os
import pathlib
import signal
import subprocess
import sys
from typing import Any, Callable, List

import pytest

from pacifica.downloader import Downloader, UnsafeArchiveError
from pacifica.downloader import _stage
from pacifica.downloader._extract import Extraction
from tests.helpers.cartd import CartServer, transaction_info

from .conftest import FAST, FILES, expected_tree, final_files, tree

pytestmark = pytest.mark.usefixtures('part_files')

PARKED = ['data/.top.bin.pacifica-verified', 'data/a/b/.foo.txt.pacifica-verified',
          'data/a/b/\u00e9/.barr\u00e9.txt.pacifica-verified']


def download(cartd: CartServer, dest: str) -> List[str]:
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    down.transactioninfo(dest, transaction_info(FILES))
    return down.paths_written


def after_verify(monkeypatch, action: Callable[[], Any]) -> None:
    """Run ``action`` once every file verified, just before the files are put in place."""
    real_verify = Extraction.verify

    def verify(self: Extraction) -> None:
        real_verify(self)
        action()
    monkeypatch.setattr(Extraction, 'verify', verify)


def stages(dest: str) -> List[str]:
    root = os.path.join(dest, 'data')
    return [name for name in os.listdir(root) if name.startswith(_stage.STAGE_PREFIX)] if os.path.isdir(root) else []


def write(path: str, content: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(content)


def test_a_fresh_tree_takes_one_rename_per_top_level_name(cartd, dest, monkeypatch):
    renamed: List[str] = []
    real_rename = os.rename

    def rename(src: str, dst: str) -> None:
        renamed.append(os.path.relpath(dst, dest).replace(os.sep, '/'))
        real_rename(src, dst)
    monkeypatch.setattr(_stage.os, 'rename', rename)
    download(cartd, dest)
    assert tree(dest) == expected_tree()
    assert renamed == ['data/a']  # top.bin, a file, is replaced into place; the folder 'a' moves whole
    assert stages(dest) == []


def test_folders_that_exist_are_merged_and_their_files_kept(cartd, dest, monkeypatch):
    """'a' exists before the download, 'a/b/é' appears while it runs: both are merged, nothing of theirs lost."""
    write(os.path.join(dest, 'data', 'a', 'mine.txt'), b'mine')
    write(os.path.join(dest, 'data', 'a', 'b', 'foo.txt'), b'stale')  # the wrong content: fetched and replaced
    after_verify(monkeypatch, lambda: write(os.path.join(dest, 'data', 'a', 'b', '\u00e9', 'late.txt'), b'late'))
    download(cartd, dest)
    expected = expected_tree()
    expected.update({'data/a/mine.txt': b'mine', 'data/a/b/\u00e9/late.txt': b'late'})
    assert tree(dest) == expected
    assert stages(dest) == []


def test_a_folder_made_between_the_check_and_the_rename_is_merged(cartd, dest, monkeypatch):
    """Another cart's folder arrives first (or Windows refuses to rename onto a folder): merge, do not fail."""
    real_rename = os.rename

    def rename(src: str, dst: str) -> None:
        if os.path.basename(dst) == 'a':
            write(os.path.join(dst, 'other-cart.txt'), b'other')
            if os.name == 'posix':
                raise FileExistsError(errno.EEXIST, 'exists (as on Windows)', dst)
        real_rename(src, dst)
    monkeypatch.setattr(_stage.os, 'rename', rename)
    download(cartd, dest)
    expected = expected_tree()
    expected['data/a/other-cart.txt'] = b'other'
    assert tree(dest) == expected


def _plant_link(path: str, outside: str) -> None:
    os.symlink(outside, path)


def _plant_file(path: str, _outside: str) -> None:
    write(path, b'a file')


#: Where the verified files under the blocked folder are kept while it is blocked.
IN_TREE = {'a': ['data/.pacifica-verified/a/b/foo.txt', 'data/.pacifica-verified/a/b/\u00e9/barr\u00e9.txt'],
           'a/b/\u00e9': ['data/.pacifica-verified/a/b/\u00e9/barr\u00e9.txt']}


@pytest.mark.parametrize('blocked', ['a', 'a/b/\u00e9'])
@pytest.mark.parametrize('plant, problem', [(_plant_link, 'is a symbolic link; refusing to write through it'),
                                            (_plant_file, 'exists and is not a directory')])
def test_a_folder_blocked_during_the_download_is_refused_and_its_verified_files_kept(
        cartd, dest, tmp_path, monkeypatch, blocked, plant, problem):
    """A link or a file planted where a folder goes: never followed; the error names it; a rerun fetches nothing.

    With 'a/b' there before the download, 'a' is merged and the block is one level down.
    """
    outside = tmp_path / 'outside'
    outside.mkdir()
    blocker = os.path.join(dest, 'data', *blocked.split('/'))
    if blocked != 'a':
        os.makedirs(os.path.join(dest, 'data', 'a', 'b'))
    after_verify(monkeypatch, lambda: plant(blocker, str(outside)))
    with pytest.raises(UnsafeArchiveError) as caught:
        download(cartd, dest)
    assert str(caught.value) == '{} {}'.format(blocker, problem)
    assert list(outside.iterdir()) == []
    kept = sorted(path for path in tree(dest) if path.endswith('.pacifica-verified') or '/.pacifica-verified/' in path)
    assert kept == sorted(['data/.top.bin.pacifica-verified'] + IN_TREE[blocked] + (
        [] if blocked == 'a' else ['data/a/b/.foo.txt.pacifica-verified']))
    assert stages(dest) == []
    monkeypatch.undo()
    carts_before = len(cartd.carts)
    with pytest.raises(UnsafeArchiveError) as caught:
        download(cartd, dest)  # still blocked: refused before any cart is asked for, nothing kept is lost
    assert str(caught.value) == '{} {}'.format(blocker, problem)
    assert len(cartd.carts) == carts_before and sorted(
        path for path in tree(dest) if '.pacifica-verified' in path) == kept
    os.remove(blocker)
    download(cartd, dest)
    assert len(cartd.carts) == carts_before, 'the verified files were fetched again'
    assert tree(dest) == expected_tree() and list(outside.iterdir()) == []
    assert not os.path.lexists(os.path.join(dest, 'data', '.pacifica-verified'))


def test_a_failed_rename_is_undone_and_a_rerun_reuses_every_verified_file(cartd, dest, monkeypatch):
    """A folder stands where top.bin goes: the files placed before go back to hidden names, then a rerun.

    A file another cart merged into a folder this cart had moved stays where it is.
    """
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        if dst == os.path.join(dest, 'data', 'top.bin') and os.path.isdir(os.path.join(dest, 'data', 'a')):
            write(os.path.join(dest, 'data', 'a', 'other-cart.txt'), b'other')
        real_replace(src, dst)
    monkeypatch.setattr(_stage.os, 'replace', replace)
    after_verify(monkeypatch, lambda: write(os.path.join(dest, 'data', 'top.bin', 'inside'), b'x'))
    with pytest.raises(OSError) as caught:
        download(cartd, dest)
    assert caught.value.errno in (errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY, errno.EACCES)
    left = final_files(dest)
    assert sorted(path for path in tree(dest) if path.endswith('.pacifica-verified')) == PARKED
    assert set(left) <= {'data/top.bin/inside', 'data/a/other-cart.txt'}
    assert stages(dest) == []
    monkeypatch.undo()
    os.remove(os.path.join(dest, 'data', 'top.bin', 'inside'))
    os.rmdir(os.path.join(dest, 'data', 'top.bin'))
    carts_before = len(cartd.carts)
    download(cartd, dest)
    assert len(cartd.carts) == carts_before, 'the verified files were fetched again'
    expected = expected_tree()
    expected.update({path: b'other' for path in left if path.endswith('other-cart.txt')})
    assert tree(dest) == expected


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


def test_the_stage_of_a_killed_run_is_removed_and_others_kept(cartd, dest):
    root = os.path.join(dest, 'data')
    dead = _stage.stage_name(_dead_pid())
    alive = _stage.stage_name(os.getpid())
    elsewhere = _stage.STAGE_PREFIX + 'otherhost-1-0123456789abcdef'
    for name in (dead, alive, elsewhere):
        write(os.path.join(root, name, 'a', 'b', 'foo.txt'), b'half')
    download(cartd, dest)
    assert sorted(stages(dest)) == sorted([alive, elsewhere])
    assert {path: content for path, content in tree(dest).items() if _stage.STAGE_PREFIX not in path} == \
        expected_tree()


#: A download that is killed (SIGKILL) once its files are staged, before they are put in place.
_KILLED_DOWNLOAD = """
import os, signal, sys
from pacifica.downloader import Downloader, _creator
from pacifica.downloader._extract import Extraction
from tests.functional.downloader.conftest import FAST, FILES
from tests.helpers.cartd import transaction_info
_creator.AUTO_MIN_FILES = int(sys.argv[3])
Extraction.verify = lambda self: os.kill(os.getpid(), signal.SIGKILL)
Downloader(cart_api_url=sys.argv[1], config=FAST).transactioninfo(sys.argv[2], transaction_info(FILES))
"""


@pytest.mark.skipif(not hasattr(signal, 'SIGKILL'), reason='no SIGKILL here')
def test_a_killed_download_leaves_a_stage_that_the_next_one_removes(cartd, dest, part_files):
    auto = '0' if part_files == 'part-file-process' else str(1 << 62)
    repo = str(pathlib.Path(__file__).resolve().parents[3])
    killed = subprocess.run([sys.executable, '-c', _KILLED_DOWNLOAD, cartd.url, dest, auto], cwd=repo,
                            timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert len(stages(dest)) == 1
    assert [path for path in tree(dest) if _stage.STAGE_PREFIX not in path] == []  # no final name appeared
    download(cartd, dest)
    assert stages(dest) == []
    assert tree(dest) == expected_tree()
