"""Parallel downloads against the cartd stand-in: many carts at once, one folder, failures, resume."""
from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, List, Tuple

import pytest

from pacifica.downloader import (
    CartAPI, ParallelResult, RecordError, VerificationError, download_parallel, download_transactions,
)
from tests.helpers.cartd import CartServer

from .conftest import DATASET, EXPECTED, FAST, RECORDS, TOTAL, final_files, record, tree

def cart_api(cartd: CartServer) -> CartAPI:
    return CartAPI(cartd.url, config=FAST)


def requested(cartd: CartServer) -> List[List[Any]]:
    """The file ids of each cart requested, in order."""
    return [[int(item['id']) for item in req.json()['fileids']]
            for req in cartd.server.requests if req.method == 'POST']


def test_many_carts_into_one_folder_equal_the_source(dataset_cartd: CartServer, tmp_path) -> None:
    dest = str(tmp_path / 'dest')
    seen: List[Tuple[int, Any]] = []
    result = download_parallel(dest, RECORDS, cart_api=cart_api(dataset_cartd), workers=3, max_cart_files=2,
                               callback=lambda done, total: seen.append((done, total)))
    assert tree(dest) == EXPECTED
    assert sorted(sum(requested(dataset_cartd), [])) == list(range(1, 10))
    assert all(len(ids) <= 2 for ids in requested(dataset_cartd)) and result.carts == len(requested(dataset_cartd)) == 5
    assert result == ParallelResult(result.paths, 5, 9, 0)
    assert sorted(os.path.relpath(path, dest).replace(os.sep, '/') for path in result.paths) == sorted(EXPECTED)
    assert seen[-1] == (TOTAL, TOTAL) and all(done <= TOTAL and total == TOTAL for done, total in seen)


def test_carts_run_at_the_same_time(dataset_cartd: CartServer, tmp_path) -> None:
    """Each cart's POST waits at a barrier for another: a run one cart after the other would break it."""
    barrier = threading.Barrier(3, timeout=10)
    post = dataset_cartd.server.routes[('POST', '*')][0]

    def post_together(request: Any) -> Any:
        barrier.wait()
        return post(request)
    dataset_cartd.server.route('POST', '*', post_together)
    download_parallel(str(tmp_path / 'dest'), RECORDS, cart_api=cart_api(dataset_cartd), workers=3,
                      max_cart_files=3)
    assert tree(str(tmp_path / 'dest')) == EXPECTED


def test_size_limit_cuts_carts(dataset_cartd: CartServer, tmp_path) -> None:
    result = download_parallel(str(tmp_path / 'dest'), RECORDS, cart_api=cart_api(dataset_cartd), workers=2,
                               max_cart_bytes=20_000, max_cart_files=None)
    assert tree(str(tmp_path / 'dest')) == EXPECTED
    sizes = {file_id: len(content) for files in DATASET.values() for file_id, (_s, _n, content) in files.items()}
    for ids in requested(dataset_cartd):
        assert len(ids) == 1 or sum(sizes[i] for i in ids) <= 20_000
    assert result.carts == len(requested(dataset_cartd)) >= 4


def test_a_failing_cart_fails_the_call_and_nothing_looks_complete_then_a_rerun_resumes(dataset_cartd: CartServer,
                                                                                        tmp_path) -> None:
    dest = str(tmp_path / 'dest')
    dataset_cartd.add_file(6, b'not what the record says')
    with pytest.raises(VerificationError, match='e.bin'):
        download_parallel(dest, RECORDS, cart_api=cart_api(dataset_cartd), workers=2, max_cart_files=2)
    assert final_files(dest) == {}  # verified files parked under hidden names, none under its final name
    parked = {path for path in tree(dest) if path.endswith('.pacifica-verified')}
    assert parked and not any('e.bin' in path for path in parked)
    first = len(requested(dataset_cartd))

    dataset_cartd.add_file(6, DATASET[12][6][2])
    result = download_parallel(dest, RECORDS, cart_api=cart_api(dataset_cartd), workers=2, max_cart_files=2)
    again = sorted(sum(requested(dataset_cartd)[first:], []))
    assert tree(dest) == EXPECTED
    assert len(again) == 9 - len(parked) and 6 in again
    assert result.fetched == len(again) and result.present == len(parked)


def test_a_complete_folder_needs_no_cart(dataset_cartd: CartServer, tmp_path) -> None:
    dest = str(tmp_path / 'dest')
    download_parallel(dest, RECORDS, cart_api=cart_api(dataset_cartd), workers=2)
    posts = len(requested(dataset_cartd))
    result = download_parallel(dest, RECORDS, cart_api=cart_api(dataset_cartd), workers=2)
    assert (result.carts, result.fetched, result.present) == (0, 0, 9)
    assert len(requested(dataset_cartd)) == posts and tree(dest) == EXPECTED


def test_two_transactions_with_one_path_are_refused_before_any_cart(dataset_cartd: CartServer, tmp_path) -> None:
    clash = record(14, {10: ('run', 'a.txt', b'another alpha\n')})
    clash_text = r"transaction 11 \(file '1'\) and transaction 14 \(file '10'\).*run/a.txt"
    with pytest.raises(RecordError, match=clash_text):
        download_parallel(str(tmp_path / 'dest'), RECORDS + [clash], cart_api=cart_api(dataset_cartd))
    assert requested(dataset_cartd) == [] and not os.path.exists(str(tmp_path / 'dest'))


def test_a_file_listed_alike_twice_is_fetched_once(dataset_cartd: CartServer, tmp_path) -> None:
    result = download_parallel(str(tmp_path / 'dest'), RECORDS + [RECORDS[0]],
                               cart_api=cart_api(dataset_cartd))
    assert tree(str(tmp_path / 'dest')) == EXPECTED
    assert sorted(sum(requested(dataset_cartd), [])) == list(range(1, 10))
    assert len(result.paths) == 9


@pytest.mark.parametrize('make', [lambda: ThreadPoolExecutor(2),
                                  lambda: ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('spawn'))],
                         ids=['threads', 'processes'])
def test_any_executor_runs_the_carts(dataset_cartd: CartServer, tmp_path, make: Any) -> None:
    seen: List[Tuple[int, Any]] = []
    with make() as executor:
        download_parallel(str(tmp_path / 'dest'), RECORDS, cart_api=cart_api(dataset_cartd), executor=executor,
                          max_cart_files=3, callback=lambda done, total: seen.append((done, total)))
    assert tree(str(tmp_path / 'dest')) == EXPECTED and seen[-1] == (TOTAL, TOTAL)


def test_download_transactions_reads_the_records_from_policy(dataset_cartd: CartServer, tmp_path) -> None:
    result = download_transactions(str(tmp_path / 'dest'), [11, '12', 13], policy_url=dataset_cartd.url,
                                   cart_api=cart_api(dataset_cartd), workers=2, max_cart_files=4)
    assert tree(str(tmp_path / 'dest')) == EXPECTED and result.carts == 3
    assert dataset_cartd.server.count('GET', '/status/transactions/by_id/12') == 1


class _BreaksAfter(ThreadPoolExecutor):
    """A thread pool that refuses every submission after the first ``allowed`` ones (as a shut-down one does)."""

    def __init__(self, allowed: int) -> None:
        super().__init__(2)
        self.allowed = allowed

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        if self.allowed == 0:
            raise RuntimeError('cannot schedule new futures after shutdown')
        self.allowed -= 1
        return super().submit(*args, **kwargs)


def test_an_executor_that_breaks_leaves_nothing_that_looks_complete(dataset_cartd: CartServer, tmp_path) -> None:
    dest = str(tmp_path / 'dest')
    with _BreaksAfter(3) as executor:
        with pytest.raises(RuntimeError, match='after shutdown'):
            download_parallel(dest, RECORDS, cart_api=cart_api(dataset_cartd), executor=executor, workers=2,
                              max_cart_files=2)
    # The carts in flight ended and no other one started. The third was submitted when the first ended;
    # when the second ended at about the same time, the refused fourth submission cancels it before it starts.
    carts = len(requested(dataset_cartd))
    assert carts in (2, 3)
    parked = [path for path in tree(dest) if path.endswith('.pacifica-verified')]
    assert final_files(dest) == {} and len(parked) == 2 * carts
    result = download_parallel(dest, RECORDS, cart_api=cart_api(dataset_cartd), workers=2, max_cart_files=2)
    assert tree(dest) == EXPECTED and (result.fetched, result.present) == (9 - 2 * carts, 2 * carts)
