"""The data path: files that change, lazy path entries, streaming twice, iter_bytes chunks."""
from __future__ import annotations

import hashlib
import io
import os
import sys
import threading

import pytest

from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import FileChangedError
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.bundler.tarwriter import SMALL_FILE

from tests.helpers.bundles import MTIME, bundle_bytes, read_members, valid_metadata

SMALL_CHUNKS = TransferConfig(chunk_size=512)


class Pipe:
    """A read-only, unseekable source that hands out at most ``step`` bytes per read, like a pipe."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data, self._step = data, step

    def read(self, size: int = -1) -> bytes:
        size = self._step if size < 0 else min(size, self._step)
        piece, self._data = self._data[:size], self._data[size:]
        return piece


@pytest.mark.parametrize('kind', ['bytesio', 'text', 'pipe', 'small-path', 'large-path'])
@pytest.mark.parametrize('change', [-1, +1])
def test_a_file_that_shrank_or_grew_raises(md, tmp_path, kind, change):
    declared = SMALL_FILE + 10 if kind == 'large-path' else 100
    actual = declared + change
    content = b'x' * actual
    entry = {'name': 'data/f', 'size': declared, 'mtime': MTIME}
    if kind in ('small-path', 'large-path'):
        path = tmp_path / 'f'
        path.write_bytes(b'x' * declared)
        entry['path'] = str(path)
        bundler = Bundler(md, [entry])
        path.write_bytes(content)  # changed after it was listed
    else:
        entry['fileobj'] = {'bytesio': lambda: io.BytesIO(content), 'pipe': lambda: Pipe(content),
                            'text': lambda: io.StringIO(content.decode())}[kind]()
        bundler = Bundler(md, [entry])
    before = len(md)
    with pytest.raises(FileChangedError, match='shrank' if change < 0 else 'grew') as caught:
        bundle_bytes(bundler)
    assert isinstance(caught.value, OSError) and "'data/f'" in str(caught.value)
    assert len(md) == before, 'a failed stream must not leave FileObjs behind'


def test_a_text_file_growing_by_one_multibyte_character(md):
    """The size counts UTF-8 bytes: 'é' is two, so a declared size one byte short is caught."""
    with pytest.raises(FileChangedError, match='grew'):
        bundle_bytes(Bundler(md, [{'name': 'data/t', 'size': 2, 'mtime': MTIME, 'fileobj': io.StringIO('aé')}]))


def test_a_vanished_path_is_reported(md, make_files):
    entries = make_files({'data/a': b'a', 'data/b': b'b'})
    bundler = Bundler(md, entries)
    os.remove(entries[1]['path'])
    with pytest.raises(FileChangedError, match="'data/b' cannot be opened any more"):
        bundle_bytes(bundler)


def test_pipe_sources_with_short_reads_are_read_fully(md):
    content = os.urandom(5000)
    members = read_members(bundle_bytes(Bundler(md, [{'name': 'data/p', 'size': 5000, 'mtime': MTIME,
                                                      'fileobj': Pipe(content, 333)}])))
    assert members[0][1] == content


def _open_fds() -> int:
    for folder in ('/proc/self/fd', '/dev/fd'):
        if os.path.isdir(folder):
            return len(os.listdir(folder))
    raise AssertionError('no way to count open file descriptors on this platform')


@pytest.mark.skipif(sys.platform == 'win32', reason='counts descriptors through /proc or /dev/fd')
def test_path_entries_are_opened_one_at_a_time(md, tmp_path):
    """2,000 path entries (and two large ones): never more than a couple of descriptors open."""
    entries = []
    for index in range(2000):
        path = tmp_path / 'd{}'.format(index % 10) / 'f{}'.format(index)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b'%d' % index)
        entries.append({'name': 'data/f{}'.format(index), 'size': path.stat().st_size, 'mtime': MTIME,
                        'path': str(path)})
        if index in (10, 1500):
            big = tmp_path / 'big{}'.format(index)
            big.write_bytes(b'b' * (SMALL_FILE + 5000))
            entries.append({'name': 'data/big{}'.format(index), 'size': SMALL_FILE + 5000, 'mtime': MTIME,
                            'path': str(big)})
    baseline = _open_fds()
    # read_ahead=False: the read-ahead process's two pipes are covered in test_read_ahead.py.
    bundler = Bundler(md, entries, config=TransferConfig(chunk_size=4096, read_ahead=False))
    assert _open_fds() == baseline, 'making the Bundler opened files'
    counts = []
    total = 0
    for chunk in bundler.iter_bytes():
        counts.append(_open_fds())
        total += len(chunk)
    assert total == bundler.content_length()
    assert max(counts) - baseline <= 2
    assert max(counts) - baseline == 1, 'the large files are read across chunks through one descriptor'
    assert _open_fds() == baseline


def test_path_entries_are_read_when_their_turn_comes(md, make_files):
    entries = make_files({'data/a': b'before'})
    bundler = Bundler(md, entries)
    with open(entries[0]['path'], 'wb') as handle:
        handle.write(b'after!')  # same size, new content
    assert read_members(bundle_bytes(bundler))[0][1] == b'after!'


def test_stream_twice_gives_the_same_bundle(md, make_files):
    content = os.urandom(3000)
    entries = make_files({'data/p/a.bin': content}) + [
        {'name': 'data/b.bin', 'size': 3000, 'mtime': MTIME, 'fileobj': io.BytesIO(content)},
        {'name': 'data/c.txt', 'size': 4, 'mtime': MTIME, 'fileobj': io.StringIO('text')}]
    snapshot = [dict(entry) for entry in entries]
    bundler = Bundler(md, entries)
    first = bundle_bytes(bundler)
    second = bundle_bytes(bundler)
    assert first == second
    assert entries == snapshot, 'the caller\'s dicts are not consumed'
    assert len(md) == len(valid_metadata()) + 3, 'one FileObj per file, not one per stream'
    assert bundler.content_length() == len(first)


def test_a_second_bundler_on_the_same_metadata_appends(md, make_files):
    entries = make_files({'data/a': b'a'})
    bundle_bytes(Bundler(md, entries))
    bundle_bytes(Bundler(md, make_files({'data/b': b'b'})))
    assert [obj.name for obj in md[-2:]] == ['a', 'b']


def test_iter_bytes_is_the_stream_in_reused_chunks(md, make_files):
    entries = make_files({'data/a': os.urandom(2000), 'data/b': b'', 'data/c': os.urandom(70000)})
    bundler = Bundler(md, entries, config=TransferConfig(chunk_size=4096))
    chunks = []
    for chunk in bundler.iter_bytes():
        assert len(chunk) <= 4096
        chunks.append(bytes(chunk))  # a memoryview is only valid until the next chunk
    assert b''.join(chunks) == bundle_bytes(Bundler(valid_metadata(), entries))
    assert all(len(chunk) == 4096 for chunk in chunks[:-1])


def test_abandoning_iter_bytes_closes_the_open_file(md, tmp_path):
    big = tmp_path / 'big'
    big.write_bytes(b'x' * (SMALL_FILE * 4))
    bundler = Bundler(md, [{'name': 'data/big', 'size': SMALL_FILE * 4, 'mtime': MTIME, 'path': str(big)}],
                      config=SMALL_CHUNKS)
    calls = []
    chunks = bundler.iter_bytes(callback=calls.append, sleeptime=60)
    baseline = _open_fds() if sys.platform != 'win32' else 0
    next(chunks)
    next(chunks)
    chunks.close()
    if sys.platform != 'win32':
        assert _open_fds() <= baseline
    assert calls == [], 'an abandoned bundle is not reported complete'
    assert len(md) == len(valid_metadata())


def test_large_files_hash_across_chunk_boundaries(md, tmp_path):
    content = os.urandom(3 * 1024 * 1024 + 123)
    path = tmp_path / 'x'
    path.write_bytes(content)
    bundler = Bundler(md, [{'name': 'data/x', 'size': len(content), 'mtime': MTIME, 'path': str(path)},
                           {'name': 'data/y', 'size': len(content), 'mtime': MTIME,
                            'fileobj': io.BytesIO(content)}])
    members = read_members(bundle_bytes(bundler))
    assert members[0][1] == content == members[1][1]
    assert md[-1].hashsum == md[-2].hashsum == hashlib.sha1(content).hexdigest()


def test_a_sink_that_is_no_io_object_gets_copies(md, make_files):
    """Chunks come from a reused buffer; a sink that keeps them must not see them change."""
    class Keeper:
        def __init__(self):
            self.kept = []

        def write(self, chunk):
            self.kept.append(chunk)

    entries = make_files({'data/a': os.urandom(300000), 'data/b': os.urandom(300000)})
    sink = Keeper()
    Bundler(md, entries, config=TransferConfig(chunk_size=65536)).stream(sink)
    assert b''.join(sink.kept) == bundle_bytes(Bundler(valid_metadata(), entries))


def test_concurrent_bundlers_do_not_interfere(make_files):
    entries = make_files({'data/{}'.format(i): os.urandom(1000 + i) for i in range(50)})
    results = {}

    def run(key):
        results[key] = bundle_bytes(Bundler(valid_metadata(), entries))

    threads = [threading.Thread(target=run, args=(key,)) for key in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results.values())) == 1


def test_a_file_that_vanished_fails_at_its_turn_after_the_earlier_files(md, make_files):
    entries = make_files({'data/f{:04d}'.format(index): b'%d' % index for index in range(600)})
    bundler = Bundler(md, entries, config=TransferConfig(chunk_size=512))
    os.remove(entries[450]['path'])
    sent = bytearray()
    with pytest.raises(FileChangedError, match="'data/f0450' cannot be opened any more"):
        for chunk in bundler.iter_bytes():
            sent += chunk
    assert b'data/f0449' in sent and b'data/f0450' not in sent
