"""Bundler(..., append_file_objs=False): only the digests are kept; the bundle is the default flow's, byte for byte."""
from __future__ import annotations

import io
import warnings

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacifica._client.exceptions import BundleError, MetadataEncodeError, UsageError
from pacifica.uploader.bundler import Bundler, metadatatext
from pacifica.uploader.bundler.filerecords import DigestList, exactly, records_chars
from pacifica.uploader.metadata import MetaData, MetaObj, metadata_encode

from tests.helpers.bundles import MTIME, bundle_bytes, read_members, valid_metadata

#: Any text a name may hold (no NUL, no lone surrogate: a tar name must encode), slashes and dots often.
NAME_TEXT = st.text(st.one_of(st.sampled_from('/./data.gz.tgzTXTé"\\\t\u2028😀'),
                              st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00')),
                    min_size=1, max_size=40)
ENTRY = st.fixed_dictionaries(
    {'name': st.one_of(NAME_TEXT, NAME_TEXT.map(lambda text: 'data/' + text)),
     'content': st.binary(max_size=700),
     'mtime': st.one_of(st.integers(min_value=0, max_value=4 * 10 ** 9),
                        st.floats(min_value=0, max_value=4e9, allow_nan=False))},
    optional={'mode': st.integers(min_value=0, max_value=0o7777)})
#: The least a Bundler takes: one item with a value.
ONE_ITEM = MetaObj(destinationTable='Transactions._id', value=1)
HASHES = st.sampled_from(['sha1', 'md5', 'sha256', 'shake_128', 'blake2b'])


def _file_data(entries):
    """Fresh file objects each time: the two flows must read the same bytes."""
    file_data = []
    for entry in entries:
        item = {key: value for key, value in entry.items() if key != 'content'}
        item['size'] = len(entry['content'])
        item['fileobj'] = io.BytesIO(entry['content'])
        file_data.append(item)
    return file_data


def _both_flows(entries, items, hashfunc='sha1'):
    """(bytes, content_length, md_obj after, bundler) of the default flow, then of the digest flow."""
    runs = []
    for append in (True, False):
        md_obj = MetaData(list(items))
        bundler = Bundler(md_obj, _file_data(entries), hashfunc=hashfunc, append_file_objs=append)
        length = bundler.content_length()
        runs.append((bundle_bytes(bundler), length, md_obj, bundler))
    return runs


def _usable(entries):
    names = set()
    kept = []
    for entry in entries:
        name = entry['name'].rstrip('/')
        if name in ('', 'metadata.txt') or name in names:
            continue
        names.add(name)
        kept.append(dict(entry, name=name))
    return kept


@given(entries=st.lists(ENTRY, max_size=8), hashfunc=HASHES, caller_items=st.booleans())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_digest_flow_writes_the_default_flows_bytes(entries, hashfunc, caller_items):
    entries = _usable(entries)
    items = list(valid_metadata()) if caller_items else [ONE_ITEM]
    (default, default_length, default_md, default_bundler), (digest, digest_length, digest_md, bundler) = \
        _both_flows(entries, items, hashfunc)
    assert digest == default
    assert digest_length == default_length == len(default)
    assert list(digest_md) == items, 'md_obj is left as the caller made it'
    assert list(bundler.file_objs()) == list(default_md)[len(items):] == list(default_bundler.file_objs())
    assert read_members(digest)[-1][1] == metadata_encode(default_md).encode('utf-8')


def test_many_files_in_changing_folders_across_slices():
    """More records than two slices of metadata.txt, folders that come back, names JSON escapes."""
    names = ['data/{}/f{}{}'.format(('a', 'b/"q"', 'a', 'é', '')[index % 5], index, ('.txt', '.gz', '', '.PNG')[
        index % 4]) for index in range(2 * metadatatext.SLICE + 3)]
    entries = [{'name': name.replace('//', '/'), 'content': b'x' * (index % 3), 'mtime': MTIME + index % 7 + 0.5}
               for index, name in enumerate(names)]
    for items in (list(valid_metadata()), [ONE_ITEM]):
        (default, length, default_md, _), (digest, digest_length, digest_md, bundler) = _both_flows(entries, items)
        assert digest == default and digest_length == length == len(default)
        assert list(digest_md) == items and len(default_md) == len(items) + len(entries)
        assert list(bundler.file_objs()) == list(default_md)[len(items):]


def test_streaming_twice_gives_the_same_bytes_and_keeps_md_obj_alone(md):
    entries = [{'name': 'data/a.txt', 'size': 2, 'mtime': MTIME, 'fileobj': io.BytesIO(b'ab')},
               {'name': 'data/b/c.bin', 'size': 0, 'mtime': MTIME, 'fileobj': io.BytesIO()}]
    before = list(md)
    bundler = Bundler(md, entries, append_file_objs=False)
    first = bundle_bytes(bundler)
    assert bundle_bytes(bundler) == first and list(md) == before
    assert [info.hashsum for info in bundler.file_objs()] == ['da23614e02469a0d7c7bd1bdab5c9c474b1904dc',
                                                             'da39a3ee5e6b4b0d3255bfef95601890afd80709']


def test_file_objs_before_a_stream(md):
    entries = [{'name': 'data/a', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'a')}]
    with pytest.raises(UsageError, match='digests'):
        Bundler(md, entries, append_file_objs=False).file_objs()
    assert list(Bundler(md, entries).file_objs()) == []


def test_the_keyword_is_known(md):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        Bundler(md, [], append_file_objs=False)


def test_metadata_that_cannot_be_encoded_fails_before_metadata_txt(md):
    md.append(MetaObj(destinationTable='TransactionKeyValue', key='bad', value=object(), metaID='bad'))
    before = list(md)
    bundler = Bundler(md, [{'name': 'data/a', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'a')}],
                      append_file_objs=False)
    with pytest.raises(MetadataEncodeError, match='item 2'):
        bundle_bytes(bundler)
    assert list(md) == before


def test_progress_reaches_one_in_the_digest_flow(md):
    seen = []
    bundler = Bundler(md, [{'name': 'data/a', 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'a')}],
                      append_file_objs=False)
    bundle_bytes(bundler, callback=seen.append, sleeptime=float('inf'))
    assert seen == [1.0]


@given(names=st.lists(NAME_TEXT, max_size=6),
       sizes=st.lists(st.integers(min_value=0, max_value=2 ** 70), min_size=6, max_size=6),
       mtime=st.one_of(st.integers(min_value=-10 ** 10, max_value=10 ** 10),
                       st.floats(min_value=-1e10, max_value=1e10)),
       hexlen=st.sampled_from([32, 40, 64, 128]))
@settings(max_examples=300)
def test_the_counted_length_is_the_length_of_the_text(names, sizes, mtime, hexlen):
    """records_chars with metadata_length against the text itself, for names no archive would take too."""
    bundler = Bundler(valid_metadata(), [])
    entries = [{'name': name, 'size': size, 'mtime': mtime} for name, size in zip(names, sizes)]
    infos = [bundler._file_info(entry['name'], entry['size'], mtime, 'f' * hexlen) for entry in entries]
    chars = records_chars(entries, 'sha1', hexlen, bundler._subdir, bundler._mimetype, bundler._isotime)
    for items in (valid_metadata(), MetaData([])):
        text = b''.join(metadatatext.metadata_text(items, infos))
        assert metadatatext.metadata_length(items, len(entries), chars) == len(text)


def test_digest_list_keeps_what_it_was_given():
    digests = DigestList(3, 20)
    sums = ['00' * 20, 'ff' * 20, '0123456789abcdef0123456789abcdef01234567']
    for hexsum in sums:
        digests.append(hexsum)
    assert list(digests) == sums and len(digests) == 3
    with pytest.raises(ValueError):
        digests.append('ab' * 20)  # no room for a fourth
    with pytest.raises(ValueError):
        DigestList(1, 20).append('ab' * 16)  # another length
    assert list(DigestList(0, 20)) == []


@pytest.mark.parametrize('pieces, size', [([b'ab', b'c'], 4), ([b'ab', b'cd'], 3)])
def test_a_text_of_another_length_than_announced_stops_the_bundle(pieces, size):
    taken = []
    with pytest.raises(BundleError, match='not the {}'.format(size)):
        for piece in exactly(pieces, size, 'metadata.txt'):
            taken.append(piece)
    assert sum(map(len, taken)) <= size
    assert list(exactly(pieces, sum(map(len, pieces)), 'metadata.txt')) == pieces
