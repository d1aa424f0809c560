"""Which files go into which cart: merging transactions for one folder, cutting by bytes and count."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pacifica.downloader import ConfigurationError, RecordError
from pacifica.downloader._cartplan import check_limit, merge_transactions, record_label, split_carts, total_size
from pacifica.downloader._records import FileEntry


def entry(number: int, size: Optional[int]) -> FileEntry:
    return FileEntry(str(number), 'd', 'f{}'.format(number), 'sha1', 'ab' * 20, size, ('d', 'f{}'.format(number)))


def record(transaction_id: Any, files: Dict[str, tuple]) -> Dict[str, Any]:
    """``files``: file id -> (path, hashsum)."""
    return {'transaction': {'_id': transaction_id}, 'files': {
        file_id: {'name': path.rsplit('/', 1)[-1], 'subdir': path.rpartition('/')[0], 'size': 1,
                  'hashtype': 'sha1', 'hashsum': hashsum} for file_id, (path, hashsum) in files.items()}}


def sizes(carts: List[List[FileEntry]]) -> List[List[Optional[int]]]:
    return [[item.size for item in cart] for cart in carts]


@pytest.mark.parametrize('file_sizes, max_bytes, max_files, expected', [
    ([], 10, 10, []),
    ([1, 2, 3], None, None, [[1, 2, 3]]),
    ([1, 2, 3, 4, 5], None, 2, [[1, 2], [3, 4], [5]]),
    ([4, 4, 4], 8, None, [[4, 4], [4]]),
    ([4, 5, 4], 8, None, [[4], [5], [4]]),
    ([3, 20, 3], 8, None, [[3], [20], [3]]),       # a file over the limit travels alone
    ([20], 8, 1, [[20]]),
    ([0, 0, 0, 8, 0], 8, 3, [[0, 0, 0], [8, 0]]),  # empty files count towards the file limit only
    ([None, None, 5], 5, 2, [[None, None], [5]]),  # no recorded size counts 0 bytes
    ([8, 8], 8, None, [[8], [8]]),                 # exactly the limit fits
])
def test_split_carts(file_sizes: List[Optional[int]], max_bytes: Optional[int], max_files: Optional[int],
                     expected: List[List[Optional[int]]]) -> None:
    entries = [entry(number, size) for number, size in enumerate(file_sizes)]
    assert sizes(split_carts(entries, max_bytes, max_files)) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=100), max_size=60), st.one_of(st.none(), st.integers(1, 150)),
       st.one_of(st.none(), st.integers(1, 8)))
def test_split_carts_properties(file_sizes: List[int], max_bytes: Optional[int], max_files: Optional[int]) -> None:
    entries = [entry(number, size) for number, size in enumerate(file_sizes)]
    carts = split_carts(entries, max_bytes, max_files)
    assert [item for cart in carts for item in cart] == entries  # every file once, in order
    for index, cart in enumerate(carts):
        assert cart
        assert max_files is None or len(cart) <= max_files
        cart_bytes = sum(item.size or 0 for item in cart)
        assert max_bytes is None or cart_bytes <= max_bytes or len(cart) == 1
        if index + 1 < len(carts):  # greedy: the next cart's first file would not have fitted
            first = carts[index + 1][0].size or 0
            assert ((max_files is not None and len(cart) == max_files)
                    or (max_bytes is not None and cart_bytes + first > max_bytes))


@pytest.mark.parametrize('value', [0, -1, 1.5, True, '3'])
def test_limits_are_whole_numbers_from_one(value: Any) -> None:
    with pytest.raises(ConfigurationError):
        check_limit(value, 'max_files')
    with pytest.raises(ConfigurationError, match='max_bytes'):
        split_carts([], max_bytes=value)


def test_limits() -> None:
    assert check_limit(None, 'x') is None and check_limit(7, 'x') == 7


def test_total_size() -> None:
    assert total_size([entry(1, 3), entry(2, 4)]) == 7 and total_size([]) == 0
    assert total_size([entry(1, 3), entry(2, None)]) is None


def test_merge_keeps_record_order_across_transactions() -> None:
    merged = merge_transactions([record(1, {'10': ('a/x', '1' * 40), '11': ('b', '2' * 40)}),
                                 record(2, {'12': ('a/y', '3' * 40)})])
    assert [item.id for item in merged] == ['10', '11', '12']


def test_merge_refuses_two_files_at_one_path_naming_both_transactions() -> None:
    with pytest.raises(RecordError, match=r"transaction 1 \(file '10'\) and transaction 2 \(file '20'\) both put a "
                                          r"file at 'a/x'"):
        merge_transactions([record(1, {'10': ('a/x', '1' * 40)}), record(2, {'20': ('a/x', '1' * 40)})])


def test_merge_keeps_a_file_listed_alike_twice_once() -> None:
    same = record(1, {'10': ('a/x', '1' * 40)})
    assert len(merge_transactions([same, same])) == 1


def test_merge_refuses_a_file_where_another_transaction_needs_a_folder() -> None:
    with pytest.raises(RecordError, match='cannot also be a directory'):
        merge_transactions([record(1, {'10': ('a', '1' * 40)}), record(2, {'20': ('a/x', '2' * 40)})])


def test_merge_checks_every_record() -> None:
    with pytest.raises(RecordError, match="no 'files' field"):
        merge_transactions([record(1, {}), {'transaction': {'_id': 2}}])


def test_record_label() -> None:
    assert record_label({'transaction': {'_id': 5}}, 0) == 'transaction 5'
    assert record_label({'files': {}}, 2) == 'record 3'
    assert record_label([], 0) == 'record 1'
