"""Planning a dataset's shards: limits, determinism, the lone big file, changed datasets, memory."""
from __future__ import annotations

import os
import tracemalloc
from typing import Any, Dict, Iterator, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from pacifica.uploader import ConfigurationError, FileDataError
from pacifica.uploader.dataset.plan import (
    DatasetChangedError, DatasetSource, EmptyDatasetError, EntrySpool, ShardPlan, cut, entries_under, plan,
    plan_shards,
)


def entries(*sizes: int) -> List[Dict[str, Any]]:
    return [{'name': 'data/f{:03d}'.format(index), 'size': size, 'mtime': 0} for index, size in enumerate(sizes)]


def ranges(shards: List[ShardPlan]) -> List[tuple]:
    return [(shard.start, shard.stop) for shard in shards]


def test_file_count_limit_cuts_every_n_files() -> None:
    shards = plan(entries(*[1] * 7), max_files=3)
    assert ranges(shards) == [(0, 3), (3, 6), (6, 7)]
    assert [shard.part for shard in shards] == [1, 2, 3]
    assert [shard.files for shard in shards] == [3, 3, 1]
    assert (shards[0].first, shards[0].last) == ('data/f000', 'data/f002')


def test_size_limit_closes_a_shard_before_the_entry_that_would_overflow_it() -> None:
    shards = plan(entries(4, 4, 2, 1, 9, 10, 0, 3, 8), max_bytes=10)
    assert ranges(shards) == [(0, 3), (3, 5), (5, 7), (7, 8), (8, 9)]
    assert [shard.size for shard in shards] == [10, 10, 10, 3, 8]
    assert all(shard.size <= 10 for shard in shards)


def test_a_file_larger_than_the_size_limit_travels_alone() -> None:
    shards = plan(entries(1, 50, 1, 1, 60), max_bytes=10)
    assert ranges(shards) == [(0, 1), (1, 2), (2, 4), (4, 5)]
    assert [shard.size for shard in shards] == [1, 50, 2, 60]


def test_both_limits_apply_whichever_comes_first() -> None:
    shards = plan(entries(1, 1, 2, 9, 1, 1), max_bytes=10, max_files=2)
    assert ranges(shards) == [(0, 2), (2, 3), (3, 5), (5, 6)]


def test_the_same_entries_give_the_same_shards() -> None:
    data = entries(*[(index * 7919) % 1000 for index in range(500)])
    first = plan(data, max_bytes=5000, max_files=40)
    again = plan(iter([dict(entry) for entry in data]), max_bytes=5000, max_files=40)
    assert first == again
    assert ranges(first)[0][0] == 0 and ranges(first)[-1][1] == 500
    assert all(left.stop == right.start for left, right in zip(first, first[1:]))


def test_the_digest_identifies_the_file_names() -> None:
    one = plan(entries(1, 1), max_files=5)[0]
    renamed = entries(1, 1)
    renamed[1]['name'] = 'data/other'
    assert plan(renamed, max_files=5)[0].digest != one.digest
    resized = entries(1, 7)
    assert plan(resized, max_files=5)[0].digest == one.digest  # sizes may change in a shard not sent yet


def test_empty_input_is_a_clear_error() -> None:
    with pytest.raises(EmptyDatasetError, match='no file'):
        plan([], max_files=1)
    assert issubclass(EmptyDatasetError, ConfigurationError)


@pytest.mark.parametrize('limits', [{}, {'max_files': 0}, {'max_bytes': -1}, {'max_files': True}, {'max_bytes': 1.5}])
def test_limits_must_be_positive_ints_and_one_is_needed(limits: Dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        plan(entries(1), **limits)


@pytest.mark.parametrize('entry', [{'size': 1}, {'name': 'data/a'}, {'name': '', 'size': 1},
                                   {'name': 'data/a', 'size': -1}, {'name': 'data/a', 'size': True}, 'data/a'])
def test_an_entry_without_name_or_size_is_refused_with_its_index(entry: Any) -> None:
    with pytest.raises(FileDataError, match='entry 1'):
        plan([{'name': 'data/ok', 'size': 1}, entry], max_files=5)


def test_planning_is_lazy() -> None:
    produced = []

    def stream() -> Iterator[Dict[str, Any]]:
        for entry in entries(*[1] * 10):
            produced.append(entry['name'])
            yield entry

    shards = plan_shards(stream(), max_files=2)
    assert next(shards).stop == 2
    assert len(produced) == 3  # the third entry closed the first shard


def test_cut_yields_each_shards_entries() -> None:
    data = entries(*range(10))
    shards = plan(data, max_files=4)
    got = list(cut(iter(data), shards))
    assert [shard for shard, _ in got] == shards
    assert [[entry['name'] for entry in taken] for _, taken in got] == [
        [entry['name'] for entry in data[shard.start:shard.stop]] for shard in shards]


def test_cut_collects_only_the_wanted_shards_but_checks_them_all() -> None:
    data = entries(*range(10))
    shards = plan(data, max_files=4)
    got = list(cut(iter(data), shards, lambda shard: shard.part == 2))
    assert [(shard.part, len(taken)) for shard, taken in got] == [(2, 4)]
    data[1]['name'] = 'data/renamed'
    with pytest.raises(DatasetChangedError, match='part 1'):
        list(cut(iter(data), shards, lambda shard: shard.part == 2))


@pytest.mark.parametrize('change', ['insert', 'remove', 'append', 'truncate'])
def test_cut_refuses_a_dataset_that_changed(change: str) -> None:
    data = entries(*range(10))
    shards = plan(data, max_files=4)
    if change == 'insert':
        data.insert(5, {'name': 'data/new', 'size': 1})
    elif change == 'remove':
        del data[5]
    elif change == 'append':
        data.append({'name': 'data/new', 'size': 1})
    else:
        del data[8:]
    with pytest.raises(DatasetChangedError):
        list(cut(iter(data), shards))


def test_cut_refuses_shards_that_do_not_cover_the_dataset_in_order() -> None:
    data = entries(*range(6))
    shards = plan(data, max_files=2)
    with pytest.raises(DatasetChangedError, match='in order'):
        list(cut(iter(data), [shards[0], shards[2]]))


def test_entries_under_walks_in_a_stable_order_with_data_names(tmp_path: Any) -> None:
    for rel, size in (('b.txt', 2), ('a/z.txt', 3), ('a/b/c.txt', 1), ('c', 0)):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'x' * size)
    got = list(entries_under(str(tmp_path)))
    assert [(entry['name'], entry['size']) for entry in got] == [
        ('data/a/b/c.txt', 1), ('data/a/z.txt', 3), ('data/b.txt', 2), ('data/c', 0)]
    assert got[0]['path'] == str(tmp_path / 'a' / 'b' / 'c.txt')
    assert isinstance(got[0]['mtime'], float)
    assert [entry['name'] for entry in entries_under(str(tmp_path), prefix='')][0] == 'a/b/c.txt'


@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='needs FIFOs')
def test_entries_under_refuses_what_is_not_a_regular_file(tmp_path: Any) -> None:
    os.mkfifo(str(tmp_path / 'pipe'))
    with pytest.raises(ConfigurationError, match='not a regular file'):
        list(entries_under(str(tmp_path)))


def test_entries_under_needs_a_folder(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match='not a folder'):
        list(entries_under(str(tmp_path / 'nothing')))


def test_a_source_hands_out_the_entries_on_every_call(tmp_path: Any) -> None:
    (tmp_path / 'f').write_bytes(b'1')
    source = DatasetSource.from_root(str(tmp_path))
    assert list(source()) == list(source())
    data = entries(1, 2)
    listed = DatasetSource.from_file_data(data)
    assert list(listed()) == data == list(listed())


def test_a_file_data_source_refuses_a_name_twice_even_far_apart() -> None:
    data = entries(*[1] * 5) + [{'name': 'data/f001', 'size': 1}]
    with pytest.raises(FileDataError, match="'data/f001' appears twice"):
        DatasetSource.from_file_data(data)
    with pytest.raises(ConfigurationError):
        DatasetSource.from_file_data({'name': 'data/a', 'size': 1})  # type: ignore[arg-type]


@settings(deadline=None, database=None, max_examples=300)
@given(sizes=hs.lists(hs.integers(0, 50), max_size=60), max_bytes=hs.one_of(hs.none(), hs.integers(1, 60)),
       max_files=hs.one_of(hs.none(), hs.integers(1, 8)))
def test_every_plan_covers_the_stream_in_greedy_shards_within_the_limits(sizes: List[int], max_bytes: Any,
                                                                         max_files: Any) -> None:
    if max_bytes is None and max_files is None:
        max_files = 3
    data = entries(*sizes)
    if not data:
        with pytest.raises(EmptyDatasetError):
            plan(data, max_bytes, max_files)
        return
    shards = plan(data, max_bytes, max_files)
    assert shards == plan(list(data), max_bytes, max_files)
    assert [shard.part for shard in shards] == list(range(1, len(shards) + 1))
    assert shards[0].start == 0 and shards[-1].stop == len(data)
    for shard, after in zip(shards, shards[1:] + [None]):
        assert shard.files >= 1 and shard.size == sum(sizes[shard.start:shard.stop])
        assert max_files is None or shard.files <= max_files
        assert max_bytes is None or shard.size <= max_bytes or shard.files == 1  # only a lone big file exceeds
        if after is not None:
            assert after.start == shard.stop
            # greedy: the next entry did not fit
            assert ((max_files is not None and shard.files == max_files)
                    or (max_bytes is not None and shard.size + sizes[after.start] > max_bytes))


#: Entries the planning memory test streams: as many as issue 15 item 7 names for the coordinator.
MANY = 1_000_000
#: Planning keeps one small record per shard and nothing per entry. At a million
#: entries, keeping as little as 8 bytes per entry would pass this bound; the
#: thousand shard records take about half a megabyte.
PEAK_BOUND = 8 * 1024 * 1024


def synthetic(count: int) -> Iterator[Dict[str, Any]]:
    """Entries as a folder walk makes them, one at a time (cheap to build: tracemalloc slows each allocation)."""
    names = map('data/d{:04d}/f{:07d}.dat'.format, (index // 1000 for index in range(count)), range(count))
    return ({'name': name, 'size': 4096, 'mtime': 1.5e9, 'path': name} for name in names)


def test_planning_a_million_entries_streams() -> None:
    tracemalloc.start()
    try:
        shards = plan(synthetic(MANY), max_files=1000, max_bytes=1 << 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(shards) == 1000 and shards[-1].stop == MANY
    assert peak < PEAK_BOUND, 'planning peaked at {} bytes'.format(peak)


def test_cutting_holds_one_shard_at_a_time() -> None:
    count = 200_000  # each entry kept would cost a dict (over 180 bytes): 36 MB, far over the bound
    shards = plan(synthetic(count), max_files=1000)
    tracemalloc.start()
    try:
        seen = 0
        for _, taken in cut(synthetic(count), shards):
            seen += len(taken)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    # The shard handed out and the next one being collected: two thousand entries, about a megabyte.
    assert peak < PEAK_BOUND, 'cutting peaked at {} bytes'.format(peak)


@pytest.mark.skipif(not hasattr(os, 'symlink'), reason='needs symbolic links')
def test_links_to_files_are_followed_and_links_to_folders_left_out(tmp_path: Any) -> None:
    (tmp_path / 'real').mkdir()
    (tmp_path / 'real' / 'a').write_bytes(b'abc')
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'loop'))
    os.symlink(str(tmp_path / 'real' / 'a'), str(tmp_path / 'b'))
    got = [(entry['name'], entry['size']) for entry in entries_under(str(tmp_path))]
    assert got == [('data/b', 3), ('data/real/a', 3)]
    os.symlink(str(tmp_path / 'nothing'), str(tmp_path / 'broken'))
    with pytest.raises(ConfigurationError, match='broken'):
        list(entries_under(str(tmp_path)))


def _counted(root: str, calls: List[int]) -> DatasetSource:
    """A folder's source that counts its listings."""
    def listing() -> Iterator[Dict[str, Any]]:
        calls.append(1)
        return entries_under(root)
    return DatasetSource(listing, 'counted', plain=True)


def _tree(tmp_path: Any, count: int) -> str:
    for index in range(count):
        folder = tmp_path / 'd{}'.format(index % 3)
        folder.mkdir(exist_ok=True)
        (folder / 'f{:02d}'.format(index)).write_bytes(b'x' * index)
    return str(tmp_path)


def test_a_spool_hands_out_its_first_pass_again_without_listing(tmp_path: Any) -> None:
    calls: List[int] = []
    root = _tree(tmp_path, 10)
    with EntrySpool(_counted(root, calls), chunk=3) as spool:  # chunks of 3: entries cross chunk ends
        shards = plan(spool.first_pass(), max_files=4)
        again = spool.source()
        first = [entry for _, taken in cut(again(), shards) for entry in taken]
        second = list(again())
    assert calls == [1]
    assert first == second == list(entries_under(root))


def test_a_spool_lists_again_until_its_first_pass_has_ended(tmp_path: Any) -> None:
    calls: List[int] = []
    with EntrySpool(_counted(_tree(tmp_path, 5), calls)) as spool:
        started = spool.first_pass()
        next(started)
        assert len(list(spool.source()())) == 5 and calls == [1, 1]


def test_a_spool_of_entries_that_are_not_plain_reads_its_source_again() -> None:
    given = entries(1, 2, 3)
    with EntrySpool(DatasetSource.from_file_data(given)) as spool:
        assert list(spool.first_pass()) == given
        assert list(spool.source()()) == given


def test_two_passes_over_a_spool_may_interleave(tmp_path: Any) -> None:
    with EntrySpool(DatasetSource.from_root(_tree(tmp_path, 9)), chunk=2) as spool:
        expected = list(spool.first_pass())
        one, two = spool.source()(), spool.source()()
        mixed = [(next(one), next(two)) for _ in range(9)]
    assert [a for a, _ in mixed] == [b for _, b in mixed] == expected
