"""Verification reports every problem of a cart in one error, and nothing bad is ever kept.

A cart whose members are too long, too short, wrong or missing is read to
its end: the good files after each bad one are still written and verified,
and one VerificationError lists every bad file with a typed detail.
"""
from __future__ import annotations

import copy
import hashlib
import pickle
import tarfile

import pytest

from pacifica.downloader import (
    ChecksumMismatch, Downloader, FileMissing, SizeMismatch, VerificationDetail, VerificationError,
)
from tests.helpers.cartd import build_tar, member, transaction_info

from .conftest import FAST, expected_tree, final_files, tree

#: Every test runs with small part files made here and by the part-file process (conftest).
pytestmark = pytest.mark.usefixtures('part_files')

#: Bigger than the receive chunk and PartWriter.BACKGROUND_SIZE: the skip crosses buffers.
BIG = 3 * 1024 * 1024 + 7


def _content(tag: str, size: int) -> bytes:
    return (tag.encode() * (size // len(tag) + 1))[:size]


def _cart(size: int):
    """The record's files and what the cart sends for each: bad ones interleaved with good ones."""
    record = {
        1: ('d', '1-too-long.bin', _content('long', size)),
        2: ('d', '2-good.txt', _content('good two', size)),
        3: ('d', '3-too-short.bin', _content('short', size)),
        4: ('d', '4-good.txt', _content('good four', size)),
        5: ('d', '5-wrong.bin', _content('right', size)),
        6: ('d', '6-good.txt', _content('good six', size)),
        7: ('d', '7-missing.bin', _content('missing', size)),
        8: ('d', '8-good.txt', _content('good eight', size)),
    }
    sent = expected_tree(record)
    sent['data/d/1-too-long.bin'] += b'+'
    sent['data/d/3-too-short.bin'] = sent['data/d/3-too-short.bin'][:-1]
    sent['data/d/5-wrong.bin'] = _content('wrong', size)
    del sent['data/d/7-missing.bin']
    members = [member('data', tarfile.DIRTYPE), member('data/d', tarfile.DIRTYPE)]
    members += [member(path) for path in sorted(sent)]
    return record, sent, build_tar(members, sent)


@pytest.mark.parametrize('size', [13, BIG], ids=['small', 'big'])
def test_every_problem_in_one_error_and_every_good_file_verified(cartd, dest, size):
    record, sent, tar = _cart(size)
    info = transaction_info(record)
    cartd.behaviour.tar_bytes = tar
    with pytest.raises(VerificationError) as caught:
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, info)

    problems = {problem.path: problem for problem in caught.value.problems}
    assert {path: type(problem) for path, problem in problems.items()} == {
        'd/1-too-long.bin': SizeMismatch, 'd/3-too-short.bin': SizeMismatch,
        'd/5-wrong.bin': ChecksumMismatch, 'd/7-missing.bin': FileMissing}
    for file_id, (subdir, name, _) in record.items():
        problem = problems.get('{}/{}'.format(subdir, name))
        if problem is not None:
            assert (problem.hashtype, problem.expected) == ('sha1', info['files'][str(file_id)]['hashsum'])
            assert problem.expected_size == size
            assert problem.path in str(caught.value)
    assert (problems['d/1-too-long.bin'].actual_size, problems['d/3-too-short.bin'].actual_size) == (size + 1,
                                                                                                     size - 1)
    assert problems['d/1-too-long.bin'].found == hashlib.sha1(sent['data/d/1-too-long.bin']).hexdigest()
    assert problems['d/5-wrong.bin'].found == hashlib.sha1(sent['data/d/5-wrong.bin']).hexdigest()
    assert problems['d/5-wrong.bin'].actual_size == size
    assert (problems['d/7-missing.bin'].found, problems['d/7-missing.bin'].actual_size) == (None, None)
    assert 'expected {} bytes, the cart holds {}'.format(size, size + 1) in str(caught.value)

    # Nothing under a final name, no part file, nothing at all of the bad files;
    # every good file written, verified and parked for the next call.
    assert final_files(dest) == {}
    left = tree(dest)
    good = {path: content for path, content in expected_tree(record).items() if 'good' in path}
    assert {path.replace('/.', '/').replace('.pacifica-verified', ''): content
            for path, content in left.items()} == good

    # The next call asks the cart for the four bad files only and completes the download.
    cartd.behaviour.tar_bytes = None
    for file_id, (_subdir, _name, content) in record.items():
        cartd.add_file(file_id, content)
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, info)
    assert sorted(item['id'] for item in list(cartd.carts.values())[1].fileids) == ['1', '3', '5', '7']
    assert tree(dest) == expected_tree(record)


def test_a_too_long_member_never_reaches_the_disk(cartd, dest):
    """Only member; no byte of it is written, not even under a hidden name."""
    record = {1: ('', 'f.bin', b'declared size')}
    sent = {'data/f.bin': b'declared size, and then a great deal more'}
    cartd.behaviour.tar_bytes = build_tar([member('data', tarfile.DIRTYPE), member('data/f.bin')], sent)
    with pytest.raises(VerificationError) as caught:
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(record))
    [problem] = caught.value.problems
    assert isinstance(problem, SizeMismatch) and (problem.expected_size, problem.actual_size) == (13, 41)
    assert tree(dest) == {}


def test_details_are_the_triples_of_earlier_releases():
    """``problems`` still hold ``(path, expected, found)`` with 'missing' for a file not delivered."""
    mismatch = ChecksumMismatch('a/b.txt', 'sha1', 'e' * 40, 'f' * 40, 5, 5)
    missing = FileMissing('a/c.txt', 'sha1', 'e' * 40, None, 7)
    wrong_size = SizeMismatch('a/d.txt', 'md5', 'e' * 32, 'f' * 32, 7, 9)
    assert tuple(mismatch) == ('a/b.txt', 'e' * 40, 'f' * 40)
    assert tuple(missing) == ('a/c.txt', 'e' * 40, 'missing') and missing.found is None
    assert '{}: expected {}, found {}'.format(*wrong_size) == 'a/d.txt: expected {}, found {}'.format(
        'e' * 32, 'f' * 32)
    for detail in (mismatch, missing, wrong_size):
        assert isinstance(detail, VerificationDetail)
        for clone in (copy.deepcopy(detail), pickle.loads(pickle.dumps(detail))):
            assert type(clone) is type(detail) and repr(clone) == repr(detail)


def test_plain_triples_become_typed_details():
    error = VerificationError([('a', 'x', 'y'), ('b', 'x', 'missing')])
    assert [type(problem) for problem in error.problems] == [ChecksumMismatch, FileMissing]
    assert error.problems[1].found is None and tuple(error.problems[1]) == ('b', 'x', 'missing')
    assert 'a: expected x, found y' in str(error)
    assert str(error).count('\n') == 2
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and [repr(problem) for problem in again.problems] == [
        repr(problem) for problem in error.problems]

