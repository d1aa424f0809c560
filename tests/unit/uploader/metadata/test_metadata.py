"""MetaData, MetaObj, FileObj, their JSON text, and the mjson helpers (contract section 6)."""
from __future__ import annotations

import copy
import json
import pathlib
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pacifica.uploader import (
    MetadataDecodeError, MetadataEncodeError, PacificaError, UnknownMetaIDError,
)
from pacifica.uploader.metadata import metadata as metadata_module
from pacifica.uploader.metadata.metadata import (
    FILE_KEYS, META_KEYS, FileObj, FileObjEncoder, MetaData, MetaDataDecoder, MetaDataEncoder, MetaObj,
    MetaObjDecoder, MetaObjEncoder, file_or_meta_obj, metadata_decode, metadata_encode,
)
from pacifica.uploader.metadata.mjson import generate_namedtuple_decoder, generate_namedtuple_encoder, strip_obj
from tests.unit.uploader.metadata.encoding_corpus import build_corpus

EXPECTED_0_3_1 = json.loads(
    (pathlib.Path(__file__).parent / 'data' / 'metadata_0.3.1.json').read_text(encoding='ascii'))


def meta(meta_id, **fields):
    return MetaObj(destinationTable='Transactions.{}'.format(meta_id), metaID=meta_id, **fields)


def sample():
    return MetaData([meta('a', value=1), meta('b', value=2), FileObj(destinationTable='Files', name='f'),
                     meta('c', value=3), meta('d', value=4)])


def assert_index_right(md):
    """Every metaID lookup finds the last item carrying it, and unknown ones fail."""
    expected = {}
    for item in list.__iter__(md):
        if getattr(item, 'metaID', None):
            expected[item.metaID] = item
    for meta_id, item in expected.items():
        assert md[meta_id] is item
    for gone in {'a', 'b', 'c', 'd', 'x', 'y'} - set(expected):
        with pytest.raises(IndexError):
            md[gone]  # noqa: B018


# -- the records ---------------------------------------------------------------
def test_field_orders_and_defaults():
    assert MetaObj._fields == tuple(META_KEYS) == (
        'sourceTable', 'destinationTable', 'metaID', 'displayType', 'displayTitle', 'queryDependency',
        'valueField', 'queryFields', 'displayFormat', 'key', 'value', 'directoryOrder', 'query_results')
    assert FileObj._fields == tuple(FILE_KEYS) == (
        'destinationTable', 'name', 'source', 'subdir', 'size', 'hashtype', 'hashsum', 'mimetype', 'ctime',
        'mtime')
    assert MetaObj() == (None,) * 13 and FileObj() == (None,) * 10
    assert isinstance(MetaObj(), metadata_module._MetaObj) and isinstance(FileObj(), metadata_module._FileObj)
    assert repr(FileObj(name='x')).startswith("FileObj(destinationTable=None, name='x'")


def test_record_bases_are_plain_namedtuples_as_in_0_3_1():
    """Typed declarations are for mypy only: tools that read __annotations__ see 0.3.1's classes."""
    from pacifica.uploader.metadata.policyquery import _PolicyQueryData
    for base, name in ((metadata_module._MetaObj, 'MetaObj'), (metadata_module._FileObj, 'FileObj'),
                       (_PolicyQueryData, 'PolicyQueryData')):
        assert base.__name__ == base.__qualname__ == name
        assert base.__bases__ == (tuple,) and '__annotations__' not in vars(base)
        assert base.__module__ == base.__dict__['__module__'] and base.__module__.startswith('pacifica.uploader.')
        assert set(base._field_defaults) == set(base._fields) and set(base._field_defaults.values()) == {None}


def test_file_or_meta_obj():
    assert type(file_or_meta_obj(destinationTable='Files', name='a')) is FileObj
    assert type(file_or_meta_obj(destinationTable='Transactions', value=1)) is MetaObj
    assert type(file_or_meta_obj()) is MetaObj


# -- indexing -------------------------------------------------------------------
def test_int_and_metaid_keys():
    md = sample()
    assert md[0].metaID == 'a' and md[-1].metaID == 'd' and md['c'].value == 3
    with pytest.raises(UnknownMetaIDError) as info:
        md['nope']  # noqa: B018
    assert isinstance(info.value, IndexError) and "'nope'" in str(info.value)


def test_assign_by_metaid_needs_a_metaid():
    md = sample()
    md['b'] = md['b']._replace(value='new')
    assert md[1].value == 'new' and md['b'].value == 'new'
    with pytest.raises(IndexError) as info:
        md['b'] = FileObj(destinationTable='Files', name='x')
    assert 'has no metaID' in str(info.value)
    with pytest.raises(IndexError):
        md['unknown'] = meta('unknown')
    md['b'] = meta('renamed')
    assert md[1].metaID == 'renamed' and md['renamed'] is md[1]
    assert_index_right(md)


def test_assign_by_int_moves_the_index():
    md = sample()
    md[0] = meta('z')
    md[-1] = FileObj(destinationTable='Files')
    assert md['z'] is md[0]
    assert_index_right(md)


@pytest.mark.parametrize('change', [
    lambda md: md.__delitem__(0),
    lambda md: md.__delitem__(-2),
    lambda md: md.__delitem__('b'),
    lambda md: md.__delitem__(slice(0, 2)),
    lambda md: md.pop(),
    lambda md: md.pop(0),
    lambda md: md.pop(-3),
    lambda md: md.pop('b'),
    lambda md: md.remove(md['a']),
    lambda md: md.insert(0, meta('x')),
    lambda md: md.insert(-1, meta('y')),
    lambda md: md.append(meta('x')),
    lambda md: md.extend([meta('x'), meta('y')]),
    lambda md: md.__iadd__([meta('x')]),
    lambda md: md.__setitem__(slice(1, 3), [meta('x')]),
    lambda md: md.__setitem__(slice(None, None, -1), list(md)),
    lambda md: md.reverse(),
    lambda md: md.sort(key=lambda item: str(getattr(item, 'metaID', ''))[::-1]),
    lambda md: md.clear(),
    lambda md: md.__imul__(2),
    lambda md: md.append(meta('a', value='duplicate')),
], ids=['del0', 'del-2', 'del-metaid', 'del-slice', 'pop', 'pop0', 'pop-3', 'pop-metaid', 'remove', 'insert0',
        'insert-1', 'append', 'extend', 'iadd', 'set-slice', 'set-reversed-slice', 'reverse', 'sort', 'clear',
        'imul', 'duplicate'])
def test_every_change_keeps_the_index_right(change):
    md = sample()
    md['a']  # noqa: B018 - build the index before the change
    change(md)
    assert_index_right(md)


def test_upstream_defect_del_then_lookup():
    """0.3.1 left stale positions after del/pop/remove: md['d'] returned the wrong item or raised."""
    md = sample()
    del md[0]
    assert md['d'].value == 4
    md.pop(1)
    assert md['c'].value == 3
    md.remove(md['b'])
    assert md['d'].value == 4 and len(md) == 2


def test_slice_is_metadata():
    part = sample()[3:]
    assert isinstance(part, MetaData) and part['d'].value == 4
    with pytest.raises(IndexError):
        part['a']  # noqa: B018


def test_is_valid():
    assert not MetaData().is_valid()
    assert not MetaData([FileObj(destinationTable='Files')]).is_valid()
    assert MetaData([meta('a', value='x'), FileObj(destinationTable='Files')]).is_valid()
    for falsy in (0, '', None, [], False):
        assert not MetaData([meta('a', value='x'), meta('b', value=falsy)]).is_valid()


def test_copies_keep_separate_indexes():
    md = sample()
    md['a']  # noqa: B018
    for clone in (copy.copy(md), copy.deepcopy(md), pickle.loads(pickle.dumps(md))):
        assert clone == md and type(clone) is MetaData
        clone.insert(0, meta('new'))
        assert_index_right(clone)
        assert_index_right(md)
        with pytest.raises(IndexError):
            md['new']  # noqa: B018


# -- encoding -------------------------------------------------------------------
def test_exact_contract_text():
    assert metadata_encode(MetaData([MetaObj(destinationTable='blarg')])) == '[{"destinationTable": "blarg"}]'
    assert metadata_encode(MetaData()) == '[]'
    text = metadata_encode(MetaData([FileObj(destinationTable='Files', name='ä.txt', size=3, subdir=''),
                                     MetaObj(value=0, key='')]))
    assert text == '[{"destinationTable": "Files", "name": "\\u00e4.txt", "subdir": "", "size": 3}, ' \
                   '{"key": "", "value": 0}]'


@pytest.mark.parametrize('name,md_obj', build_corpus(MetaData, MetaObj, FileObj), ids=lambda value: (
    value if isinstance(value, str) else ''))
def test_byte_identical_to_0_3_1(name, md_obj):
    expected = EXPECTED_0_3_1[name]
    if 'error' in expected:
        with pytest.raises(TypeError) as info:
            metadata_encode(md_obj)
        assert isinstance(info.value, MetadataEncodeError) and str(info.value)
    else:
        assert metadata_encode(md_obj) == expected['text']
        assert json.dumps(md_obj, cls=MetaDataEncoder) == expected['text']


@pytest.mark.parametrize('bad,words', [
    ([MetaObj(destinationTable='x')], 'needs a MetaData, not a list'),
    (MetaData([meta('a'), {'destinationTable': 'x'}]), 'item 1: dict has no destinationTable'),
    (MetaData([FileObj(destinationTable='Other')]), "item 0: destinationTable 'Other' needs a MetaObj"),
    (MetaData([MetaObj(destinationTable='Files')]), "destinationTable 'Files' needs a FileObj"),
    (MetaData([meta('a'), meta('b', value={1})]), "item 1 (metaID 'b'): Object of type set"),
])
def test_encode_errors_name_the_item(bad, words):
    with pytest.raises(MetadataEncodeError) as info:
        metadata_encode(bad)
    assert words in str(info.value) and isinstance(info.value, TypeError)


# -- decoding -------------------------------------------------------------------
def test_decode_types_and_values():
    md = metadata_decode('[{"destinationTable": "Files", "name": "a", "size": 1}, '
                         '{"destinationTable": "Transactions.submitter", "metaID": "logon", "value": 10}]')
    assert type(md) is MetaData and type(md[0]) is FileObj and type(md[1]) is MetaObj
    assert md[0] == FileObj(destinationTable='Files', name='a', size=1) and md['logon'].value == 10
    assert metadata_decode(b'[{"value": "\\u00e4"}]') == MetaData([MetaObj(value='ä')])
    assert json.loads('[]', cls=MetaDataDecoder) == MetaData()


@pytest.mark.parametrize('text,words', [
    ('not json', 'not valid JSON'),
    ('{"destinationTable": "x"}', 'must be a JSON list of objects, not a JSON object'),
    ('[{"value": 1}, 5]', 'item 1: expected a JSON object, got a JSON number'),
    ('[{"value": 1}, {"value": 2, "bogus": 3}]', "item 1: unknown key(s) 'bogus' for a MetaObj"),
    ('[{"destinationTable": "Files", "metaID": "x"}]', "item 0: unknown key(s) 'metaID' for a FileObj"),
    (b'\xff\xfe\x00', 'not valid JSON'),
])
def test_decode_errors_name_the_problem(text, words):
    with pytest.raises(MetadataDecodeError) as info:
        metadata_decode(text)
    assert words in str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    assert isinstance(info.value, PacificaError)


def test_decode_rejects_non_text():
    with pytest.raises(TypeError):
        metadata_decode(None)


# -- property: decode(encode(x)) == x, and the text is 0.3.1's --------------------
_SCALARS = st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=False), st.booleans())
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)
_MAYBE = st.one_of(st.none(), _VALUES)
_META_OBJS = st.builds(
    MetaObj, destinationTable=st.one_of(st.none(), st.text(max_size=12).filter(lambda text: text != 'Files')),
    metaID=st.one_of(st.none(), st.text(max_size=8)),
    **{field: _MAYBE for field in META_KEYS if field not in ('destinationTable', 'metaID')})
_FILE_OBJS = st.builds(FileObj, destinationTable=st.just('Files'),
                       **{field: _MAYBE for field in FILE_KEYS if field != 'destinationTable'})
_METADATA = st.lists(st.one_of(_META_OBJS, _FILE_OBJS), max_size=6).map(MetaData)


@settings(max_examples=150, deadline=None)
@given(_METADATA)
def test_round_trip(md_obj):
    text = metadata_encode(md_obj)
    assert metadata_decode(text) == md_obj
    assert metadata_decode(text.encode('utf-8')) == md_obj


_ANY_KEYS = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(
        st.one_of(st.text(max_size=3), st.integers(-2, 2), st.booleans(), st.none()), inner, max_size=4)),
    max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.builds(MetaObj, destinationTable=st.just('x'), value=_ANY_KEYS, queryDependency=_ANY_KEYS),
                max_size=4).map(MetaData))
def test_text_matches_the_item_by_item_round_trip_of_0_3_1(md_obj):
    """0.3.1 wrote each item, parsed it back and wrote the list: same bytes for non-str and colliding keys."""
    oracle = json.dumps([json.loads(json.dumps({key: value for key, value in item._asdict().items()
                                                if value is not None})) for item in md_obj])
    assert metadata_encode(md_obj) == oracle


# -- mjson ----------------------------------------------------------------------
def test_strip_obj_in_place():
    obj = {'a': None, 'b': 0, 'c': '', 'd': None, 'e': False}
    assert strip_obj(obj) is None and obj == {'b': 0, 'c': '', 'e': False}


def test_generated_encoders_and_decoders():
    assert issubclass(MetaObjEncoder, json.JSONEncoder) and issubclass(MetaObjDecoder, json.JSONDecoder)
    assert json.dumps(MetaObj(value='ü'), cls=MetaObjEncoder) == '{"value": "\\u00fc"}'
    assert FileObjEncoder().encode(FileObj(destinationTable='Files')) == '{"destinationTable": "Files"}'
    with pytest.raises(TypeError):
        MetaObjEncoder().encode(FileObj(destinationTable='Files'))
    assert json.loads('{"destinationTable": "Files"}', cls=MetaObjDecoder) == FileObj(destinationTable='Files')
    with pytest.raises(TypeError):
        json.loads('[1]', cls=MetaObjDecoder)

    def uppercase(obj):
        obj['VALUE'] = obj.pop('value')

    encoder = generate_namedtuple_encoder(MetaObj, uppercase)
    assert json.loads(encoder().encode(MetaObj(value=1)))['VALUE'] == 1
    decoder = generate_namedtuple_decoder(lambda **fields: sorted(fields))
    assert decoder().decode('{"b": 1, "a": 2}') == ['a', 'b']
