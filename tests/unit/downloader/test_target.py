"""Target paths (the cached directory prefix gives what os.path.join gives), and the scan of what is there."""
from __future__ import annotations

import hashlib
import os
from typing import List

import pytest

from pacifica._client.exceptions import UnsafeArchiveError
from pacifica.downloader._records import FileEntry
from pacifica.downloader._target import (
    PARKED_TREE, PART_SUFFIX, VERIFIED_SUFFIX, ParkedTree, Parts, Target, hidden_name, scan_existing,
)


@pytest.mark.parametrize('location', ['base', 'base' + os.sep, os.sep])
@pytest.mark.parametrize('filename_parts', [(), ('data',), ('data', 'sub')])
def test_a_path_is_the_joined_path(location, filename_parts):
    target = Target(location, filename_parts)
    for parts in [('a',), ('d', 'e', 'f.bin'), ('d', 'e', 'g.bin'), ('a',)]:
        assert target.path(parts) == os.path.join(location, *filename_parts, *parts)
    assert target.path(()) == os.path.join(location, *filename_parts)


def _entry(parts: Parts, content: bytes) -> FileEntry:
    return FileEntry('1', '/'.join(parts[:-1]), parts[-1], 'sha1', hashlib.sha1(content).hexdigest(), len(content),
                     parts)


def _write(path: str, content: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(content)


def _files(root: str) -> List[str]:
    return sorted(os.path.relpath(os.path.join(base, name), root).replace(os.sep, '/')
                  for base, dirs, names in os.walk(root) for name in names + dirs)


def test_the_part_file_0_1_0_left_for_a_long_name_is_found_by_its_hashed_name_and_removed(tmp_path):
    """0.1.0 named a part '.<sha1 of the name>.pacifica-part' when the name took over 200 bytes."""
    name = '\u00e9' * 101  # 202 bytes in UTF-8
    assert hidden_name(name, PART_SUFFIX) == '.' + hashlib.sha1(name.encode()).hexdigest() + '.pacifica-part'
    target = Target(str(tmp_path), ('data',))
    _write(target.hidden_path(('d', name), PART_SUFFIX), b'half')
    _write(target.path(('d', '.' + name + PART_SUFFIX)), b'not a name 0.1.0 gave this file')
    found = scan_existing(target, [_entry(('d', name), b'x')])
    assert len(found.missing) == 1
    assert _files(target.path(('d',))) == ['.' + name + PART_SUFFIX]


def test_a_verified_file_is_taken_from_the_parked_tree_and_the_folders_it_leaves_empty_removed(tmp_path):
    target = Target(str(tmp_path), ('data',))
    tree_root = target.path((PARKED_TREE,))
    _write(os.path.join(tree_root, 'a', 'b', 'x'), b'x')
    _write(os.path.join(tree_root, 'a', 'c', 'y'), b'y')
    _write(os.path.join(tree_root, 'a', 'c', 'other'), b'another record')
    found = scan_existing(target, [_entry(('a', 'b', 'x'), b'x'), _entry(('a', 'c', 'y'), b'y'),
                                   _entry(('a', 'z'), b'z')])
    assert [entry.name for entry in found.parked] == ['x', 'y'] and [entry.name for entry in found.missing] == ['z']
    assert _files(target.root) == sorted(['.pacifica-verified', '.pacifica-verified/a', '.pacifica-verified/a/c',
                                          '.pacifica-verified/a/c/other', 'a', 'a/b', 'a/b/.x.pacifica-verified',
                                          'a/c', 'a/c/.y.pacifica-verified'])
    os.remove(os.path.join(tree_root, 'a', 'c', 'other'))
    os.remove(target.hidden_path(('a', 'c', 'y'), VERIFIED_SUFFIX))
    assert scan_existing(target, [_entry(('a', 'c', 'y'), b'y')]).missing
    _write(os.path.join(tree_root, 'a', 'c', 'y'), b'y')
    assert scan_existing(target, [_entry(('a', 'c', 'y'), b'y')]).parked
    assert not os.path.lexists(tree_root)  # the last file taken: the tree goes


@pytest.mark.skipif(not hasattr(os, 'symlink'), reason='no symbolic links here')
def test_links_in_or_as_the_parked_tree_are_not_followed(tmp_path):
    target = Target(str(tmp_path), ('data',))
    outside = str(tmp_path / 'outside')
    _write(os.path.join(outside, 'b', 'x'), b'x')
    _write(os.path.join(target.root, 'keep'), b'')
    os.symlink(outside, target.path((PARKED_TREE,)))
    assert ParkedTree.find(target) is None
    os.remove(target.path((PARKED_TREE,)))
    os.makedirs(target.path((PARKED_TREE,)))
    os.symlink(outside, target.path((PARKED_TREE, 'a')))
    assert scan_existing(target, [_entry(('a', 'b', 'x'), b'x')]).missing
    assert _files(outside) == ['b', 'b/x'] and not os.path.lexists(target.path(('a',)))
    with pytest.raises(UnsafeArchiveError, match='symbolic link'):
        ParkedTree(target).park(os.path.join(outside, 'b', 'x'), ('a', 'b', 'x'))
    assert _files(outside) == ['b', 'b/x']
