"""Side by side with pacifica-uploader 0.3.1: same inputs, same metadata.txt bytes, same members.

Upstream runs in its own virtual environment (see tests/helpers/upstream.py),
created from the package index on first use.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List

import pytest

from pacifica.uploader.bundler import Bundler
from tests.helpers.upstream import run_upstream_bundle

from tests.helpers.bundles import bundle_bytes, read_members, valid_metadata

METADATA = [
    {'sourceTable': 'Instruments', 'destinationTable': 'Transactions.instrument', 'metaID': 'instrumentByID',
     'value': '54'},
    {'destinationTable': 'TransactionKeyValue', 'key': 'Tag', 'value': 'Ünïcode', 'metaID': 'tag'},
]


def _write_inputs(root: Path) -> List[Dict[str, Any]]:
    """Files of many shapes, described the way both bundlers take them (``path`` opened by each side)."""
    shapes = [
        ('data/readme.txt', b'plain text\n', 1545127200, {}),
        ('data/a/b/c/deep.json', b'{"k": [1, 2, 3]}', 1545127201, {}),
        ('data/empty.dat', b'', 1545127202, {}),
        ('data/exactly-one-block.bin', os.urandom(512), 1545127203, {}),
        ('data/images/photo.PNG', os.urandom(70000), 1545127204.75, {}),
        ('data/ünïcødé/名前.csv', 'a,b\n1,2\n'.encode('utf-8'), 1545127205, {}),
        ('data/' + 'long-directory-name/' * 6 + 'file-with-a-long-name.tar.gz', os.urandom(1500), 86400.25, {}),
        ('data//double//slash.xml', b'<x/>', 1545127206, {}),
        ('top-level.unknownext', os.urandom(10), 0, {}),
        ('data/perm.sh', b'#!/bin/sh\n', 1545127207, {'mode': 0o755, 'uid': 1000, 'gid': 100,
                                                       'uname': 'scientist', 'gname': 'lab'}),
        ('data/big.bin', os.urandom(3 * 1024 * 1024 + 5), 1545127208, {}),
    ]
    files = []
    for index, (name, content, mtime, extra) in enumerate(shapes):
        path = root / 'src' / 'f{}'.format(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        files.append(dict({'name': name, 'size': len(content), 'mtime': mtime, 'path': str(path)}, **extra))
    files.append({'name': 'data/notes.txt', 'size': 12, 'mtime': 1545127209, 'path': str(root / 'notes'),
                  'text': True})
    (root / 'notes').write_bytes(b'ascii notes\n')
    return files


def _ours(files: List[Dict[str, Any]], hashfunc: str) -> bytes:
    file_data = []
    handles = []
    for entry in files:
        entry = dict(entry)
        if entry.pop('text', False):
            handle = open(entry.pop('path'), 'r', encoding='utf-8', newline='')
            handles.append(handle)
            entry['fileobj'] = handle
        file_data.append(entry)
    try:
        kwargs = {'hashfunc': hashfunc} if hashfunc else {}
        return bundle_bytes(Bundler(valid_metadata(), file_data, **kwargs))
    finally:
        for handle in handles:
            handle.close()


@pytest.mark.parametrize('hashfunc', ['', 'sha256', 'md5'])
def test_same_metadata_and_members_as_upstream(upstream, tmp_path, hashfunc):
    files = _write_inputs(tmp_path)
    theirs = read_members(run_upstream_bundle(upstream, tmp_path, METADATA, files, hashfunc))
    ours = read_members(_ours(files, hashfunc))
    assert ours[-1][0].name == theirs[-1][0].name == 'metadata.txt'
    assert ours[-1][1] == theirs[-1][1], 'metadata.txt differs from 0.3.1 byte for byte'
    assert len(ours) == len(theirs) == len(files) + 1
    for (our_info, our_data), (their_info, their_data) in zip(ours, theirs):
        assert (our_info.name, our_info.size, int(our_info.mtime), our_info.mode) == \
               (their_info.name, their_info.size, int(their_info.mtime), their_info.mode)
        assert (our_info.uid, our_info.gid, our_info.uname, our_info.gname) == \
               (their_info.uid, their_info.gid, their_info.uname, their_info.gname)
        assert our_data == their_data, our_info.name
