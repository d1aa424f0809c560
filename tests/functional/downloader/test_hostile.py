"""Hostile carts: nothing escapes the target, nothing unsafe is written, nothing partial looks complete."""
from __future__ import annotations

import io
import os
import pathlib
import tarfile
import time

import pytest

from pacifica.downloader import ArchiveError, Downloader, FileMissing, UnsafeArchiveError, VerificationError
from pacifica.downloader.cartapi import CartAPI
from tests.helpers.cartd import build_tar, member, transaction_info

from .conftest import FAST, final_files, tree

#: Every test runs with small part files made here and by the part-file process (conftest).
pytestmark = pytest.mark.usefixtures('part_files')

GOOD = b'good content\n'
FILES = {1: ('sub', 'good.txt', GOOD), 2: ('sub', 'other.txt', b'other\n')}


def cart_tar(*extra, prefix='data', good=True):
    """A cartd-like tar of FILES (optionally) followed by ``extra`` (TarInfo, content) members."""
    members, contents = [member(prefix, tarfile.DIRTYPE), member(prefix + '/sub', tarfile.DIRTYPE)], {}
    if good:
        for _id, (subdir, name, content) in FILES.items():
            path = '{}/{}/{}'.format(prefix, subdir, name)
            members.append(member(path))
            contents[path] = content
    for info, content in extra:
        members.append(info)
        if content is not None:
            contents[info.name] = content
    return build_tar(members, contents)


def snapshot(root):
    """Every path below ``root`` (to prove nothing appeared outside the download)."""
    found = set()
    for base, dirs, names in os.walk(root):
        for name in dirs + names:
            found.add(os.path.relpath(os.path.join(base, name), root))
    return found


def download(cartd, dest, tar_bytes, files=FILES):
    cartd.behaviour.tar_bytes = tar_bytes
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    down.transactioninfo(dest, transaction_info(files))
    return down.paths_written


HOSTILE = {
    'traversal': (member('data/../escaped.txt'), b'x'),
    'deep traversal': (member('data/sub/../../../escaped.txt'), b'x'),
    'absolute': (member('/tmp/escaped-absolute.txt'), b'x'),
    'symlink out': (member('data/sub/link', tarfile.SYMTYPE, linkname='/etc/passwd'), None),
    'symlink in': (member('data/sub/link', tarfile.SYMTYPE, linkname='good.txt'), None),
    'hardlink out': (member('data/sub/hard', tarfile.LNKTYPE, linkname='/etc/passwd'), None),
    'hardlink in': (member('data/sub/hard', tarfile.LNKTYPE, linkname='data/sub/good.txt'), None),
    'char device': (member('data/sub/dev', tarfile.CHRTYPE), None),
    'block device': (member('data/sub/blk', tarfile.BLKTYPE), None),
    'fifo': (member('data/sub/fifo', tarfile.FIFOTYPE), None),
    'duplicate': (member('data/sub/good.txt'), GOOD),
    'unrequested file': (member('data/sub/extra.txt'), b'x'),
    'unrequested directory': (member('data/elsewhere', tarfile.DIRTYPE), None),
    'other top directory': (member('evil/x.txt'), b'x'),
    'file as download dir': (member('data'), b'x'),
}


@pytest.mark.parametrize('case', sorted(HOSTILE))
def test_hostile_member_is_refused(cartd, tmp_path, case):
    dest = str(tmp_path / 'dest')
    before = snapshot(str(tmp_path))
    info, content = HOSTILE[case]
    with pytest.raises(UnsafeArchiveError) as caught:
        download(cartd, dest, cart_tar((info, content)))
    assert isinstance(caught.value, AssertionError)
    assert info.name in str(caught.value) and caught.value.member.rstrip('/') == info.name
    after = snapshot(str(tmp_path))
    outside = {path for path in after - before if not path.startswith('dest') and not path.startswith('cartd')}
    assert outside == set()
    assert final_files(dest) == {}  # the good files were not promoted, their parts removed or parked hidden
    assert not os.path.exists('/tmp/escaped-absolute.txt')


def test_a_second_copy_of_a_member_is_refused_as_such(cartd, tmp_path):
    """With the record's list and without one (0.4's ``_download_from_url``): 'appears twice', not another reason."""
    twice = cart_tar((member('data/sub/good.txt'), GOOD))
    with pytest.raises(UnsafeArchiveError, match="'data/sub/good.txt' appears twice"):
        download(cartd, str(tmp_path / 'listed'), twice)
    api = CartAPI(cartd.url, config=FAST)
    cart_url = api.wait_for_cart(api.setup_cart(lambda: iter(
        [{'id': 1, 'path': 'sub/good.txt', 'hashtype': 'sha1', 'hashsum': 'x'}])))
    cartd.behaviour.tar_bytes = twice
    with pytest.raises(UnsafeArchiveError, match="'data/sub/good.txt' appears twice"):
        Downloader(cart_api_url=cartd.url, config=FAST)._download_from_url(str(tmp_path / 'unlisted'), cart_url,
                                                                          'data')
    assert final_files(str(tmp_path / 'listed')) == {} and final_files(str(tmp_path / 'unlisted')) == {}


def test_files_not_delivered_are_listed_in_the_record_order(cartd, dest):
    """Every requested file the cart lacks is one FileMissing, in the record's order, after the delivered ones."""
    files = {3: ('sub', 'c.txt', b'c'), 1: ('sub', 'good.txt', GOOD), 2: ('sub', 'other.txt', b'other\n'),
             4: ('sub', 'a.txt', b'a')}
    with pytest.raises(VerificationError) as caught:
        download(cartd, dest, cart_tar(), files=files)
    problems = caught.value.problems
    assert [problem.path for problem in problems] == ['sub/c.txt', 'sub/a.txt']
    assert all(type(problem) is FileMissing for problem in problems)


@pytest.mark.parametrize('case', ['symlink out', 'hardlink out', 'traversal', 'absolute'])
def test_hostile_member_first_writes_nothing(cartd, tmp_path, case):
    info, content = HOSTILE[case]
    dest = str(tmp_path / 'dest')
    with pytest.raises(UnsafeArchiveError):
        download(cartd, dest, build_tar([info], {info.name: content} if content else {}))
    assert snapshot(dest) <= {'data'}


def test_member_bigger_than_declared(cartd, dest):
    """Reported with the other problems (see test_verification.py); none of it is kept."""
    info = member('data/sub/good.txt')
    tar = build_tar([info, member('data/sub/other.txt')], {'data/sub/good.txt': GOOD * 1000,
                                                            'data/sub/other.txt': b'other\n'})
    with pytest.raises(VerificationError, match='expected 13 bytes, the cart holds 13000'):
        download(cartd, dest, tar)
    assert final_files(dest) == {}
    assert not [path for path in tree(dest) if 'good.txt' in path]


def test_truncated_inside_member(cartd, dest):
    tar = cart_tar()
    cut = tar.index(GOOD) + 5
    cartd.behaviour.truncate_at = cut
    with pytest.raises(ArchiveError, match='ended early') as caught:
        download(cartd, dest, tar)
    assert 'data/sub/good.txt' in str(caught.value)
    assert final_files(dest) == {}


def test_truncated_chunked_stream(cartd, dest):
    """A chunked reply that stops mid-body (connection closed) is an ArchiveError, not success."""
    tar = cart_tar()

    def truncated_chunked(handler):
        handler.wfile.write(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')
        body = tar[:1500]
        handler.wfile.write(b'%x\r\n%s\r\n' % (len(tar), body))
        handler.wfile.flush()
    from tests.helpers.server import Raw
    cartd.server.route('GET', '*', lambda request: Raw(truncated_chunked))
    with pytest.raises(ArchiveError):
        download(cartd, dest, tar)
    assert final_files(dest) == {}


def test_truncated_at_member_boundary_without_end_marker(cartd, dest):
    tar = cart_tar()
    end = len(tar.rstrip(b'\0'))
    end += -end % 512
    cartd.behaviour.close_delimited = True
    with pytest.raises(ArchiveError, match='end-of-archive'):
        download(cartd, dest, tar[:end])
    assert final_files(dest) == {}


def test_garbage_instead_of_tar(cartd, dest):
    with pytest.raises(ArchiveError, match='checksum'):
        download(cartd, dest, b'<html>proxy error page</html>' + bytes(1024))


def test_empty_body(cartd, dest):
    with pytest.raises(ArchiveError):
        download(cartd, dest, b'')


def test_huge_pax_header_refused(cartd, dest):
    info = member('data/sub/good.txt')
    info.pax_headers = {'comment': 'x' * (2 * 1024 * 1024)}
    with pytest.raises(ArchiveError, match='too large'):
        download(cartd, dest, build_tar([info], {'data/sub/good.txt': GOOD}))


def test_existing_symlinked_directory_is_not_followed(cartd, tmp_path):
    dest = tmp_path / 'dest'
    outside = tmp_path / 'outside'
    outside.mkdir()
    (dest / 'data').mkdir(parents=True)
    os.symlink(str(outside), str(dest / 'data' / 'sub'))
    with pytest.raises(UnsafeArchiveError, match='symbolic link'):
        download(cartd, str(dest), cart_tar())
    assert list(outside.iterdir()) == []


def test_existing_symlinked_download_dir_is_not_followed(cartd, tmp_path):
    dest = tmp_path / 'dest'
    outside = tmp_path / 'outside'
    outside.mkdir()
    dest.mkdir()
    os.symlink(str(outside), str(dest / 'data'))
    with pytest.raises(UnsafeArchiveError):
        download(cartd, str(dest), cart_tar())
    assert list(outside.iterdir()) == []


def plant_symlink(tmp_path, name):
    """dest/data/sub/<name> -> a precious file outside; returns (dest, precious)."""
    dest = tmp_path / 'dest'
    (dest / 'data' / 'sub').mkdir(parents=True)
    precious = tmp_path / 'precious'
    precious.write_bytes(b'keep')
    os.symlink(str(precious), str(dest / 'data' / 'sub' / name))
    return str(dest), precious


def test_existing_symlink_at_final_name_is_refused(cartd, tmp_path):
    dest, precious = plant_symlink(tmp_path, 'good.txt')
    with pytest.raises(UnsafeArchiveError):
        download(cartd, dest, cart_tar())
    assert precious.read_bytes() == b'keep'


def test_stale_part_symlink_is_not_followed(cartd, tmp_path):
    """A planted '.good.txt.pacifica-part' symlink (where parts were written before) must not redirect writes.

    Files are written below the cart's own new stage, so the link is neither followed nor touched.
    """
    dest, precious = plant_symlink(tmp_path, '.good.txt.pacifica-part')
    download(cartd, dest, cart_tar())
    assert precious.read_bytes() == b'keep'
    assert os.path.islink(os.path.join(dest, 'data', 'sub', '.good.txt.pacifica-part'))
    assert tree(dest) == {'data/sub/good.txt': GOOD, 'data/sub/other.txt': b'other\n',
                          'data/sub/.good.txt.pacifica-part': b'keep'}


def test_gnu_and_ustar_formats_and_long_names_are_read(cartd, dest):
    long_dir = '/'.join(['d' * 60] * 4)
    files = {1: (long_dir, 'n' * 120 + '.txt', b'long'), 2: ('', 'short', b's')}
    for tar_format in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        contents = {'data/{}/{}'.format(subdir, name).replace('//', '/'): content
                    for subdir, name, content in files.values()}
        members = [member(name) for name in contents]
        paths = download(cartd, dest + str(tar_format), build_tar(members, contents, tar_format), files)
        assert [pathlib.Path(path).read_bytes() for path in paths] == [b'long', b's']


def test_old_style_directory_entry_is_a_directory(cartd, dest):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.USTAR_FORMAT) as tar:
        info = member('data/sub/', tarfile.AREGTYPE)
        tar.addfile(info)
        for _id, (subdir, name, content) in FILES.items():
            tar.addfile(member('data/{}/{}'.format(subdir, name), size=len(content)), io.BytesIO(content))
    download(cartd, dest, buf.getvalue())
    assert tree(dest) == {'data/sub/good.txt': GOOD, 'data/sub/other.txt': b'other\n'}


def test_big_file_whose_writes_were_dropped_is_not_parked_as_verified(cartd, dest, monkeypatch):
    """A big file hashes fine, but a bad member ends the download before its bytes reach the disk.

    Its hash matched on the extracting thread while the writer thread still
    held its writes; those are dropped by the abort. The part must be
    deleted, not kept as ``.pacifica-verified`` for the next call to reuse.
    """
    from pacifica.downloader import _partwriter

    real_write = _partwriter._PartFile.write

    def stalled_write(part, piece):
        time.sleep(0.2)  # the writer thread is still busy when the bad member arrives
        real_write(part, piece)

    monkeypatch.setattr(_partwriter._PartFile, 'write', stalled_write)
    big = os.urandom(3 << 20)
    files = {1: ('sub', 'big.bin', big)}
    members = [member('data', tarfile.DIRTYPE), member('data/sub', tarfile.DIRTYPE), member('data/sub/big.bin'),
               member('data/sub/unrequested.txt')]
    tar_bytes = build_tar(members, {'data/sub/big.bin': big, 'data/sub/unrequested.txt': b'x'})
    with pytest.raises(UnsafeArchiveError, match='not requested'):
        download(cartd, dest, tar_bytes, files)
    left = tree(dest)
    assert all(content == big for content in left.values()), 'a parked file does not hold the verified bytes'
    assert not [name for name in left if name.endswith('.pacifica-part')]
