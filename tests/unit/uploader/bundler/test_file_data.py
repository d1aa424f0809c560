"""file_data is checked when the Bundler is made, and every problem is reported at once."""
from __future__ import annotations

import io
import os
import stat
import sys

import pytest

from pacifica._client.exceptions import FileDataError
from pacifica.uploader.bundler import Bundler

from tests.helpers.bundles import MTIME, bundle_bytes, read_members


def problems_of(md, file_data):
    with pytest.raises(FileDataError) as caught:
        Bundler(md, file_data)
    return caught.value


def good(name='data/ok', content=b'ok'):
    return {'name': name, 'size': len(content), 'mtime': MTIME, 'fileobj': io.BytesIO(content)}


def test_every_problem_is_listed_with_its_index(md, tmp_path):
    folder = tmp_path / 'folder'
    folder.mkdir()
    written = tmp_path / 'w.bin'
    sink = open(written, 'wb')
    closed = io.BytesIO(b'x')
    closed.close()
    entries = [
        good(),                                                                     # 0 fine
        {'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x')},                   # 1 no name
        {'name': 'data/n', 'mtime': MTIME, 'fileobj': io.BytesIO(b'x')},            # 2 no size
        {'name': 'data/m', 'size': 1, 'fileobj': io.BytesIO(b'x')},                 # 3 no mtime
        {'name': 'data/s', 'size': 1, 'mtime': MTIME},                              # 4 no source
        {'name': 'data/neg', 'size': -1, 'mtime': MTIME, 'fileobj': io.BytesIO()},  # 5 negative size
        {'name': 'data/flt', 'size': 1.0, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x')},  # 6 float size
        {'name': 'data/dir', 'size': 0, 'mtime': MTIME, 'path': str(folder)},       # 7 a directory
        {'name': 'data/gone', 'size': 0, 'mtime': MTIME, 'path': str(tmp_path / 'nope')},  # 8 missing
        {'name': 'data/w', 'size': 0, 'mtime': MTIME, 'fileobj': sink},             # 9 write-only
        {'name': 'data/c', 'size': 1, 'mtime': MTIME, 'fileobj': closed},           # 10 closed
        good('data/ok'),                                                            # 11 duplicate name
        'not a dict',                                                               # 12
        {'name': 'data/t', 'size': 1, 'mtime': 'yesterday', 'fileobj': io.BytesIO(b'x')},  # 13
        {'name': 'data/nan', 'size': 1, 'mtime': float('nan'), 'fileobj': io.BytesIO(b'x')},  # 14
        {'name': 'data/both', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x'),
         'path': str(written)},                                                     # 15 both sources
        {'name': 'data/k', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x'), 'colour': 'red'},  # 16
        {'name': 'data/sz', 'size': 5, 'mtime': MTIME, 'path': str(written)},       # 17 size differs
        {'name': 'data/slash/', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x')},  # 18
        {'name': 'metadata.txt', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x')},  # 19
        {'name': 'data/ty', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x'), 'type': b'5'},  # 20
        {'name': 'data/rd', 'size': 1, 'mtime': MTIME, 'fileobj': object()},        # 21 no read()
        {'name': 'data/big', 'size': 1, 'mtime': 1e12, 'fileobj': io.BytesIO(b'x')},  # 22 year > 9999
        {'name': 'data/mode', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x'), 'mode': 'rw'},  # 23
        {'name': 'data/pax', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x'),
         'pax_headers': {'size': '9'}},                                             # 24
    ]
    try:
        error = problems_of(md, entries)
    finally:
        sink.close()
    assert isinstance(error, ValueError) and isinstance(error, KeyError)
    by_index = {}
    for index, text in error.problems:
        by_index.setdefault(index, []).append(text)
    expected = {
        1: "missing 'name'", 2: "missing 'size'", 3: "missing 'mtime'", 4: "missing 'fileobj' or 'path'",
        5: "'size' must be an int >= 0", 6: "'size' must be an int >= 0", 7: 'is a directory',
        8: 'does not exist', 9: 'not open for reading', 10: 'is closed', 11: 'appears twice',
        12: 'must be a dict', 13: "'mtime' must be a finite number", 14: "'mtime' must be a finite number",
        15: 'not both', 16: "unknown key(s) 'colour'", 17: "'size' is 5 but", 18: "ends with '/'",
        19: 'reserved', 20: 'not a regular file', 21: 'no read() method', 22: 'outside the years',
        23: 'cannot be written into a tar header', 24: "without 'path' or 'size'",
    }
    assert sorted(by_index) == sorted(expected)
    for index, fragment in expected.items():
        assert any(fragment in text for text in by_index[index]), (index, by_index[index])
    message = str(error)
    assert message.startswith('{} problem(s) in file_data'.format(len(error.problems)))
    assert "file_data[7] ('data/dir')" in message and 'file_data[12]:' in message


def test_unreadable_path_is_reported(md, tmp_path, monkeypatch):
    """os.access is consulted when the mode bits do not make the file readable to all (root reads anyway)."""
    secret = tmp_path / 'secret'
    secret.write_bytes(b'x')
    secret.chmod(stat.S_IWUSR)
    monkeypatch.setattr(os, 'access', lambda path, mode: False)
    error = problems_of(md, [{'name': 'data/secret', 'size': 1, 'mtime': MTIME, 'path': str(secret)}])
    assert 'is not readable' in str(error)


@pytest.mark.skipif(sys.platform == 'win32', reason='FIFOs are POSIX')
def test_fifo_path_is_not_a_regular_file(md, tmp_path):
    fifo = tmp_path / 'fifo'
    os.mkfifo(fifo)
    error = problems_of(md, [{'name': 'data/f', 'size': 0, 'mtime': MTIME, 'path': str(fifo)}])
    assert 'is not a regular file' in str(error)


def test_many_problems_keep_the_message_short(md):
    error = problems_of(md, [{'name': 'data/{}'.format(i)} for i in range(100)])
    assert len(error.problems) == 300
    assert 'and 250 more' in str(error) and str(error).count('\n') == 51


@pytest.mark.parametrize('file_data', ['data/a', {'name': 'data/a'}, 42, None])
def test_file_data_must_be_a_list(md, file_data):
    with pytest.raises(FileDataError, match='must be a list of dicts'):
        Bundler(md, file_data)


def test_path_like_and_bytes_paths_work(md, make_files):
    import pathlib
    entry = make_files({'data/p': b'pp'})[0]
    as_path = dict(entry, path=pathlib.Path(entry['path']))
    as_bytes = dict(entry, name='data/q', path=os.fsencode(entry['path']))
    Bundler(md, [as_path, as_bytes]).stream(io.BytesIO())
    assert [obj.name for obj in md[-2:]] == ['p', 'q']


def test_valid_extra_keys_pass(md):
    """Extra keys are accepted and land on the member's header, as TarInfo attributes."""
    bundler = Bundler(md, [dict(good(), mode=0o755, uid=5, gid=6, uname='u', gname='g', type=b'0',
                                pax_headers={'a': 'b'})])
    (info, data), _metadata = read_members(bundle_bytes(bundler))
    assert (info.name, data) == ('data/ok', b'ok')
    assert (info.mode, info.uid, info.gid, info.uname, info.gname) == (0o755, 5, 6, 'u', 'g')
    assert info.type == b'0' and info.pax_headers == {'a': 'b'}
