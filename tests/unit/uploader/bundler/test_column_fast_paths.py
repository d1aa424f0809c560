"""The column-wise metadata.txt tricks and the per-file call cuts of issue 16 against their plain ways."""
from __future__ import annotations

import io

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from pacifica.uploader.bundler import Bundler, fileinfo, metadatatext, tarformat
from pacifica.uploader.bundler.filerecords import file_objs_chars, records_chars
from pacifica.uploader.bundler.tarwriter import FileResult, TarWriter, _new_result

from tests.helpers.bundles import valid_metadata

ANY_TEXT = st.text(st.characters(blacklist_categories=('Cs',)), max_size=12)


@given(text=st.text(max_size=40))
@settings(max_examples=500)
def test_json_plain_says_when_quoting_changes_nothing(text):
    assert metadatatext.json_plain(text) == (metadatatext.quoted(text) == '"' + text + '"')
    assert metadatatext.quoted_length(text) == len(metadatatext.quoted(text))


def test_json_plain_edges():
    assert metadatatext.json_plain(' ~abc/09') and metadatatext.json_plain('')
    for text in ('"', '\\', '\x7f', '\x1f', '\n', 'é', '\U0001F600'):
        assert not metadatatext.json_plain('a' + text)


@given(plain=st.tuples(*[st.booleans()] * 7))
def test_record_parts_are_the_template_with_quotes_moved(plain):
    values = ['v{}'.format(index) for index in range(7)]
    fields = ['"{}"'.format(value) if flag else metadatatext.quoted(value) for value, flag in zip(values, plain)]
    parts = metadatatext._record_parts(plain)
    filled = [value if flag else field for value, flag, field in zip(values, plain, fields)]
    filled.insert(2, '12')
    text = parts[0] + ''.join(value + part for value, part in zip(filled, parts[1:]))
    expected = ', ' + metadatatext._FILE_RECORD_JSON % tuple(fields[:2] + [12] + fields[2:])
    assert text == expected


@given(names=st.lists(st.tuples(ANY_TEXT, ANY_TEXT).map('/'.join), min_size=1, max_size=8, unique=True),
       sizes=st.lists(st.integers(min_value=0, max_value=2 ** 70), min_size=8, max_size=8),
       mtime=st.floats(min_value=0, max_value=1e10), hexlen=st.sampled_from([32, 40, 64]))
@settings(max_examples=300)
def test_file_objs_chars_is_records_chars(names, sizes, mtime, hexlen):
    """Counted from the FileObjs (columns joined) or from the entries (per file): the same number."""
    bundler = Bundler(valid_metadata(), [])
    entries = [{'name': name, 'size': size, 'mtime': mtime} for name, size in zip(names, sizes)]
    infos = [bundler._file_info(entry['name'], entry['size'], mtime, 'a' * hexlen) for entry in entries]
    assert file_objs_chars(infos) == records_chars(entries, 'sha1', hexlen, bundler._subdir, bundler._mimetype,
                                                   bundler._isotime)


def test_file_objs_chars_across_slices_with_an_int_subclass_size():
    class Size(int):
        def __repr__(self) -> str:
            return 'not digits'
    bundler = Bundler(valid_metadata(), [])
    entries = [{'name': 'd{}/f"{}".bin'.format(number % 3, number), 'size': Size(number * 7), 'mtime': 1.5 * number}
               for number in range(2 * metadatatext.SLICE + 3)]
    infos = [bundler._file_info(entry['name'], entry['size'], entry['mtime'], 'b' * 40) for entry in entries]
    assert file_objs_chars(infos) == records_chars(entries, 'sha1', 40, bundler._subdir, bundler._mimetype,
                                                   bundler._isotime)


@given(fields=st.tuples(st.text(max_size=5), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)))
def test_new_result_is_the_namedtuple_call(fields):
    assert fileinfo._plain_namedtuple(FileResult)
    made = _new_result(fields)
    assert type(made) is FileResult and made == FileResult(*fields) and made.digest == fields[3]


def test_tuple_maker_of_a_class_with_its_own_new_makes_the_plain_call():
    class Odd(FileResult):
        def __new__(cls, *fields):
            return super().__new__(cls, *fields[:3], 'odd')
    assert not fileinfo._plain_namedtuple(Odd)
    assert fileinfo.tuple_maker(Odd)(('a', 1, 2, 'x')).digest == 'odd'


@given(name=st.text(max_size=110), size=st.integers(min_value=0, max_value=8 ** 12),
       mtime=st.one_of(st.integers(min_value=0, max_value=8 ** 12), st.floats(min_value=0, max_value=8 ** 12)))
def test_packed_header_is_member_header_or_none(name, size, mtime):
    packed = tarformat.packed_header(name, size, mtime)
    assert packed is None or packed == tarformat.member_header(name, size, mtime)


def test_a_text_file_object_is_read_the_plain_way_after_a_binary_one_of_the_same_writer():
    """The per-class memory of binary objects never lets a text object into the in-place read."""
    records = [{'name': 'a', 'size': 3, 'mtime': 0, 'fileobj': io.BytesIO(b'abc')},
               {'name': 'b', 'size': 3, 'mtime': 0, 'fileobj': io.StringIO('def')},
               {'name': 'c', 'size': 3, 'mtime': 0, 'fileobj': io.BytesIO(b'ghi')}]
    with TarWriter('sha1', read_ahead=False) as writer:
        results = [item for item in writer.files(records) if isinstance(item, FileResult)]
        assert writer._binary_kinds == {io.BytesIO}
    assert [result.name for result in results] == ['a', 'b', 'c']


@given(rows=st.lists(st.tuples(*[st.one_of(ANY_TEXT, st.integers(), st.none())] * metadatatext.FILE_OBJ_WIDTH),
                     max_size=20))
def test_flat_fields_columns_are_zips_columns(rows):
    """Columns as slices of the flat fields: the columns zip(*rows) gives, in order."""
    flat = metadatatext.flat_fields(rows)
    columns = [flat[position::metadatatext.FILE_OBJ_WIDTH] for position in range(metadatatext.FILE_OBJ_WIDTH)]
    expected = [list(column) for column in zip(*rows)] if rows else [[]] * metadatatext.FILE_OBJ_WIDTH
    assert columns == expected


def test_flat_fields_refuses_records_of_another_width():
    with pytest.raises(ValueError):
        metadatatext.flat_fields([tuple(range(metadatatext.FILE_OBJ_WIDTH)), (1, 2)])


def test_the_flags_found_while_counting_format_the_text_as_finding_them_again():
    """file_objs_chars' json_plain flags per slice: the text with them is the text without, slice by slice."""
    bundler = Bundler(valid_metadata(), [])
    infos = [bundler._file_info('d{}/{}f{}.{}'.format(number % 3, '"é' if number % 5 == 0 else '', number,
                                                      'txt' if number % 2 else 'bin'),
                                number * 7, 1.5 * number, 'c' * 40)
             for number in range(2 * metadatatext.SLICE + 3)]
    plains = []
    chars = file_objs_chars(infos, plains)
    assert chars == file_objs_chars(infos) and len(plains) == 3
    for number, flags in enumerate(plains):
        batch = infos[number * metadatatext.SLICE:(number + 1) * metadatatext.SLICE]
        assert metadatatext._file_records_text(batch, flags) == metadatatext._file_records_text(batch)
    with_flags = b''.join(metadatatext.counted_metadata_text([], infos, len(infos), chars, plains)[1])
    assert with_flags == b''.join(metadatatext.metadata_text([], infos))
