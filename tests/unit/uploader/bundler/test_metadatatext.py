"""metadata.txt's text: the file-record template writes exactly what metadata_encode writes."""
from __future__ import annotations

import io
import json


from hypothesis import given, settings
from hypothesis import strategies as st

from pacifica.uploader.bundler import Bundler, metadatatext
from pacifica.uploader.metadata import FileObj, MetaData, metadata_encode

from tests.helpers.bundles import MTIME, bundle_bytes, read_members, valid_metadata

#: Names that JSON escapes or that UTF-8 makes long: quotes, backslashes, controls, non-ASCII,
#: astral characters (surrogate pairs in \u escapes), lone surrogates, and the empty string.
TRICKY = ['plain.txt', 'quote"d.txt', 'back\\slash', 'tab\there', 'new\nline', '\x00\x01\x1f\x7f',
          'Zürich café.dat', '日本語.bin', '😀 face.png', 'lone \udc80 surrogate', '', '/', '</script>',
          'a' * 300, '\u2028\u2029', 'ÿ\u0100']


def _file_obj(name: str, subdir: str, size: int = 3) -> FileObj:
    return FileObj('Files', name, None, subdir, size, 'sha1', 'ab' * 20, 'text/plain',
                   '2018-12-18T10:00:00', '2018-12-18T10:00:00')


def _field_chars(infos):
    """What metadata_length counts of the records: each field as json.dumps writes it (sizes as digits)."""
    return sum(len(json.dumps(info.size)) + sum(len(json.dumps(getattr(info, key))) for key in (
        'name', 'subdir', 'hashtype', 'hashsum', 'mimetype', 'ctime', 'mtime')) for info in infos)


def _both_ways(items, infos):
    template = b''.join(metadatatext.metadata_text(items, infos))
    reference = metadata_encode(MetaData(list(items) + list(infos))).encode('utf-8')
    return template, reference


def test_the_template_equals_metadata_encode_for_tricky_names():
    infos = [_file_obj(name, subdir, size) for name in TRICKY for subdir, size in ((name, 0), ('a/' + name, 2 ** 40))]
    template, reference = _both_ways(valid_metadata(), infos)
    assert template == reference


def test_the_template_equals_metadata_encode_across_slices():
    """More records than one slice, with and without caller items, and with none at all."""
    infos = [_file_obj('f{}.bin'.format(number), 'd{}'.format(number % 7)) for number in range(
        2 * metadatatext.SLICE + 5)]
    for items in (valid_metadata(), MetaData([])):
        for count in (0, 1, metadatatext.SLICE, len(infos)):
            template, reference = _both_ways(items, infos[:count])
            assert template == reference, (len(items), count)


@given(name=st.text(), subdir=st.text(), size=st.integers(min_value=0, max_value=2 ** 63))
@settings(max_examples=200)
def test_the_template_equals_metadata_encode_for_any_text(name, subdir, size):
    template, reference = _both_ways(valid_metadata(), [_file_obj(name, subdir, size)])
    assert template == reference


def test_the_bundles_metadata_member_is_metadata_encode_of_md_obj():
    names = ['data/' + name for name in TRICKY if name and '/' not in name and '\x00' not in name]
    entries = [{'name': name, 'size': 1, 'mtime': MTIME, 'fileobj': io.BytesIO(b'x')} for name in names]
    md = valid_metadata()
    members = read_members(bundle_bytes(Bundler(md, entries)))
    text = members[-1][1]
    assert members[-1][0].name == 'metadata.txt'
    assert text == metadata_encode(md).encode('utf-8')
    assert [record['name'] for record in json.loads(text)[len(valid_metadata()):]] == [
        name[len('data/'):] for name in names]


def test_counted_text_is_metadata_text_in_slices():
    """The counted length is the text's, and the pieces are metadata_text's, across several slices."""
    infos = [_file_obj(name, 'd/' + name) for name in TRICKY] * (metadatatext.SLICE // len(TRICKY) + 2)
    for items in (valid_metadata(), MetaData([])):
        for count in (0, 1, len(infos)):
            expected = metadatatext.metadata_text(items, infos[:count])
            size = sum(map(len, expected))
            assert metadatatext.metadata_length(items, count, _field_chars(infos[:count])) == size
            counted, pieces = metadatatext.counted_metadata_text(items, iter(infos[:count]), count,
                                                                 _field_chars(infos[:count]))
            assert counted == size and list(pieces) == expected


def test_a_bundle_of_several_metadata_slices_is_the_same_byte_for_byte_when_streamed_again():
    """More records than one slice: content_length is the bundle's length, and a second stream is the first's."""
    names = ['data/{}/{}'.format(index % 3, name) for index, name in enumerate(TRICKY * 3)
             if name and '/' not in name and '\x00' not in name]
    names = list(dict.fromkeys(names))
    names += ['data/many/{:05d}.bin'.format(index) for index in range(metadatatext.SLICE + 7)]
    entries = [{'name': name, 'size': 2, 'mtime': MTIME, 'fileobj': io.BytesIO(b'ab')} for name in names]
    md = valid_metadata()
    bundler = Bundler(md, entries)
    length = bundler.content_length()
    data = bundle_bytes(bundler)
    first_md = list(md)
    for entry in entries:
        entry['fileobj'].seek(0)
    again = bundle_bytes(bundler)  # a second stream replaces the FileObjs of the first
    assert data == again and length == len(data)
    assert list(md) == first_md
    assert read_members(data)[-1][1] == metadata_encode(md).encode('utf-8')
