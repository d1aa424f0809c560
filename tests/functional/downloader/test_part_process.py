"""The part-file process failing midway: the download fails loudly, shows no final name, and resumes.

The other downloader tests run with and without the process (conftest's
``part_files``); these break the process itself.
"""
from __future__ import annotations

import os
from typing import Any

import pytest

from pacifica.downloader import ArchiveError, CartDownloadError, Downloader
from pacifica.downloader import _creator
from pacifica.downloader._creator import PartCreator
from tests.helpers.cartd import CartServer, transaction_info

from .conftest import FAST, FILES, expected_tree, final_files, tree


@pytest.fixture(autouse=True)
def always_the_process(monkeypatch) -> None:
    monkeypatch.setattr(_creator, 'AUTO_MIN_FILES', 0)


def _kill_at_part(monkeypatch, number: int) -> None:
    """The process dies (as under an out-of-memory kill) when the download begins its ``number``-th part."""
    real_begin = PartCreator.begin
    count = [0]

    def begin(self: PartCreator, *args: Any) -> None:
        count[0] += 1
        if count[0] == number:
            self._process.kill()
            self._process.wait()
        real_begin(self, *args)

    monkeypatch.setattr(PartCreator, 'begin', begin)


@pytest.mark.parametrize('number', [1, 2, 3])
def test_a_lost_process_fails_the_download_and_a_rerun_completes_it(cartd: CartServer, dest: str, monkeypatch,
                                                                   number: int) -> None:
    info = transaction_info(FILES)
    _kill_at_part(monkeypatch, number)
    with pytest.raises(ArchiveError, match='part-file process'):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, info)
    assert final_files(dest) == {}  # no final name, no part left
    assert not [path for path in tree(dest) if path.endswith('.pacifica-verified')], \
        'a part the process never confirmed was kept as verified'
    monkeypatch.undo()
    monkeypatch.setattr(_creator, 'AUTO_MIN_FILES', 0)
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, info)
    assert tree(dest) == expected_tree()


def test_a_process_error_fails_the_download_with_it_and_keeps_the_verified_parts(cartd: CartServer, dest: str,
                                                                                 monkeypatch) -> None:
    """A part the process cannot make (here: no such folder) fails the download with the OSError.

    The parts it made before it are verified and parked; the rerun puts them in place.
    """
    real_begin = PartCreator.begin

    def begin(self: PartCreator, path: str, *args: Any) -> None:
        if path.endswith(os.sep + 'top.bin'):
            path = os.path.join(os.path.dirname(path), 'no-such-folder', os.path.basename(path))
        real_begin(self, path, *args)

    monkeypatch.setattr(PartCreator, 'begin', begin)
    info = transaction_info(FILES)
    with pytest.raises(FileNotFoundError):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, info)
    assert final_files(dest) == {}
    parked = [path for path in tree(dest) if path.endswith('.pacifica-verified')]
    monkeypatch.undo()
    monkeypatch.setattr(_creator, 'AUTO_MIN_FILES', 0)
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, info)
    assert tree(dest) == expected_tree()
    assert sorted(parked) == ['data/a/b/.foo.txt.pacifica-verified',  # the cart sends top.bin last
                              'data/a/b/\u00e9/.barr\u00e9.txt.pacifica-verified']


def test_without_a_python_to_start_the_files_are_written_here(cartd: CartServer, dest: str, monkeypatch) -> None:
    monkeypatch.setattr(_creator, 'can_start', lambda: False)
    monkeypatch.setattr(PartCreator, '__init__', lambda *_: pytest.fail('the process was started'))
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES))
    assert tree(dest) == expected_tree()


def test_a_cart_that_cannot_be_opened_ends_the_process(cartd: CartServer, dest: str, monkeypatch) -> None:
    started = []
    real_init = PartCreator.__init__

    def init(self: PartCreator) -> None:
        real_init(self)
        started.append(self)

    monkeypatch.setattr(PartCreator, '__init__', init)
    cartd.behaviour.get_status = 500
    with pytest.raises(CartDownloadError):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES))
    assert started and all(creator._process is None for creator in started)
