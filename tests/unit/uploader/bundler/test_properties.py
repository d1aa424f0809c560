"""Property tests: exact content_length, packed headers and their lengths equal to tarfile's, cached mime types."""
from __future__ import annotations

import io
import mimetypes
import tarfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacifica.uploader.bundler import Bundler, tarformat
from pacifica.uploader.bundler.bundler import _DEFAULT_MIMETYPE

from tests.helpers.bundles import read_members, valid_metadata

ASCII_NAME = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=100)
ANY_NAME = st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00'), min_size=1,
                   max_size=160)
INT_MTIME = st.integers(min_value=0, max_value=8 ** 11 - 1)
FLOAT_MTIME = st.floats(min_value=0, max_value=8 ** 11 - 2, allow_nan=False, allow_infinity=False)
SIZE = st.integers(min_value=0, max_value=8 ** 11 - 1)


def tarfile_header(name, size, mtime):
    """What tarfile itself writes for the member: the plain reference, built without the bundler's code."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, mtime
    return info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')


@given(name=ASCII_NAME, size=SIZE, mtime=st.one_of(INT_MTIME, FLOAT_MTIME))
@settings(max_examples=400)
def test_the_fast_path_packs_what_tarfile_writes(name, size, mtime):
    packed = tarformat._packed_header(name, size, mtime)
    assert packed is not None, 'the common member takes the fast path'
    assert packed == tarfile_header(name, size, mtime)
    assert tarformat.member_header(name, size, mtime) == packed


@given(name=ANY_NAME, size=st.integers(min_value=0, max_value=8 ** 12),
       mtime=st.one_of(st.integers(min_value=-10 ** 12, max_value=10 ** 12),
                       st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)))
@settings(max_examples=300)
def test_every_header_is_what_tarfile_writes(name, size, mtime):
    """Whichever way the packer takes, the bytes are tarfile's; the fast path declines what it cannot pack."""
    assert tarformat.member_header(name, size, mtime) == tarfile_header(name, size, mtime)
    packed = tarformat._packed_header(name, size, mtime)
    assert packed is None or packed == tarfile_header(name, size, mtime)


@given(name=ANY_NAME, size=st.integers(min_value=0, max_value=8 ** 12),
       mtime=st.one_of(st.integers(min_value=-10 ** 12, max_value=10 ** 12),
                       st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)))
@settings(max_examples=300)
def test_header_length_is_the_length_of_what_tarfile_writes(name, size, mtime):
    """content_length() counts headers without packing them: the count must be tarfile's, fast path or not."""
    assert tarformat.header_length(name, size, mtime) == len(tarfile_header(name, size, mtime))


def test_header_length_with_extra_keys_is_tarfiles():
    info = tarfile.TarInfo('data/a')
    info.size, info.mtime, info.uname = 1, 1.5, 'someone with a long name ' * 3
    assert tarformat.header_length('data/a', 1, 1.5, {'uname': info.uname}) == len(info.tobuf(
        tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape'))


def test_the_fast_path_is_on_and_extra_keys_take_tarfile():
    assert tarformat._FAST, 'the import-time self check passed on this Python'
    for sample in tarformat.SELF_CHECK_SAMPLES:
        assert tarformat._packed_header(*sample) == tarfile_header(*sample)
    info = tarfile.TarInfo('data/a')
    info.size, info.mtime, info.mode, info.uname = 1, 1, 0o600, 'someone'
    assert tarformat.member_header('data/a', 1, 1, {'mode': 0o600, 'uname': 'someone'}) == info.tobuf(
        tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')


def test_end_of_archive_pads_to_a_record():
    for offset in (0, 512, 9216, 9728, 10240, 123 * 512):
        end = offset + tarformat.end_of_archive_length(offset)
        assert end % tarformat.RECORD_SIZE == 0 and end - offset >= 1024


ENTRY = st.fixed_dictionaries(
    {'name': st.one_of(ASCII_NAME.map(lambda text: 'data/' + text), ANY_NAME.map(lambda text: 'data/' + text)),
     'content': st.one_of(st.just(b''), st.binary(max_size=2000)),
     'mtime': st.one_of(st.integers(min_value=0, max_value=4 * 10 ** 9),
                        st.floats(min_value=0, max_value=4e9, allow_nan=False))},
    optional={'mode': st.integers(min_value=0, max_value=0o7777), 'uid': st.integers(min_value=0, max_value=10 ** 9),
              'uname': st.text(max_size=40, alphabet=st.characters(blacklist_categories=('Cs',),
                                                                    blacklist_characters='\x00'))})


@given(entries=st.lists(ENTRY, max_size=8, unique_by=lambda entry: entry['name'].rstrip('/')),
       hashfunc=st.sampled_from(['sha1', 'md5', 'sha512_256', 'shake_128', 'blake2b']))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_content_length_is_the_streamed_length(entries, hashfunc):
    file_data = []
    for entry in entries:
        item = {key: value for key, value in entry.items() if key != 'content'}
        item['name'] = item['name'].rstrip('/') or 'data/x'
        if item['name'] == 'metadata.txt':
            continue
        item['size'] = len(entry['content'])
        item['fileobj'] = io.BytesIO(entry['content'])
        file_data.append(item)
    md = valid_metadata()
    bundler = Bundler(md, file_data, hashfunc=hashfunc)
    expected = bundler.content_length()
    out = io.BytesIO()
    bundler.stream(out)
    assert len(out.getvalue()) == expected
    members = read_members(out.getvalue())
    assert [info.name for info, _ in members] == [item['name'] for item in file_data] + ['metadata.txt']
    assert [data for _, data in members[:-1]] == [entry.getvalue() for entry in
                                                  (item['fileobj'] for item in file_data)]


def test_content_length_reads_no_file(md):
    class Unreadable(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise AssertionError('content_length must not read file contents')

    bundler = Bundler(md, [{'name': 'data/x', 'size': 10 ** 9, 'mtime': 1.5, 'fileobj': Unreadable()}])
    assert bundler.content_length() > 10 ** 9


@given(base=st.text(alphabet=st.sampled_from('ab.-_:/xTGZgzSVtrpnj'), max_size=14),
       extension=st.sampled_from(['', '.txt', '.gz', '.tar.gz', '.tgz', '.svgz', '.Z', '.z', '.bz2', '.PNG',
                                  '.jpeg', '.tar', '.xz', '.br', '.json', '.', '..gz']))
@settings(max_examples=500)
def test_cached_mimetype_equals_guess_type(base, extension):
    """The extension cache never changes what mimetypes.guess_type says, whatever was cached before."""
    bundler = Bundler(valid_metadata(), [])
    for name in ('data/' + base + extension, base + extension, 'x/warm' + extension, 'data/' + base + extension):
        slash = name.rfind('/')
        expected = mimetypes.guess_type(name, strict=True)[0] or _DEFAULT_MIMETYPE
        assert bundler._mimetype(name, name[slash + 1:]) == expected, name
