"""What earlier calls left in the download folder: parked files of other content, 0.1.0's part files.

A parked file is used only when it holds the record's content; a
``.<name>.pacifica-part`` left by a killed download of version 0.1.0 (before
the stage) is removed when a download asks for ``<name>`` again, and nothing
else of that look is touched.
"""
from __future__ import annotations

import os
from typing import List

import pytest

from pacifica.downloader import CartAPI, UnsafeArchiveError, download_parallel
from pacifica.downloader._extract import Extraction
from tests.helpers.cartd import CartServer

from .conftest import EXPECTED, FAST, RECORDS, expected_tree, tree
from .test_stage import after_verify, download, stages, write

pytestmark = pytest.mark.usefixtures('part_files')


def asked_for(cartd: CartServer) -> List[int]:
    """The file ids of every cart requested so far, sorted (an id asked for twice is listed twice)."""
    return sorted(int(item['id']) for cart in cartd.carts.values() for item in cart.fileids)


@pytest.mark.parametrize('parked', ['data/a/b/.foo.txt.pacifica-verified', 'data/.pacifica-verified/a/b/foo.txt'])
def test_a_parked_file_of_other_content_is_not_used(cartd, dest, parked):
    """The record now has other content at that path: the file is fetched; the parked one is never put in place."""
    write(os.path.join(dest, *parked.split('/')), b'HELLO WORLD\n')
    download(cartd, dest)
    assert asked_for(cartd) == [103, 104, 105]
    found = tree(dest)
    assert found.pop(parked) == b'HELLO WORLD\n'  # same size, other hash: left as it was, hidden
    assert found == expected_tree()


def test_a_parked_file_whose_folder_became_a_link_after_the_scan_is_refused(cartd, dest, tmp_path, monkeypatch):
    """The files under 'a' are parked, 'a' is swapped for a link to a copy of it: nothing is renamed through it."""
    for path in ('a/b/.foo.txt.pacifica-verified', 'a/b/\u00e9/.barr\u00e9.txt.pacifica-verified'):
        write(os.path.join(dest, 'data', *path.split('/')), expected_tree()['data/' + path.replace(
            '/.', '/').replace('.pacifica-verified', '')])
    outside = str(tmp_path / 'outside')
    folder = os.path.join(dest, 'data', 'a')

    def swap() -> None:
        os.rename(folder, outside)
        os.symlink(outside, folder)
    after_verify(monkeypatch, swap)
    with pytest.raises(UnsafeArchiveError, match='symbolic link'):
        download(cartd, dest)
    assert asked_for(cartd) == [104]
    assert sorted(os.path.relpath(os.path.join(base, name), outside).replace(os.sep, '/')
                  for base, _dirs, names in os.walk(outside) for name in names) == [
        'b/.foo.txt.pacifica-verified', 'b/\u00e9/.barr\u00e9.txt.pacifica-verified']
    assert sorted(tree(dest)) == ['data/.top.bin.pacifica-verified']  # the link is not walked
    assert stages(dest) == []


#: Leftovers of 0.1.0 beside names the record asks for (removed), and look-alikes (kept).
OLD_PARTS = ['data/.top.bin.pacifica-part', 'data/a/b/.foo.txt.pacifica-part',
             'data/a/b/\u00e9/.barr\u00e9.txt.pacifica-part']
LOOK_ALIKES = ['data/.other.bin.pacifica-part', 'data/a/b/foo.txt.pacifica-part', 'data/a/.b.pacifica-part',
               'data/a/b/.foo.txt.pacifica-part.x']


@pytest.mark.parametrize('in_place', [False, True], ids=['missing', 'in-place'])
def test_part_files_of_a_killed_0_1_0_download_are_removed_when_their_file_is_asked_for(cartd, dest, in_place):
    """Whether the files are fetched or already in place; other names, links and folders stay."""
    if in_place:
        download(cartd, dest)
    for path in OLD_PARTS + LOOK_ALIKES:
        write(os.path.join(dest, *path.split('/')), b'half')
    download(cartd, dest)
    expected = expected_tree()
    expected.update(dict.fromkeys(LOOK_ALIKES, b'half'))
    assert tree(dest) == expected
    assert asked_for(cartd) == [103, 104, 105]  # asked for once, in the first download


def test_a_link_or_a_folder_named_as_an_old_part_file_is_left_alone(cartd, dest, tmp_path):
    outside = tmp_path / 'outside.txt'
    outside.write_bytes(b'not ours')
    os.makedirs(os.path.join(dest, 'data', 'a', 'b', '.foo.txt.pacifica-part'))
    os.symlink(str(outside), os.path.join(dest, 'data', '.top.bin.pacifica-part'))
    download(cartd, dest)
    found = tree(dest)
    assert found.pop('data/.top.bin.pacifica-part') == b'not ours'  # read through the link by tree()
    assert found == expected_tree()
    assert os.path.isdir(os.path.join(dest, 'data', 'a', 'b', '.foo.txt.pacifica-part'))
    assert os.readlink(os.path.join(dest, 'data', '.top.bin.pacifica-part')) == str(outside)
    assert outside.read_bytes() == b'not ours'


def test_download_parallel_keeps_the_files_of_a_blocked_folder_and_a_rerun_fetches_them_no_more(
        dataset_cartd, tmp_path, monkeypatch):
    """'x' becomes a link while the cart holding x/y/z/h.dat is received: the rerun fetches only the rest."""
    dest = str(tmp_path / 'dest')
    outside = tmp_path / 'outside'
    outside.mkdir()
    real_verify = Extraction.verify

    def verify(self: Extraction) -> None:
        real_verify(self)
        if any(parts[0] == 'x' for parts in self.written):
            os.symlink(str(outside), os.path.join(dest, 'data', 'x'))
    monkeypatch.setattr(Extraction, 'verify', verify)
    api = CartAPI(dataset_cartd.url, config=FAST)
    with pytest.raises(UnsafeArchiveError, match='symbolic link'):
        download_parallel(dest, RECORDS, cart_api=api, workers=1, max_cart_files=2)
    assert 'data/.pacifica-verified/x/y/z/h.dat' in tree(dest) and list(outside.iterdir()) == []
    monkeypatch.undo()
    assert 9 in asked_for(dataset_cartd)  # h.dat's id
    os.remove(os.path.join(dest, 'data', 'x'))
    download_parallel(dest, RECORDS, cart_api=api, workers=1, max_cart_files=2)
    assert tree(dest) == EXPECTED
    assert asked_for(dataset_cartd) == list(range(1, 10))  # over both calls, each file asked for once
