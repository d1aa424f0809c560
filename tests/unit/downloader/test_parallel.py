"""The parallel download's pieces that need no server: jobs, summed progress, option checks, part tags."""
from __future__ import annotations

import pickle
import threading
from typing import Any, List, Optional, Tuple

import pytest

from pacifica._client.datasets import DatasetTransaction
from pacifica.downloader import CartAPI, ConfigurationError, TransferConfig, download_parallel
from pacifica.downloader._records import FileEntry
from pacifica.downloader.parallel import CartJob, _parts_problem, _SummedProgress, dataset_transactions

SECRET = 'hunter2-parallel'


def job(number: int = 1, sizes: Tuple[Optional[int], ...] = (3, 4)) -> CartJob:
    entries = [FileEntry(str(i), '', 'f{}'.format(i), 'sha1', 'ab' * 20, size, ('f{}'.format(i),))
               for i, size in enumerate(sizes)]
    api = CartAPI('http://127.0.0.1:9/cart', auth={'auth': ('me', SECRET)}, config=TransferConfig(retries=1),
                  extra_args={'bundle': False})
    return CartJob(number, api, 'dest', 'data', entries, 30.0, True)


def test_a_job_travels_whole_to_other_processes_and_shows_no_secret() -> None:
    original = job()
    copy = pickle.loads(pickle.dumps(original))
    assert [getattr(copy, name) for name in CartJob.__slots__] == [getattr(original, name)
                                                                   for name in CartJob.__slots__]
    assert copy.auth == {'auth': ('me', SECRET)} and copy.config.retries == 1
    assert SECRET not in repr(copy) and repr(copy) == '<CartJob 1 of 2 file(s) into dest>'
    assert job(sizes=(3, None)).size == 3


def test_progress_is_summed_over_carts_from_many_threads() -> None:
    seen: List[Tuple[int, Any]] = []
    progress = _SummedProgress(lambda done, total: seen.append((done, total)), 7000)
    progress.start()
    jobs = [job(number, (1000,)) for number in range(1, 8)]

    def report(one: CartJob) -> None:
        callback = progress.for_cart(one)
        for done in range(0, 1001, 100):
            callback(done, 1000)
    threads = [threading.Thread(target=report, args=(one,)) for one in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen[0] == (0, 7000) and seen[-1] == (7000, 7000)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)  # never goes back
    progress.cart_done(jobs[0])
    assert seen[-1] == (7000, 7000)


def test_no_callback_no_calls() -> None:
    progress = _SummedProgress(None, None)
    progress.start()
    progress.cart_done(job())


@pytest.mark.parametrize('options, message', [
    ({'workers': 0}, 'workers must be'), ({'workers': 1.5}, 'workers must be'),
    ({'max_cart_bytes': 0}, 'max_cart_bytes'), ({'max_cart_files': -2}, 'max_cart_files'),
    ({'callback': 'no'}, 'callback must be callable'), ({'timeout': -1}, 'timeout'),
    ({'filename': '../up'}, 'filename'),
])
def test_options_are_checked_before_anything_happens(tmp_path: Any, options: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        download_parallel(str(tmp_path / 'dest'), [{'files': {}}], cart_api=CartAPI('http://127.0.0.1:9'),
                          **options)
    assert not (tmp_path / 'dest').exists()


def test_nothing_to_fetch_needs_no_server(tmp_path: Any) -> None:
    result = download_parallel(str(tmp_path / 'dest'), [{'files': {}}], cart_api=CartAPI('http://127.0.0.1:9'))
    assert (result.paths, result.carts, result.fetched, result.present) == ([], 0, 0, 0)


def found(*items: Tuple[int, Optional[int], Optional[int]]) -> List[DatasetTransaction]:
    return [DatasetTransaction(tid, part, parts, None if part is None else '{}/{}'.format(part, parts))
            for tid, part, parts in items]


def test_part_tags() -> None:
    assert _parts_problem(found((5, 2, 2), (4, 1, 2))) is None
    assert _parts_problem(found((5, 2, 3), (4, 1, 3))) == 'part(s) 3 of 3 have no transaction (yet)'
    assert _parts_problem(found((5, 1, 1), (6, 1, 1))) == 'ingested twice: part 1 in transactions 5, 6'
    assert _parts_problem(found((5, None, None))) == 'transaction(s) 5 carry no valid part tag'


@pytest.mark.parametrize('value', ['x', 42, '0B9F4A52-5C1E-4BD4-9B6A-3F0C2F1F8D11', None])
def test_a_dataset_id_is_a_canonical_uuid(value: Any) -> None:
    with pytest.raises(ConfigurationError, match='a dataset id is a UUID'):
        dataset_transactions(value)
