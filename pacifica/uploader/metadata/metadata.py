"""The metadata of an upload: a list of MetaObj and FileObj records, and its JSON form.

:class:`MetaData` is a list that can also be indexed by ``metaID``.
:func:`metadata_encode` writes the exact text pacifica-uploader 0.3.1 writes
(ingest stores it as ``metadata.txt``), in one pass over the items: a data set
holds 100,000+ :class:`FileObj` records.
"""
from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, NamedTuple, Optional, SupportsIndex, Union

from pacifica._client.exceptions import MetadataDecodeError, MetadataEncodeError, UnknownMetaIDError

from .mjson import generate_namedtuple_decoder, generate_namedtuple_encoder, plain_namedtuple


# Field declarations for type checkers (values are any JSON-able object, hence
# Any); at run time the classes are plain namedtuples, as in 0.3.1.
class _MetaObj(NamedTuple):
    """The fields of :class:`MetaObj`, in 0.3.1's order, each None by default."""

    sourceTable: Any = None
    destinationTable: Any = None
    metaID: Any = None
    displayType: Any = None
    displayTitle: Any = None
    queryDependency: Any = None
    valueField: Any = None
    queryFields: Any = None
    displayFormat: Any = None
    key: Any = None
    value: Any = None
    directoryOrder: Any = None
    query_results: Any = None


class _FileObj(NamedTuple):
    """The fields of :class:`FileObj`, in 0.3.1's order, each None by default."""

    destinationTable: Any = None
    name: Any = None
    source: Any = None
    subdir: Any = None
    size: Any = None
    hashtype: Any = None
    hashsum: Any = None
    mimetype: Any = None
    ctime: Any = None
    mtime: Any = None


if not TYPE_CHECKING:
    _MetaObj = plain_namedtuple(_MetaObj, 'MetaObj', __name__)
    _FileObj = plain_namedtuple(_FileObj, 'FileObj', __name__)
#: The field names in order, as 0.3.1 exported them.
META_KEYS = list(_MetaObj._fields)
FILE_KEYS = list(_FileObj._fields)

#: The destinationTable value that marks a file record.
FILES_TABLE = 'Files'


class MetaObj(_MetaObj):
    """One metadata element of an upload (a user, project, instrument, key/value, ...).

    Every field defaults to None; None fields are left out of the JSON text.
    """


class FileObj(_FileObj):
    """One file of an upload; ``destinationTable`` is ``'Files'``.

    The fields are those of the Files table of Pacifica Metadata; the bundler
    appends one per file to the upload's MetaData.
    """


class MetaData(list):
    """A list of MetaObj and FileObj items that also answers to ``md['<metaID>']``.

    Integer keys and slices behave as for a list. Any other key is a
    ``metaID``: reading, assigning, deleting and popping by it use the last
    item carrying that ``metaID``; an unknown one raises UnknownMetaIDError
    (an IndexError). The metaID index survives every list operation because
    it is rebuilt, when next needed, after any change that may move items;
    ``append`` and ``extend`` keep it current directly, so adding 100,000
    files costs no rebuild.
    """

    #: metaID -> position, or None when it must be rebuilt before use.
    _meta_index: Optional[Dict[Any, int]] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Build the list like ``list(...)``; the metaID index is built on first use."""
        super().__init__(*args, **kwargs)
        self._meta_index = None

    # -- the metaID index -------------------------------------------------
    def _index(self) -> Dict[Any, int]:
        index = self._meta_index
        if index is None:
            index = {}
            for position, item in enumerate(self):
                meta_id = getattr(item, 'metaID', None)
                if meta_id:
                    index[meta_id] = position
            self._meta_index = index
        return index

    def _position(self, meta_id: Any) -> int:
        """Return the position of the item whose metaID is ``meta_id``."""
        try:
            return self._index()[meta_id]
        except KeyError:
            raise UnknownMetaIDError('no item with metaID {!r}'.format(meta_id)) from None

    def _index_moved(self) -> None:
        """Forget the index after a change that may have moved items."""
        self._meta_index = None

    def _index_added(self, start: int) -> None:
        """Record the metaIDs of the items from ``start`` on, just added at the end."""
        index = self._meta_index
        if index is None:
            return
        for position in range(start, len(self)):
            meta_id = getattr(list.__getitem__(self, position), 'metaID', None)
            if meta_id:
                index[meta_id] = position

    # -- reading ----------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        """Return the item at an int position, a MetaData for a slice, else the item with that metaID."""
        if isinstance(key, int):
            return list.__getitem__(self, key)
        if isinstance(key, slice):
            return MetaData(list.__getitem__(self, key))
        return list.__getitem__(self, self._position(key))

    # -- changing ---------------------------------------------------------
    def __setitem__(self, key: Any, value: Any) -> None:
        """Replace an item; by metaID only with a value that has a metaID itself."""
        if isinstance(key, slice):
            list.__setitem__(self, key, value)
            self._index_moved()
            return
        if isinstance(key, int):
            position = key
        else:
            if not getattr(value, 'metaID', None):
                raise UnknownMetaIDError('cannot store {} under metaID {!r}: the value has no metaID'.format(
                    type(value).__name__, key))
            position = self._position(key)
        old = list.__getitem__(self, position)
        list.__setitem__(self, position, value)
        if getattr(old, 'metaID', None) != getattr(value, 'metaID', None):
            self._index_moved()

    def __delitem__(self, key: Any) -> None:
        """Delete by position, slice or metaID."""
        if not isinstance(key, (int, slice)):
            key = self._position(key)
        list.__delitem__(self, key)
        self._index_moved()

    def append(self, value: Any) -> None:
        """Append ``value``, indexing its metaID."""
        list.append(self, value)
        self._index_added(len(self) - 1)

    def extend(self, iterable: Iterable[Any]) -> None:
        """Append every item of ``iterable``, indexing their metaIDs."""
        start = len(self)
        list.extend(self, iterable)
        self._index_added(start)

    # list + x stays a plain list (as in 0.3.1) while += keeps the MetaData: mypy calls that incompatible.
    def __iadd__(self, iterable: Iterable[Any]) -> 'MetaData':  # type: ignore[misc]
        self.extend(iterable)
        return self

    def __imul__(self, count: SupportsIndex) -> 'MetaData':
        list.__imul__(self, count)
        self._index_moved()
        return self

    def insert(self, index: SupportsIndex, value: Any) -> None:
        """Insert ``value`` before position ``index``."""
        list.insert(self, index, value)
        self._index_moved()

    def remove(self, value: Any) -> None:
        """Remove the first item equal to ``value`` (ValueError when there is none)."""
        list.remove(self, value)
        self._index_moved()

    def pop(self, key: Any = -1) -> Any:
        """Remove and return the item at position ``key`` (default the last), or with metaID ``key``."""
        if not isinstance(key, int):
            key = self._position(key)
        value = list.pop(self, key)
        self._index_moved()
        return value

    def clear(self) -> None:
        """Remove every item."""
        list.clear(self)
        self._index_moved()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        """Sort in place, like ``list.sort``."""
        list.sort(self, *args, **kwargs)
        self._index_moved()

    def reverse(self) -> None:
        """Reverse in place."""
        list.reverse(self)
        self._index_moved()

    # -- copies -----------------------------------------------------------
    #: Attributes a deep copy shares with the original instead of copying.
    _shared_on_copy: frozenset = frozenset()

    def __copy__(self) -> 'MetaData':
        new = type(self).__new__(type(self))
        list.extend(new, self)
        new.__dict__.update(self.__dict__)
        new._meta_index = None
        return new

    def __deepcopy__(self, memo: Dict[int, Any]) -> 'MetaData':
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        list.extend(new, [copy.deepcopy(item, memo) for item in self])
        for name, value in self.__dict__.items():
            if name != '_meta_index':
                new.__dict__[name] = value if name in self._shared_on_copy else copy.deepcopy(value, memo)
        new._meta_index = None
        return new

    # -- validity -----------------------------------------------------------
    def is_valid(self) -> bool:
        """True when there is a MetaObj and every MetaObj has a truthy ``value`` (ready to bundle)."""
        values = [bool(item.value) for item in self if isinstance(item, MetaObj)]
        return bool(values) and all(values)


def file_or_meta_obj(**json_data: Any) -> Union[MetaObj, FileObj]:
    """Return a FileObj when ``destinationTable`` is ``'Files'``, else a MetaObj."""
    if json_data.get('destinationTable') == FILES_TABLE:
        return FileObj(**json_data)
    return MetaObj(**json_data)


# ---------------------------------------------------------------------------
# Encoding: one json.dumps over plain dicts, same text as the 0.3.1 round trip
# ---------------------------------------------------------------------------
_JSON = json.JSONEncoder()
#: Types of field values that never need the 0.3.1 round trip (see _has_non_str_key).
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def _has_non_str_key(value: Any, path: Optional[set] = None) -> bool:
    """True when a dict inside ``value`` has a key that is not a str.

    0.3.1 encoded each item, parsed it back and encoded it again; that turns
    such keys into strings and merges keys that collide (``1`` and ``'1'``).
    Only then does the single-pass text differ, so only then is the round trip
    repeated. ``path`` guards against cycles (json reports those itself).
    """
    if type(value) in _PLAIN_TYPES or not isinstance(value, (dict, list, tuple)):
        return False
    path = path if path is not None else set()
    if id(value) in path:
        return False
    path.add(id(value))
    try:
        if isinstance(value, dict):
            if any(type(key) is not str for key in value):
                return True
            return any(_has_non_str_key(inner, path) for inner in value.values())
        return any(_has_non_str_key(inner, path) for inner in value)
    finally:
        path.discard(id(value))


def _json_ready(md_obj: MetaData) -> list:
    """Return one dict per item, None fields left out; MetadataEncodeError naming a bad item.

    The hot loop of an upload's metadata (100,000+ files): kept flat on purpose.
    """
    documents: List[Dict[str, Any]] = []
    append = documents.append
    all_plain = _PLAIN_TYPES.issuperset
    for position, item in enumerate(md_obj):
        try:
            table = item.destinationTable
        except AttributeError:
            raise MetadataEncodeError('item {}: {} has no destinationTable, so it is no MetaObj or FileObj'.format(
                position, type(item).__name__)) from None
        expected = FileObj if table == FILES_TABLE else MetaObj
        if not isinstance(item, expected):
            raise MetadataEncodeError('item {}: destinationTable {!r} needs a {}, not a {}'.format(
                position, table, expected.__name__, type(item).__name__))
        fields = {name: value for name, value in zip(item._fields, item) if value is not None}
        if not all_plain(map(type, item)) and any(_has_non_str_key(value) for value in item):
            fields = json.loads(_JSON.encode(fields))
        append(fields)
    return documents


def _meta_id_note(item: Any) -> str:
    """`` (metaID 'x')`` for an error message about ``item``, or nothing when it has none."""
    meta_id = getattr(item, 'metaID', None)
    return ' (metaID {!r})'.format(meta_id) if meta_id else ''


def metadata_encode(md_obj: MetaData) -> str:
    """Return the JSON text of ``md_obj``: a list of objects, None fields left out.

    Byte for byte what pacifica-uploader 0.3.1 writes. MetadataEncodeError (a
    TypeError) for anything but a MetaData, for an item without
    ``destinationTable`` and for a value JSON cannot hold; the message names
    the item.
    """
    if not isinstance(md_obj, MetaData):
        raise MetadataEncodeError('metadata_encode needs a MetaData, not a {}'.format(type(md_obj).__name__))
    documents = _json_ready(md_obj)
    try:
        return _JSON.encode(documents)
    except (TypeError, ValueError) as err:
        for position, document in enumerate(documents):
            try:
                _JSON.encode(document)
            except (TypeError, ValueError) as item_err:
                raise MetadataEncodeError('item {}{}: {}'.format(
                    position, _meta_id_note(md_obj[position]), item_err)) from None
        raise MetadataEncodeError(str(err)) from None


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------
_META_KEY_SET = frozenset(META_KEYS)
_FILE_KEY_SET = frozenset(FILE_KEYS)


def _json_kind(value: Any) -> str:
    names = {dict: 'object', list: 'list', str: 'string', bool: 'boolean', type(None): 'null'}
    return names.get(type(value), 'number')


def _unknown_keys_error(obj: Dict[str, Any], position: int, is_file: bool) -> MetadataDecodeError:
    allowed = _FILE_KEY_SET if is_file else _META_KEY_SET
    unknown = ', '.join(repr(key) for key in obj if key not in allowed)
    return MetadataDecodeError('item {}: unknown key(s) {} for a {}'.format(
        position, unknown, "FileObj (destinationTable 'Files')" if is_file else 'MetaObj'))


def metadata_decode(json_str: Union[str, bytes, bytearray]) -> MetaData:
    """Return the MetaData of a JSON text: FileObj where ``destinationTable`` is ``'Files'``, else MetaObj.

    MetadataDecodeError (a TypeError and ValueError) when the text is not
    JSON, not a list, or holds an item that is not an object or has unknown
    keys; the message names the item.
    """
    if not isinstance(json_str, (str, bytes, bytearray)):
        raise MetadataDecodeError('metadata_decode needs JSON text (str or bytes), not a {}'.format(
            type(json_str).__name__))
    try:
        document = json.loads(json_str)
    except ValueError as err:
        raise MetadataDecodeError('metadata is not valid JSON: {}'.format(err)) from None
    except RecursionError:
        raise MetadataDecodeError('metadata is nested too deeply to be Pacifica metadata') from None
    if not isinstance(document, list):
        raise MetadataDecodeError('metadata must be a JSON list of objects, not a JSON {}'.format(
            _json_kind(document)))
    items: List[Any] = []
    append = items.append
    new_file, new_meta = FileObj._make, MetaObj._make
    for position, obj in enumerate(document):
        if type(obj) is not dict:
            raise MetadataDecodeError('item {}: expected a JSON object, got a JSON {}'.format(
                position, _json_kind(obj)))
        if obj.get('destinationTable') == FILES_TABLE:
            if not obj.keys() <= _FILE_KEY_SET:
                raise _unknown_keys_error(obj, position, True)
            append(new_file(map(obj.get, FILE_KEYS)))
        else:
            if not obj.keys() <= _META_KEY_SET:
                raise _unknown_keys_error(obj, position, False)
            append(new_meta(map(obj.get, META_KEYS)))
    return MetaData(items)


MetaObjEncoder = generate_namedtuple_encoder(MetaObj)
FileObjEncoder = generate_namedtuple_encoder(FileObj)
MetaObjDecoder = generate_namedtuple_decoder(file_or_meta_obj)


class MetaDataEncoder(json.JSONEncoder):
    """``json.dumps(md, cls=MetaDataEncoder)``: the same text as :func:`metadata_encode`."""

    def encode(self, o: Any) -> str:
        """Return :func:`metadata_encode` of ``o``."""
        return metadata_encode(o)


class MetaDataDecoder(json.JSONDecoder):
    """``json.loads(text, cls=MetaDataDecoder)``: the same MetaData as :func:`metadata_decode`."""

    def decode(self, s: str, *args: Any, **kwargs: Any) -> MetaData:
        """Return :func:`metadata_decode` of ``s``."""
        return metadata_decode(s)


__all__ = [
    'MetaData', 'MetaObj', 'FileObj', 'metadata_encode', 'metadata_decode', 'META_KEYS', 'FILE_KEYS',
    'file_or_meta_obj', 'MetaDataEncoder', 'MetaDataDecoder', 'MetaObjEncoder', 'FileObjEncoder',
    'MetaObjDecoder',
]
