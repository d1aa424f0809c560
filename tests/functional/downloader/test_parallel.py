"""Parallel downloads against the cartd stand-in: many carts at once, one folder, failures, resume."""
from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import pytest

from pacifica.downloader import (
    CartAPI, ParallelResult, RecordError, VerificationError, download_parallel, download_transactions,
)
from tests.helpers.cartd import CartServer
from tests.helpers.server import LoopbackServer

from .conftest import FAST, final_files, tree

#: Three transactions of a dataset: id -> {file id: (subdir, name, content)}.
DATASET: Dict[int, Dict[int, Tuple[str, str, bytes]]] = {
    11: {1: ('run', 'a.txt', b'alpha\n'), 2: ('run', 'b.bin', bytes(range(256)) * 50),
         3: ('run/deep', 'c.txt', b'gamma ' * 1000), 4: ('', 'top.txt', b'top\n')},
    12: {5: ('run', 'd.txt', b'delta\n' * 333), 6: ('run/deep', 'e.bin', os.urandom(70_000)),
         7: ('other', 'f.txt', b'')},
    13: {8: ('run', 'g.txt', 'caf\u00e9\n'.encode() * 99), 9: ('x/y/z', 'h.dat', b'h' * 4097)},
}


def record(transaction_id: int, files: Dict[int, Tuple[str, str, bytes]]) -> Dict[str, Any]:
    """A policy transaction record as ``fetch_transaction`` returns it."""
    return {'transaction': {'_id': transaction_id}, 'files': {
        str(file_id): {'_id': file_id, 'name': name, 'subdir': subdir, 'size': len(content), 'hashtype': 'sha1',
                       'hashsum': hashlib.sha1(content).hexdigest()}
        for file_id, (subdir, name, content) in files.items()}}


RECORDS = [record(tid, files) for tid, files in DATASET.items()]
EXPECTED = {'/'.join(p for p in ('data', subdir, name) if p): content
            for files in DATASET.values() for subdir, name, content in files.values()}
TOTAL = sum(len(content) for content in EXPECTED.values())


@pytest.fixture
def cartd(server: LoopbackServer, tmp_path) -> CartServer:
    cart_server = CartServer(server, tmp_path / 'cartd')
    for files in DATASET.values():
        for file_id, (_subdir, _name, content) in files.items():
            cart_server.add_file(file_id, content)
    for tid, files in DATASET.items():
        server.route('GET', '/status/transactions/by_id/{}'.format(tid), record(tid, files))
    return cart_server


def cart_api(cartd: CartServer) -> CartAPI:
    return CartAPI(cartd.url, config=FAST)


def requested(cartd: CartServer) -> List[List[Any]]:
    """The file ids of each cart requested, in order."""
    return [[int(item['id']) for item in req.json()['fileids']]
            for req in cartd.server.requests if req.method == 'POST']


def test_many_carts_into_one_folder_equal_the_source(cartd: CartServer, tmp_path) -> None:
    dest = str(tmp_path / 'dest')
    seen: List[Tuple[int, Any]] = []
    result = download_parallel(dest, RECORDS, cart_api=cart_api(cartd), workers=3, max_cart_files=2,
                               callback=lambda done, total: seen.append((done, total)))
    assert tree(dest) == EXPECTED
    assert sorted(sum(requested(cartd), [])) == list(range(1, 10))
    assert all(len(ids) <= 2 for ids in requested(cartd)) and result.carts == len(requested(cartd)) == 5
    assert result == ParallelResult(result.paths, 5, 9, 0)
    assert sorted(os.path.relpath(path, dest).replace(os.sep, '/') for path in result.paths) == sorted(EXPECTED)
    assert seen[-1] == (TOTAL, TOTAL) and all(done <= TOTAL and total == TOTAL for done, total in seen)


def test_carts_run_at_the_same_time(cartd: CartServer, tmp_path) -> None:
    """Each cart's POST waits at a barrier for another: a run one cart after the other would break it."""
    barrier = threading.Barrier(3, timeout=10)
    post = cartd.server.routes[('POST', '*')][0]

    def post_together(request: Any) -> Any:
        barrier.wait()
        return post(request)
    cartd.server.route('POST', '*', post_together)
    download_parallel(str(tmp_path / 'dest'), RECORDS, cart_api=cart_api(cartd), workers=3, max_cart_files=3)
    assert tree(str(tmp_path / 'dest')) == EXPECTED


def test_size_limit_cuts_carts(cartd: CartServer, tmp_path) -> None:
    result = download_parallel(str(tmp_path / 'dest'), RECORDS, cart_api=cart_api(cartd), workers=2,
                               max_cart_bytes=20_000, max_cart_files=None)
    assert tree(str(tmp_path / 'dest')) == EXPECTED
    sizes = {file_id: len(content) for files in DATASET.values() for file_id, (_s, _n, content) in files.items()}
    for ids in requested(cartd):
        assert len(ids) == 1 or sum(sizes[i] for i in ids) <= 20_000
    assert result.carts == len(requested(cartd)) >= 4


def test_a_failing_cart_fails_the_call_and_nothing_looks_complete_then_a_rerun_resumes(cartd: CartServer,
                                                                                        tmp_path) -> None:
    dest = str(tmp_path / 'dest')
    cartd.add_file(6, b'not what the record says')
    with pytest.raises(VerificationError, match='e.bin'):
        download_parallel(dest, RECORDS, cart_api=cart_api(cartd), workers=2, max_cart_files=2)
    assert final_files(dest) == {}  # verified files parked under hidden names, none under its final name
    parked = {path for path in tree(dest) if path.endswith('.pacifica-verified')}
    assert parked and not any('e.bin' in path for path in parked)
    first = len(requested(cartd))

    cartd.add_file(6, DATASET[12][6][2])
    result = download_parallel(dest, RECORDS, cart_api=cart_api(cartd), workers=2, max_cart_files=2)
    again = sorted(sum(requested(cartd)[first:], []))
    assert tree(dest) == EXPECTED
    assert len(again) == 9 - len(parked) and 6 in again
    assert result.fetched == len(again) and result.present == len(parked)


def test_a_complete_folder_needs_no_cart(cartd: CartServer, tmp_path) -> None:
    dest = str(tmp_path / 'dest')
    download_parallel(dest, RECORDS, cart_api=cart_api(cartd), workers=2)
    posts = len(requested(cartd))
    result = download_parallel(dest, RECORDS, cart_api=cart_api(cartd), workers=2)
    assert (result.carts, result.fetched, result.present) == (0, 0, 9)
    assert len(requested(cartd)) == posts and tree(dest) == EXPECTED


def test_two_transactions_with_one_path_are_refused_before_any_cart(cartd: CartServer, tmp_path) -> None:
    clash = record(14, {10: ('run', 'a.txt', b'another alpha\n')})
    with pytest.raises(RecordError, match=r"transaction 11 \(file '1'\) and transaction 14 \(file '10'\).*run/a.txt"):
        download_parallel(str(tmp_path / 'dest'), RECORDS + [clash], cart_api=cart_api(cartd))
    assert requested(cartd) == [] and not os.path.exists(str(tmp_path / 'dest'))


def test_a_file_listed_alike_twice_is_fetched_once(cartd: CartServer, tmp_path) -> None:
    result = download_parallel(str(tmp_path / 'dest'), RECORDS + [RECORDS[0]], cart_api=cart_api(cartd))
    assert tree(str(tmp_path / 'dest')) == EXPECTED and sorted(sum(requested(cartd), [])) == list(range(1, 10))
    assert len(result.paths) == 9


@pytest.mark.parametrize('make', [lambda: ThreadPoolExecutor(2), lambda: ProcessPoolExecutor(2)],
                         ids=['threads', 'processes'])
def test_any_executor_runs_the_carts(cartd: CartServer, tmp_path, make: Any) -> None:
    seen: List[Tuple[int, Any]] = []
    with make() as executor:
        download_parallel(str(tmp_path / 'dest'), RECORDS, cart_api=cart_api(cartd), executor=executor,
                          max_cart_files=3, callback=lambda done, total: seen.append((done, total)))
    assert tree(str(tmp_path / 'dest')) == EXPECTED and seen[-1] == (TOTAL, TOTAL)


def test_download_transactions_reads_the_records_from_policy(cartd: CartServer, tmp_path) -> None:
    result = download_transactions(str(tmp_path / 'dest'), [11, '12', 13], policy_url=cartd.url,
                                   cart_api=cart_api(cartd), workers=2, max_cart_files=4)
    assert tree(str(tmp_path / 'dest')) == EXPECTED and result.carts == 3
    assert cartd.server.count('GET', '/status/transactions/by_id/12') == 1
