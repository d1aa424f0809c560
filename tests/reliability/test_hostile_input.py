"""Hostile and broken input: each answered by a clear exception naming the problem.

Nothing is touched outside the target directory and no file is left under
its final name after a failure. Overlaps the unit suites on purpose: this is
the adversarial view, with real sockets and real files.
"""
from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import threading
import time
from typing import Any, Dict, List

import pytest

from pacifica._client.exceptions import (
    ArchiveError, FileChangedError, FileDataError, MetadataDecodeError, PacificaError, RecordError,
    UnsafeArchiveError, VerificationError,
)
from pacifica.downloader import CloudEvent, Downloader, TransactionInfo
from pacifica.uploader import Uploader
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.metadata import metadata_decode
from tests.helpers.cartd import CartServer, build_tar, cloud_event, member, sha1, transaction_info
from tests.helpers.ingestd import IngestServer, check_bundle
from tests.helpers.server import LoopbackServer
from tests.reliability import stands as st
from tests.reliability.conftest import FAST

pytestmark = pytest.mark.timeout(60)


# =========================================================================== metadata_decode
@pytest.mark.parametrize('text,says', [
    ('', 'JSON'), ('nope', 'JSON'), ('{', 'JSON'), (b'\xff\xfe\x00', 'JSON'), ('[{"a": 1},]', 'JSON'),
    ('{}', 'list'), ('"x"', 'list'), ('1', 'list'), ('null', 'list'), ('NaN', 'list'), ('true', 'list'),
    ('[1]', 'item 0'), ('[[]]', 'item 0'), ('[null]', 'item 0'), ('[{"destinationTable": "x"}, "s"]', 'item 1'),
    ('[{"destinationTable": "Files", "bogus": 1}]', 'bogus'), ('[{"nope": 1}]', 'nope'),
    ('[{"destinationTable": "Files", "name": "a", "__class__": 1}]', '__class__'),
])
def test_metadata_decode_names_the_problem(text, says):
    with pytest.raises(MetadataDecodeError) as info:
        metadata_decode(text)
    assert says in str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize('value', [None, 12, 1.5, ['[]'], {'a': 1}, object()])
def test_metadata_decode_refuses_what_is_not_text(value):
    with pytest.raises(MetadataDecodeError):
        metadata_decode(value)


def test_metadata_decode_of_deep_nesting_is_a_decode_error():
    """'[[[[...' 100,000 deep makes json raise RecursionError, which must not escape."""
    with pytest.raises(MetadataDecodeError):
        metadata_decode('[' * 100_000 + ']' * 100_000)


def test_metadata_decode_of_a_very_large_document_is_exact_and_quick():
    items = [{'destinationTable': 'Files', 'name': 'f{}'.format(i), 'subdir': 'a/b', 'size': i,
              'hashtype': 'sha1', 'hashsum': '0' * 40} for i in range(100_000)]
    items.append({'destinationTable': 'Transactions.submitter', 'value': 'x' * 5_000_000})
    text = json.dumps(items)
    start = time.monotonic()
    decoded = metadata_decode(text)
    assert time.monotonic() - start < 10
    assert len(decoded) == 100_001 and decoded[99_999].size == 99_999 and len(decoded[-1].value) == 5_000_000


# =========================================================================== file_data
def _bundle(file_data, out=None):
    out = out if out is not None else io.BytesIO()
    Bundler(st.metadata(), file_data).stream(out)
    return out


GOOD = {'name': 'data/a.txt', 'size': 5, 'mtime': 1_600_000_000}


@pytest.mark.parametrize('entry,says', [
    ({'size': 5, 'mtime': 1, 'fileobj': io.BytesIO(b'12345')}, "'name'"),
    ({'name': 'data/a', 'mtime': 1, 'fileobj': io.BytesIO(b'12345')}, "'size'"),
    ({'name': 'data/a', 'size': 5, 'fileobj': io.BytesIO(b'12345')}, "'mtime'"),
    ({'name': 'data/a', 'size': 5, 'mtime': 1}, "'fileobj' or 'path'"),
    (dict(GOOD, size=-1, fileobj=io.BytesIO(b'')), "'size'"),
    (dict(GOOD, size='5', fileobj=io.BytesIO(b'12345')), "'size'"),
    (dict(GOOD, size=5.0, fileobj=io.BytesIO(b'12345')), "'size'"),
    (dict(GOOD, size=True, fileobj=io.BytesIO(b'1')), "'size'"),
    (dict(GOOD, mtime=float('nan'), fileobj=io.BytesIO(b'12345')), "'mtime'"),
    (dict(GOOD, mtime=1e300, fileobj=io.BytesIO(b'12345')), "'mtime'"),
    (dict(GOOD, fileobj='not a file'), "'fileobj'"),
    (dict(GOOD, name='', fileobj=io.BytesIO(b'12345')), "'name'"),
    (dict(GOOD, name='metadata.txt', fileobj=io.BytesIO(b'12345')), 'metadata'),
    (dict(GOOD, name='data/x\x00y', fileobj=io.BytesIO(b'12345')), 'NUL'),
    (dict(GOOD, bogus_key=1, fileobj=io.BytesIO(b'12345')), 'bogus_key'),
    (dict(GOOD, type=tarfile.SYMTYPE, fileobj=io.BytesIO(b'12345')), "'type'"),
    (dict(GOOD, pax_headers={'path': '../../etc/passwd'}, fileobj=io.BytesIO(b'12345')), 'pax_headers'),
    (dict(GOOD, pax_headers={'size': '1'}, fileobj=io.BytesIO(b'12345')), 'pax_headers'),
    ('data/a.txt', 'dict'),
])
def test_bad_file_data_entry_is_named(entry, says):
    with pytest.raises(FileDataError) as info:
        Bundler(st.metadata(), [entry])
    assert says in str(info.value) and 'file_data[0]' in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)


def test_every_bad_entry_is_reported_at_once():
    entries = [dict(GOOD, name='data/z', size=-1, fileobj=io.BytesIO()),
               dict(GOOD, name='data/b', mtime=None, fileobj=io.BytesIO()),
               dict(GOOD, name='data/a.txt', fileobj=io.BytesIO(b'12345'))]
    with pytest.raises(FileDataError) as info:
        Bundler(st.metadata(), entries)
    text = str(info.value)
    assert 'file_data[0]' in text and 'file_data[1]' in text and 'file_data[2]' not in text
    entries.append(dict(GOOD, fileobj=io.BytesIO(b'12345')))  # a duplicate name of entry 2
    with pytest.raises(FileDataError, match='twice'):
        Bundler(st.metadata(), entries)


@pytest.mark.parametrize('content,declared,says', [
    (b'1234', 5, 'shrank'), (b'123456', 5, 'grew'), (b'', 1, 'shrank'), (b'x' * 3_000_000, 2_999_999, 'grew'),
])
def test_fileobj_of_the_wrong_length_never_yields_a_lying_tar(content, declared, says):
    out = io.BytesIO()
    with pytest.raises(FileChangedError, match=says):
        _bundle([{'name': 'data/a.txt', 'size': declared, 'mtime': 1, 'fileobj': io.BytesIO(content)}], out)
    assert check_bundle(out.getvalue()), 'what was written must not pass for a complete bundle'


class _GrowingFile(io.RawIOBase):
    """A file that gains bytes while it is being read (a log being appended to)."""

    def __init__(self, size):
        self.left, self.extra = size, 10

    def readable(self):
        return True

    def readinto(self, buf):
        if self.left == 0 and self.extra:
            count, self.extra = min(len(buf), self.extra), 0
        else:
            count = min(len(buf), self.left)
            self.left -= count
        buf[:count] = b'g' * count
        return count


def test_a_file_growing_while_read_raises():
    with pytest.raises(FileChangedError, match='grew'):
        _bundle([{'name': 'data/log', 'size': 100_000, 'mtime': 1, 'fileobj': _GrowingFile(100_000)}])


@pytest.mark.parametrize('change', ['shrink', 'grow', 'vanish', 'empty'])
@pytest.mark.parametrize('size', [10, 3_000_000], ids=['small', 'large'])
def test_path_that_changes_after_it_was_listed_raises(tmp_path, change, size):
    path = tmp_path / 'f.bin'
    path.write_bytes(b'a' * size)
    bundler = Bundler(st.metadata(), [{'name': 'data/f.bin', 'size': size, 'mtime': 1, 'path': str(path)}])
    if change == 'shrink':
        path.write_bytes(b'a' * (size - 3))
    elif change == 'grow':
        path.write_bytes(b'a' * (size + 3))
    elif change == 'vanish':
        path.unlink()
    else:
        path.write_bytes(b'')
    out = io.BytesIO()
    with pytest.raises(FileChangedError) as info:
        bundler.stream(out)
    assert 'data/f.bin' in str(info.value)
    assert check_bundle(out.getvalue())


def _dangling(tmp_path):
    link = tmp_path / 'dangling'
    link.symlink_to(tmp_path / 'nowhere')
    return link


def _loop(tmp_path):
    link = tmp_path / 'loop'
    link.symlink_to(link)
    return link


def _through_a_file(tmp_path):
    (tmp_path / 'plain').write_bytes(b'x')
    return tmp_path / 'plain' / 'child'


@pytest.mark.parametrize('make,says', [
    (lambda tmp: tmp, 'directory'),
    (lambda tmp: tmp / 'does-not-exist', 'does not exist'),
    (_dangling, 'does not exist'),
    (_loop, 'cannot be examined'),
    (_through_a_file, 'cannot be examined'),
    (lambda tmp: (os.mkfifo(tmp / 'fifo'), tmp / 'fifo')[1], 'not a regular file'),
    (lambda tmp: '/dev/null', 'not a regular file'),
])
def test_unusable_path_is_refused_up_front(tmp_path, make, says):
    """Root can read any file by mode, so unreadability comes from paths whose open fails or would block."""
    path = make(tmp_path)
    with pytest.raises(FileDataError) as info:
        Bundler(st.metadata(), [{'name': 'data/x', 'size': 0, 'mtime': 1, 'path': str(path)}])
    assert says in str(info.value) and str(path) in str(info.value)


def _run_with_limit(func, seconds):
    """Run ``func`` in a thread; return its exception, or fail if it is still running after ``seconds``."""
    outcome: Dict[str, Any] = {}

    def target():
        try:
            func()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome['error'] = err
        else:
            outcome['error'] = None
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return thread.is_alive(), outcome.get('error')


@pytest.mark.parametrize('size', [10, 3_000_000], ids=['small', 'large'])
def test_a_file_replaced_by_a_fifo_after_listing_does_not_hang(tmp_path, size):
    """A FIFO with no writer blocks open(2) for ever: the bundler must not open it blindly."""
    path = tmp_path / 'f.bin'
    path.write_bytes(b'a' * size)
    bundler = Bundler(st.metadata(), [{'name': 'data/f.bin', 'size': size, 'mtime': 1, 'path': str(path)}])
    path.unlink()
    os.mkfifo(path)
    try:
        hung, error = _run_with_limit(lambda: bundler.stream(io.BytesIO()), 3)
        assert not hung, 'Bundler.stream() blocked opening a FIFO that replaced a listed file'
        assert isinstance(error, FileChangedError)
    finally:
        try:  # a blocked open(2) for reading returns once a writer appears: release the thread
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # nobody was blocked on it


def test_an_upload_of_a_changed_file_never_leaves_a_complete_job(tmp_path):
    """The bundle fails mid-stream: ingest must not get a complete body, so no job can succeed."""
    server = LoopbackServer()
    try:
        ingest = IngestServer(server)
        path = tmp_path / 'f.bin'
        path.write_bytes(b'a' * 3_000_000)
        bundler = Bundler(st.metadata(), [{'name': 'data/f.bin', 'size': 3_000_000, 'mtime': 1, 'path': str(path)}])
        path.write_bytes(b'a' * 2_000_000)
        uploader = Uploader(upload_url=ingest.url + '/upload', status_url=ingest.url + '/get_state', config=FAST)
        with pytest.raises(FileChangedError):
            uploader.upload_bundle(bundler)
        time.sleep(0.2)
        assert not any(job.ok for job in ingest.jobs.values())
    finally:
        server.close()


def test_bundling_touches_no_file(tmp_path):
    path = tmp_path / 'f.bin'
    path.write_bytes(b'abc')
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in tmp_path.rglob('*')}
    _bundle([{'name': 'data/f.bin', 'size': 3, 'mtime': 1, 'path': str(path)}])
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in tmp_path.rglob('*')} == before


# =========================================================================== carts
CONTENT = b'hello cart\n'
FILES = {7: ('raw', 'a.txt', CONTENT)}


@pytest.fixture
def cart(tmp_path):
    server = LoopbackServer()
    cartd = CartServer(server, tmp_path / 'cartd')
    cartd.add_file(7, CONTENT)
    try:
        yield cartd
    finally:
        server.close()


def _outside_files(tmp_path, location):
    """Every path under tmp_path that is not the download location, the cartd workdir or a bait file."""
    found = []
    for root, dirs, files in os.walk(tmp_path):
        if root.startswith((str(location), str(tmp_path / 'cartd'))):
            continue
        found += [os.path.join(root, name) for name in files + dirs if name not in ('cartd', 'dl', 'bait')]
    return found


def _final_files(location):
    """Regular files under their final (not hidden) names in the download."""
    found = []
    for root, _, files in os.walk(location):
        found += [os.path.join(root, name) for name in files if not name.startswith('.')]
    return found


def _hostile(name, kind=tarfile.REGTYPE, linkname='', data=None):
    info = member(name, kind, linkname)
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, data


def _tar(*entries):
    infos, contents = [], {}
    for info, data in entries:
        infos.append(info)
        if data is not None:
            contents[info.name] = data
    return build_tar(infos, contents)


OK = ('data/raw/a.txt', tarfile.REGTYPE, '', CONTENT)
HOSTILE_CARTS = {
    'traversal': (_tar(_hostile('data/../../evil.txt', data=b'evil')), UnsafeArchiveError),
    'traversal-inside': (_tar(_hostile('data/raw/../../../evil.txt', data=b'evil')), UnsafeArchiveError),
    'absolute': (lambda tmp: _tar(_hostile(str(tmp / 'evil.txt'), data=b'evil')), UnsafeArchiveError),
    'symlink-file': (_tar(_hostile('data/raw/a.txt', tarfile.SYMTYPE, '/etc/passwd')), UnsafeArchiveError),
    'symlink-dir-then-file': (lambda tmp: _tar(_hostile('data/raw', tarfile.SYMTYPE, str(tmp)),
                                               _hostile('data/raw/a.txt', data=CONTENT)), UnsafeArchiveError),
    'hardlink': (_tar(_hostile('data/raw/a.txt', tarfile.LNKTYPE, '/etc/passwd')), UnsafeArchiveError),
    'hardlink-relative': (_tar(_hostile('data/raw/b.txt', data=CONTENT),
                               _hostile('data/raw/a.txt', tarfile.LNKTYPE, 'data/raw/b.txt')), UnsafeArchiveError),
    'char-device': (_tar(_hostile('data/raw/a.txt', tarfile.CHRTYPE)), UnsafeArchiveError),
    'block-device': (_tar(_hostile('data/raw/a.txt', tarfile.BLKTYPE)), UnsafeArchiveError),
    'fifo': (_tar(_hostile('data/raw/a.txt', tarfile.FIFOTYPE)), UnsafeArchiveError),
    'duplicate': (_tar(_hostile(*OK[:3], data=CONTENT), _hostile('data/raw/a.txt', data=b'second')),
                  UnsafeArchiveError),
    'unrequested': (_tar(_hostile(*OK[:3], data=CONTENT), _hostile('data/raw/extra.txt', data=b'x')),
                    UnsafeArchiveError),
    'bigger-than-declared': (_tar(_hostile('data/raw/a.txt', data=CONTENT + b'more')), (UnsafeArchiveError,
                                                                                       VerificationError)),
    'wrong-content': (_tar(_hostile('data/raw/a.txt', data=b'HELLO CART\n')), VerificationError),
    'missing-file': (_tar(_hostile('data/raw/other.txt', data=b'x')), (UnsafeArchiveError, VerificationError)),
    'empty-tar': (_tar(), VerificationError),
    'not-a-tar': (b'<html>cartd is down</html>' * 40, ArchiveError),
    'zeros-only': (bytes(10240), VerificationError),
}


def _pax_traversal():
    info = member('data/raw/a.txt')
    info.pax_headers = {'path': '../../evil.txt'}
    return build_tar([info], {'data/raw/a.txt': b'evil'})


def _gnu_longname_traversal():
    return build_tar([member('data/' + '../' * 60 + 'evil.txt')], {'data/' + '../' * 60 + 'evil.txt': b'evil'},
                     tar_format=tarfile.GNU_FORMAT)


HOSTILE_CARTS['pax-path-traversal'] = (_pax_traversal(), UnsafeArchiveError)
HOSTILE_CARTS['gnu-longname-traversal'] = (_gnu_longname_traversal(), UnsafeArchiveError)


BIG = CONTENT * 200  # 2200 bytes: header at 0, data at 512, padding from 2712, end blocks from 3072
#: A cut in the end blocks too: every file arrived, but the stream did not end as a tar must; strict is safe.
TRUNCATIONS = {'in-header': 300, 'in-data': 512 + 1000, 'in-padding': 512 + len(BIG) + 5, 'in-end-blocks': 3072 + 100}


@pytest.mark.parametrize('case', sorted(HOSTILE_CARTS))
def test_hostile_cart_is_refused_and_nothing_escapes(cart, tmp_path, case):
    tar_bytes, expected = HOSTILE_CARTS[case]
    cart.behaviour.tar_bytes = tar_bytes(tmp_path) if callable(tar_bytes) else tar_bytes
    location = tmp_path / 'dl'
    (tmp_path / 'bait').mkdir()
    with pytest.raises(expected) as info:
        Downloader(cart_api_url=cart.url, config=FAST).transactioninfo(str(location), transaction_info(FILES),
                                                                       timeout=5)
    assert isinstance(info.value, (PacificaError, AssertionError))
    assert _outside_files(tmp_path, location) == []
    assert not (tmp_path / 'evil.txt').exists() and not (tmp_path / 'bait' / 'a.txt').exists()
    assert _final_files(location) == [], 'a file sits under its final name after a failed download'
    if isinstance(info.value, UnsafeArchiveError):
        assert info.value.member, 'the refused member is named'


@pytest.mark.parametrize('where,cut', sorted(TRUNCATIONS.items()))
def test_truncated_cart_stream_is_an_archive_error(cart, tmp_path, where, cut):
    cart.behaviour.tar_bytes = _tar(_hostile('data/raw/a.txt', data=BIG))
    cart.behaviour.truncate_at = cut
    location = tmp_path / 'dl'
    files = {7: ('raw', 'a.txt', BIG)}
    with pytest.raises(ArchiveError):
        Downloader(cart_api_url=cart.url, config=FAST).transactioninfo(str(location), transaction_info(files),
                                                                       timeout=5)
    assert _final_files(location) == []


def test_a_symlink_planted_in_the_target_is_not_followed(cart, tmp_path):
    location = tmp_path / 'dl'
    (location / 'data').mkdir(parents=True)
    (tmp_path / 'bait').mkdir()
    os.symlink(tmp_path / 'bait', location / 'data' / 'raw')
    with pytest.raises(UnsafeArchiveError):
        Downloader(cart_api_url=cart.url, config=FAST).transactioninfo(str(location), transaction_info(FILES),
                                                                       timeout=5)
    assert list((tmp_path / 'bait').iterdir()) == []


# =========================================================================== records
def _te(**changes):
    record = transaction_info(FILES)
    record['files']['7'].update(changes)
    for key, value in changes.items():
        if value is _DROP:
            del record['files']['7'][key]
    return record


_DROP = object()


def _ce(**changes):
    event = cloud_event(FILES)
    item = event['data'][1]
    item.update(changes)
    for key, value in changes.items():
        if value is _DROP:
            del item[key]
    return event


BAD_TRANSINFOS = {
    'not-a-dict': (['files'], 'transaction info'),
    'no-files': ({'transaction': {}}, "'files'"),
    'files-a-list': ({'files': [1, 2]}, "'files'"),
    'file-not-object': ({'files': {'7': 'a.txt'}}, 'object'),
    'no-name': (_te(name=_DROP), "'name'"),
    'no-hashsum': (_te(hashsum=_DROP), "'hashsum'"),
    'no-hashtype': (_te(hashtype=_DROP), "'hashtype'"),
    'name-int': (_te(name=5), "'name'"),
    'subdir-none': (_te(subdir=None), "'subdir'"),
    'hashsum-int': (_te(hashsum=123), "'hashsum'"),
    'hashtype-unknown': (_te(hashtype='md17'), 'md17'),
    'size-negative': (_te(size=-1), "'size'"),
    'size-text': (_te(size='10'), "'size'"),
    'name-traversal': (_te(name='../../etc/passwd'), '..'),
    'subdir-traversal': (_te(subdir='../..'), '..'),
    'name-nul': (_te(name='a\x00b'), 'unsafe'),
    'name-empty': (_te(name=''), "'name'"),
}
BAD_EVENTS = {
    'not-a-dict': ('event', 'cloud event'),
    'no-data': ({'eventID': 1}, "'data'"),
    'data-a-dict': ({'data': {'a': 1}}, "'data'"),
    'item-not-object': ({'data': ['x']}, 'data[0]'),
    'no-id': (_ce(_id=_DROP), "'_id'"),
    'no-name': (_ce(name=_DROP), "'name'"),
    'hashsum-list': (_ce(hashsum=['a']), "'hashsum'"),
    'id-float': (_ce(_id=1.5), 'id'),
    'subdir-traversal': (_ce(subdir='a/../../..'), '..'),
}


@pytest.mark.parametrize('case', sorted(BAD_TRANSINFOS))
def test_bad_transaction_info_is_a_record_error_before_any_cart(cart, tmp_path, case):
    record, says = BAD_TRANSINFOS[case]
    with pytest.raises(RecordError) as info:
        TransactionInfo.yield_files(record)
    assert says in str(info.value)
    with pytest.raises(RecordError):
        Downloader(cart_api_url=cart.url, config=FAST).transactioninfo(str(tmp_path / 'dl'), record)
    assert cart.carts == {} and not (tmp_path / 'dl' / 'data').exists()


@pytest.mark.parametrize('case', sorted(BAD_EVENTS))
def test_bad_cloud_event_is_a_record_error_before_any_cart(cart, tmp_path, case):
    event, says = BAD_EVENTS[case]
    with pytest.raises(RecordError) as info:
        CloudEvent.yield_files(event)
    assert says in str(info.value)
    with pytest.raises(RecordError):
        Downloader(cart_api_url=cart.url, config=FAST).cloudevent(str(tmp_path / 'dl'), event)
    assert cart.carts == {}


def test_two_records_for_one_path_are_refused(cart, tmp_path):
    record = transaction_info({7: ('raw', 'a.txt', CONTENT), 8: ('raw', 'a.txt', b'other')})
    with pytest.raises(RecordError, match='both go to'):
        Downloader(cart_api_url=cart.url, config=FAST).transactioninfo(str(tmp_path / 'dl'), record)
    assert cart.carts == {}


def test_good_records_still_download(cart, tmp_path):
    """The control: the same stand-in and records, unharmed, give verified files."""
    downloader = Downloader(cart_api_url=cart.url, config=FAST)
    downloader.transactioninfo(str(tmp_path / 'dl'), transaction_info(FILES), timeout=5)
    paths: List[str] = downloader.paths_written
    assert [open(p, 'rb').read() for p in paths] == [CONTENT]
    assert sha1(CONTENT) == transaction_info(FILES)['files']['7']['hashsum']
    assert stat.S_ISREG(os.lstat(paths[0]).st_mode)
