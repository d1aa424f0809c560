"""The per-file fast paths of fileobj bundles against their plain ways: FileObjs, PAX headers, rewinding."""
from __future__ import annotations

import datetime
import hashlib
import io
import mimetypes
import tarfile

from hypothesis import given, settings
from hypothesis import strategies as st

from pacifica.uploader.bundler import Bundler, fileinfo as bundler_module, tarformat
from pacifica.uploader.bundler.bundler import _DEFAULT_MIMETYPE
from pacifica.uploader.metadata import FileObj

from tests.helpers.bundles import MTIME, valid_metadata
from tests.unit.uploader.bundler.test_tarwriter import _write

ARC_PATH = st.builds(
    lambda stem, extension: stem + extension,
    st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00'), min_size=1, max_size=30),
    st.sampled_from(['', '.txt', '.gz', '.tar.gz', '.tgz', '.PNG', '.bin', '.', '..gz', '.json'])).filter(
        lambda name: not name.endswith('/'))
MTIME_VALUE = st.one_of(st.integers(min_value=-62135596800, max_value=253402300799),
                        st.floats(min_value=-62135596800, max_value=253402300799, allow_nan=False))
FIELD = st.one_of(st.none(), st.text(max_size=8), st.integers())


def _plain_file_info(arc_path, size, mtime, hashsum, hashtype='sha1'):
    """The FileObj of one file built field by field with the standard library, no cache, no fast construction."""
    directory, _, base = arc_path.rpartition('/')
    parts = directory.split('/')
    if parts[0] == 'data':
        del parts[0]
    iso = (datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=int(mtime))).isoformat()
    return FileObj(destinationTable='Files', name=base, source=None, subdir='/'.join(part for part in parts if part),
                   size=size, hashtype=hashtype, hashsum=hashsum,
                   mimetype=mimetypes.guess_type(arc_path, strict=True)[0] or _DEFAULT_MIMETYPE,
                   ctime=iso, mtime=iso)


@given(fields=st.tuples(*[FIELD] * 10))
def test_new_file_obj_is_the_namedtuple_call(fields):
    assert bundler_module._plain_namedtuple(FileObj), 'the fast construction is on for this package\'s FileObj'
    made = bundler_module.new_file_obj(fields)
    assert type(made) is FileObj
    assert made == FileObj(*fields) and made._asdict() == FileObj(*fields)._asdict()


@given(names=st.lists(ARC_PATH, min_size=1, max_size=6), mtimes=st.lists(MTIME_VALUE, min_size=1, max_size=6))
@settings(max_examples=300)
def test_file_info_with_warm_caches_is_the_plain_file_obj(names, mtimes):
    """Every FileObj equals the plain one, whatever the caches held before (each name twice, times mixed)."""
    bundler = Bundler(valid_metadata(), [])
    for round_ in range(2):
        for index, name in enumerate(names):
            mtime = mtimes[(index + round_) % len(mtimes)]
            info = bundler._file_info(name, index, mtime, 'ab' * 20)
            assert type(info) is FileObj
            assert info == _plain_file_info(name, index, mtime, 'ab' * 20), name


def test_file_info_of_an_int_and_a_float_of_the_same_second():
    """The ISO-time cache is keyed by int(mtime): a float of the same second finds the same text."""
    bundler = Bundler(valid_metadata(), [])
    first = bundler._file_info('data/a/b.txt', 1, MTIME, 'x')
    second = bundler._file_info('data/a/c.txt', 1, MTIME + 0.75, 'x')
    assert first.mtime == second.mtime == _plain_file_info('data/a/b.txt', 1, MTIME, 'x').mtime


@given(mtime=st.floats(min_value=0, max_value=8 ** 11 - 2, allow_nan=False))
@settings(max_examples=300)
def test_pax_header_is_tarfiles_extended_header(mtime):
    """The PAX header around the mtime text (its parts made per text length) is tarfile's, all of it."""
    info = tarfile.TarInfo('x')
    info.mtime = mtime
    full = info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')
    assert tarformat._packed_header('x', 0, mtime)[:-tarformat.BLOCK_SIZE] == full[:-tarformat.BLOCK_SIZE]
    assert tarformat._packed_header('x', 0, mtime) == full


def test_pax_header_of_both_zeros_and_every_text_length():
    """-0.0 and 0.0 are equal but print differently; text lengths from 3 to 24 characters."""
    for mtime in (-0.0, 0.0, 5e-324, 1e-05, 0.1, 123.456, 1600000000.0, 1700000000.123456, 8589934590.999999):
        info = tarfile.TarInfo('x')
        info.mtime = mtime
        assert tarformat.member_header('x', 0, mtime) == info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')


class _NoSeek:
    """A binary file object with readinto and no seek methods at all."""

    def __init__(self, data):
        self._source = io.BytesIO(data)

    def read(self, size=-1):
        return self._source.read(size)

    def readinto(self, buffer):
        return self._source.readinto(buffer)


class _SeekableRaises(_NoSeek):
    """seekable() itself fails with AttributeError: read once, as one without seeking."""

    def seekable(self):
        raise AttributeError('no seeking here')


def _records(kind):
    """Three records of file objects made by ``kind`` (bytes -> file object)."""
    return [{'name': 'data/n{}'.format(size), 'size': size, 'mtime': MTIME + 0.5,
             'fileobj': kind((bytes(range(256)) * 5)[:size])} for size in (0, 1, 1024)]


def test_objects_without_seeking_are_read_once_as_the_plain_way_reads_them():
    """In place (1 MiB buffer) and the plain way (a buffer too small) write what BytesIO objects write."""
    reference = _write(_records(io.BytesIO), chunk_size=1 << 20)
    for kind in (_NoSeek, _SeekableRaises):
        assert _write(_records(kind), chunk_size=1 << 20) == reference
        assert _write(_records(kind), chunk_size=512) == reference


def test_a_seekable_object_streams_twice_from_where_it_was_found():
    data = b'0123456789'
    fileobj = io.BytesIO(data)
    fileobj.seek(3)
    bundler = Bundler(valid_metadata(), [{'name': 'data/x', 'size': 7, 'mtime': MTIME + 0.5, 'fileobj': fileobj}])
    first, second = io.BytesIO(), io.BytesIO()
    bundler.stream(first)
    bundler.stream(second)
    assert first.getvalue() == second.getvalue()
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as archive:
        assert archive.extractfile('data/x').read() == data[3:]


@given(mtimes=st.lists(st.one_of(st.sampled_from([0.0, -0.0, 0.5, 1600000000.0]),
                                 st.floats(min_value=-0.0, max_value=8 ** 11 - 2, allow_nan=False)), max_size=8))
def test_the_last_pax_header_kept_never_serves_another_mtime(mtimes):
    """Each float mtime twice in a row and the list in any order: every header is tarfile's."""
    for mtime in mtimes + mtimes[::-1]:
        for _ in range(2):
            info = tarfile.TarInfo('d/x')
            info.size, info.mtime = 3, mtime
            assert tarformat.member_header('d/x', 3, mtime) == info.tobuf(tarfile.PAX_FORMAT, 'utf-8',
                                                                          'surrogateescape'), mtime


def test_in_place_digests_of_every_kind_of_hash_are_the_plain_ones():
    """hexdigest() straight for fixed-size hashes, the SHAKE lengths of the contract for the others."""
    data = b'pacifica' * 100
    expected = {'sha1': hashlib.sha1(data).hexdigest(), 'md5': hashlib.md5(data).hexdigest(),
                'blake2b': hashlib.blake2b(data).hexdigest(), 'shake_128': hashlib.shake_128(data).hexdigest(32),
                'shake_256': hashlib.shake_256(data).hexdigest(64)}
    for hash_name, digest in expected.items():
        for chunk_size in (1 << 20, 512):  # in place, and the plain way
            records = [{'name': 'data/x', 'size': len(data), 'mtime': MTIME + 0.5, 'fileobj': io.BytesIO(data)}]
            _, results = _write(records, chunk_size=chunk_size, hash_name=hash_name)
            assert [result.digest for result in results] == [digest], (hash_name, chunk_size)
