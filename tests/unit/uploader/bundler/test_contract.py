"""Contract section 5: names, constructor checks, the tar layout and the metadata it carries."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading

import pytest

from pacifica._client.exceptions import BundleError, InvalidMetadataError, UnsupportedHashError, UsageError
from pacifica._client.keywords import IgnoredKeywordWarning
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.bundler.bundler import SHAKE_DIGEST_BYTES, HashFileObj
from pacifica.uploader.metadata import FileObj, MetaData, MetaObj, metadata_decode, metadata_encode

from tests.helpers.bundles import MTIME, bundle_bytes, read_members, valid_metadata


def test_names_import_as_upstream_exposes_them():
    from pacifica.uploader import bundler
    from pacifica.uploader.bundler import bundler as inner
    assert bundler.Bundler is Bundler is inner.Bundler
    assert inner.HashFileObj is HashFileObj


def test_invalid_metadata_is_a_value_error():
    with pytest.raises(InvalidMetadataError) as caught:
        Bundler(MetaData([MetaObj(destinationTable='Transactions.instrument', value=None)]), [])
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ValueError):
        Bundler(MetaData([]), [])


@pytest.mark.parametrize('name', ['sha0', 'SHA1', 'crc32', ''])
def test_unknown_hashfunc_is_a_value_error(md, name):
    with pytest.raises(UnsupportedHashError, match='algorithms_available') as caught:
        Bundler(md, [], hashfunc=name)
    assert isinstance(caught.value, ValueError)


def test_unknown_keyword_is_ignored_with_a_warning(md):
    """0.3.1 ignored unknown keywords; the warning makes a typo visible without breaking old programs."""
    with pytest.warns(IgnoredKeywordWarning, match="'hashfun' \\(did you mean 'hashfunc'\\?\\)"):
        bundler = Bundler(md, [], hashfun='sha256')
    assert bundler._hashstr == 'sha1'


def test_class_attributes_are_none_and_unset_ones_fail_clearly(md):
    """0.3.1 had md_obj = file_data = None on the class; a bundler left that way names what is missing."""
    assert Bundler.md_obj is None and Bundler.file_data is None
    bundler = Bundler(md, [])
    bundler.md_obj = None
    with pytest.raises(UsageError, match='no md_obj'):
        bundler.stream(io.BytesIO())
    bundler = Bundler(md, [])
    bundler.file_data = None
    with pytest.raises(TypeError, match='no file_data'):
        bundler._save_total_size()


@pytest.mark.parametrize('algorithm', sorted(hashlib.algorithms_available))
def test_every_available_algorithm_hashes_the_data(md, algorithm):
    content = b'some bytes\n' * 1000
    bundler = Bundler(md, [{'name': 'data/a.bin', 'size': len(content), 'mtime': MTIME,
                            'fileobj': io.BytesIO(content)}], hashfunc=algorithm)
    bundle_bytes(bundler)
    expected = hashlib.new(algorithm, content)
    digest = (expected.hexdigest(SHAKE_DIGEST_BYTES[algorithm]) if algorithm in SHAKE_DIGEST_BYTES
              else expected.hexdigest())
    file_obj = md[-1]
    assert (file_obj.hashtype, file_obj.hashsum) == (algorithm, digest)


def test_shake_digest_lengths_are_documented():
    assert SHAKE_DIGEST_BYTES == {'shake_128': 32, 'shake_256': 64}


def test_stream_writes_members_in_order_then_metadata(md, make_files):
    contents = {'data/b.txt': b'second? no, first', 'data/a/deep/x.json': b'{}', 'data/empty': b'',
                'data/block.bin': b'\x00' * 512}
    entries = make_files(contents)
    members = read_members(bundle_bytes(Bundler(md, entries)))
    assert [info.name for info, _ in members] == list(contents) + ['metadata.txt']
    for (info, data), (name, content) in zip(members, contents.items()):
        assert (info.name, info.size, data, info.mtime) == (name, len(content), content, MTIME)
        assert info.isreg() and info.mode == 0o644
    meta_info, meta_text = members[-1]
    assert meta_info.mtime == 0 and meta_info.size == len(meta_text)
    assert meta_text == metadata_encode(md).encode('utf-8')


def test_file_objs_follow_the_contract(md):
    content = b'hello'
    before = len(md)
    entries = [
        {'name': 'data/sub//dir/report.txt', 'size': 5, 'mtime': 1545127200.75, 'fileobj': io.BytesIO(content)},
        {'name': 'top.unknownext', 'size': 5, 'mtime': 0, 'fileobj': io.BytesIO(content)},
        {'name': 'data/data/x.tar.gz', 'size': 5, 'mtime': -86400, 'fileobj': io.BytesIO(content)},
    ]
    bundle_bytes(Bundler(md, entries))
    sha1 = hashlib.sha1(content).hexdigest()
    assert list(md[before:]) == [
        FileObj(destinationTable='Files', name='report.txt', subdir='sub/dir', size=5, hashtype='sha1',
                hashsum=sha1, mimetype='text/plain', ctime='2018-12-18T10:00:00', mtime='2018-12-18T10:00:00'),
        FileObj(destinationTable='Files', name='top.unknownext', subdir='', size=5, hashtype='sha1',
                hashsum=sha1, mimetype='application/octet-stream', ctime='1970-01-01T00:00:00',
                mtime='1970-01-01T00:00:00'),
        FileObj(destinationTable='Files', name='x.tar.gz', subdir='data', size=5, hashtype='sha1',
                hashsum=sha1, mimetype='application/x-tar', ctime='1969-12-31T00:00:00',
                mtime='1969-12-31T00:00:00'),
    ]


def test_metadata_text_decodes_to_md_obj(md, make_files):
    bundler = Bundler(md, make_files({'data/x/y.csv': b'a,b\n'}))
    members = read_members(bundle_bytes(bundler))
    assert metadata_decode(members[-1][1].decode('utf-8')) == list(md)
    assert json.loads(members[-1][1])[-1]['subdir'] == 'x'


def test_text_mode_file_is_encoded_as_utf8(md, tmp_path):
    text = 'grüße, 世界\n' * 3
    path = tmp_path / 't.txt'
    path.write_text(text, encoding='utf-8')
    encoded = text.encode('utf-8')
    with open(path, encoding='utf-8', newline='') as handle:
        members = read_members(bundle_bytes(Bundler(md, [
            {'name': 'data/t.txt', 'size': len(encoded), 'mtime': MTIME, 'fileobj': handle}])))
    assert members[0][1] == encoded
    assert md[-1].hashsum == hashlib.sha1(encoded).hexdigest()


def test_extra_keys_are_set_on_the_tarinfo(md):
    entries = [{'name': 'data/x', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x'),
                'mode': 0o600, 'uid': 1234, 'gid': 99, 'uname': 'alice', 'gname': 'lab'}]
    info = read_members(bundle_bytes(Bundler(md, entries)))[0][0]
    assert (info.mode, info.uid, info.gid, info.uname, info.gname) == (0o600, 1234, 99, 'alice', 'lab')


def test_stream_is_what_tarfile_writes(md, make_files):
    """Byte for byte: tarfile.open(mode='w|') with the same members, then metadata.txt."""
    entries = make_files({'data/a.txt': b'a' * 700, 'data/ü/名前.bin': b'\x01\x02', 'data/' + 'n' * 120: b'',
                          'data/f.dat': b'z' * 10000})
    entries[1]['mtime'] = 1545127200.5
    entries[2]['uname'] = 'someone'
    produced = bundle_bytes(Bundler(md, entries))
    expected = io.BytesIO()
    with tarfile.open(fileobj=expected, mode='w|') as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry['name'])
            info.size, info.mtime = entry['size'], entry['mtime']
            info.uname = entry.get('uname', '')
            with open(entry['path'], 'rb') as handle:
                archive.addfile(info, handle)
        text = metadata_encode(md).encode('utf-8')
        info = tarfile.TarInfo('metadata.txt')
        info.size = len(text)
        archive.addfile(info, io.BytesIO(text))
    assert produced == expected.getvalue()
    assert len(produced) % tarfile.RECORDSIZE == 0


def test_stream_into_a_pipe(md, make_files):
    """The sink is only written to: a pipe, which cannot seek, works."""
    entries = make_files({'data/big.bin': os.urandom(3 * 1024 * 1024 + 17), 'data/s.txt': b'small'})
    read_fd, write_fd = os.pipe()
    received = []
    reader = threading.Thread(target=lambda: received.append(os.fdopen(read_fd, 'rb').read()))
    reader.start()
    with os.fdopen(write_fd, 'wb') as sink:
        Bundler(md, entries).stream(sink)
    reader.join()
    members = read_members(received[0])
    with open(entries[0]['path'], 'rb') as handle:
        assert members[0][1] == handle.read()


def test_unbuffered_sink_taking_part_of_each_write_gets_everything(md, make_files):
    class Trickle:
        """Accepts at most 1000 bytes per write, like a raw socket might."""

        def __init__(self):
            self.data = bytearray()

        def write(self, chunk):
            self.data += bytes(chunk[:1000])
            return min(1000, len(chunk))

    entries = make_files({'data/a': os.urandom(5000)})
    sink = Trickle()
    Bundler(md, entries).stream(sink)
    assert bytes(sink.data) == bundle_bytes(Bundler(valid_metadata(), entries))


def test_helpers_strip_subdir():
    assert Bundler._strip_subdir('data/a/b') == 'a/b'
    assert Bundler._strip_subdir('data') == ''
    assert Bundler._strip_subdir('a/data/b') == 'a/data/b'
    assert Bundler._strip_subdir('data//x/') == 'x'
    assert Bundler._strip_subdir('/data/x') == 'data/x'
    assert Bundler._strip_subdir('') == ''


def test_helper_build_file_info(md):
    bundler = Bundler(md, [])
    info = bundler._build_file_info({'name': 'data/d/e.png', 'size': 3, 'mtime': MTIME}, 'abc')
    assert info == FileObj(destinationTable='Files', name='e.png', subdir='d', size=3, hashtype='sha1',
                           hashsum='abc', mimetype='image/png', ctime='2018-12-18T10:00:00',
                           mtime='2018-12-18T10:00:00')


def test_helper_tarinfo_from_file_data_leaves_the_dict_alone(md, make_files):
    source = io.BytesIO(b'abc')
    entry = {'name': 'data/a', 'size': 3, 'mtime': MTIME, 'fileobj': source, 'mode': 0o640}
    bundler = Bundler(md, [entry])
    info, reader = bundler._tarinfo_from_file_data(entry)
    assert entry == {'name': 'data/a', 'size': 3, 'mtime': MTIME, 'fileobj': source, 'mode': 0o640}
    assert (info.name, info.size, info.mtime, info.mode) == ('data/a', 3, MTIME, 0o640)
    assert reader.read() == b'abc' and reader.hashdigest() == hashlib.sha1(b'abc').hexdigest()
    path_entry = make_files({'data/p': b'xyz'})[0]
    info, reader = bundler._tarinfo_from_file_data(path_entry)
    try:
        assert reader.read() == b'xyz'
    finally:
        reader.close()
    assert 'fileobj' not in path_entry


def test_hash_file_obj_hashes_encodes_and_counts():
    class Progress:
        _done_size = 0

    progress = Progress()
    reader = HashFileObj(io.StringIO('héllo'), hashlib.sha256(), progress)
    assert reader.read(2) == 'hé'.encode('utf-8')
    assert reader.read() == b'llo'
    assert progress._done_size == len('héllo'.encode('utf-8'))
    assert reader.hashdigest() == hashlib.sha256('héllo'.encode('utf-8')).hexdigest()
    shake = HashFileObj(io.BytesIO(b'x'), hashlib.shake_128(), progress)
    shake.read()
    assert shake.hashdigest() == hashlib.shake_128(b'x').hexdigest(32)


def test_save_total_size_sums_declared_sizes(md):
    entries = [{'name': 'data/{}'.format(i), 'size': i, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x' * i)}
               for i in range(5)]
    bundler = Bundler(md, entries)
    bundler._save_total_size()
    assert bundler._total_size == 10


def test_md_obj_and_file_data_are_the_callers(md):
    entries = [{'name': 'data/a', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'a')}]
    bundler = Bundler(md, entries)
    assert bundler.md_obj is md and bundler.file_data is entries


def test_generator_file_data_is_kept_as_a_list(md):
    bundler = Bundler(md, ({'name': 'data/{}'.format(i), 'size': 1, 'mtime': MTIME,
                            'fileobj': io.BytesIO(b'x')} for i in range(3)))
    assert bundler.content_length() == len(bundle_bytes(bundler))
    assert len(bundler.file_data) == 3


def test_bundle_errors_share_a_base():
    from pacifica._client.exceptions import FileChangedError, FileDataError
    assert issubclass(FileChangedError, BundleError) and issubclass(FileDataError, BundleError)
    assert issubclass(FileDataError, ValueError) and issubclass(FileChangedError, OSError)


def test_metadata_of_many_files_is_encoded_in_slices_to_the_same_bytes(md):
    """Beyond one encoding slice (2,048 items) the stitched text is still metadata_encode(md_obj)."""
    entries = [{'name': 'data/d{}/f{}.txt'.format(i % 7, i), 'size': 0, 'mtime': MTIME + i, 'fileobj': io.BytesIO()}
               for i in range(4500)]
    bundler = Bundler(md, entries)
    produced = bundle_bytes(bundler)
    assert read_members(produced)[-1][1] == metadata_encode(md).encode('utf-8')
    assert bundler.content_length() == len(produced)
    assert len(md) == 2 + 4500


def test_metadata_that_cannot_be_encoded_fails_and_leaves_md_obj_alone(md):
    from pacifica._client.exceptions import MetadataEncodeError
    md.append(MetaObj(destinationTable='TransactionKeyValue', key='bad', value=object(), metaID='bad'))
    before = list(md)
    bundler = Bundler(md, [{'name': 'data/a', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'a')}])
    with pytest.raises(MetadataEncodeError, match='item 2'):
        bundle_bytes(bundler)
    assert list(md) == before
