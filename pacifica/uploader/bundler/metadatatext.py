"""The text of ``metadata.txt``: ``metadata_encode(MetaData(items + file records))``, in UTF-8 pieces.

The text is "[" + the items' JSON objects joined by ", " + "]" (json's
default separators), so parts of the list encode apart and join to the same
bytes. That keeps the whole text and the encoder's intermediate objects for
100,000 files out of memory at once (peak RSS).

The caller's items go through :func:`metadata_encode`. The bundler's own file
records, one per file, are formatted by :func:`_file_records_text` from one
JSON template: what metadata_encode writes for a FileObj whose fields are all
str except ``size`` (an int) and ``source`` (None, left out). The template
pays for itself (``benchmarks/README.md``), and a unit test pins its text to
metadata_encode's for a corpus of awkward names.

A bundle of very many files would need hundreds of MiB for the whole text,
and its tar header needs the length first: so the length is counted and the
text written a slice at a time, never held.

The length can also be had without the records (:func:`metadata_length`):
the caller's items' text, plus one frame per record (the template without
its fields, :data:`RECORD_FRAME`) and the characters of the fields
(:func:`quoted` of each, the size's digits), counted by
:func:`.filerecords.records_chars`. ``content_length()`` and both flows of
the stream use it; :func:`counted_metadata_text` pairs it with the pieces,
formatted once.
"""
from __future__ import annotations

import collections
import functools
import itertools
import json
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple

from pacifica._client.exceptions import MetadataEncodeError

from ..metadata import MetaData, metadata_encode

#: Items of metadata.txt encoded at a time.
SLICE = 2048

#: metadata_encode's text of a bundler-built FileObj (see the module docstring).
_FILE_RECORD_JSON = ('{"destinationTable": "Files", "name": %s, "subdir": %s, "size": %d, "hashtype": %s, '
                     '"hashsum": %s, "mimetype": %s, "ctime": %s, "mtime": %s}')
#: The characters of a record's text besides its fields' (the size's digits, the quoted strings).
RECORD_FRAME = len(_FILE_RECORD_JSON % ('', '', 0, '', '', '', '', '')) - 1
#: A str as json writes it in metadata.txt: quoted, non-ASCII escaped (so its length is its UTF-8 length).
quoted = json.encoder.encode_basestring_ascii
#: FileObj positions (FILE_KEYS) of the template's quoted fields, in its order, and of the size.
_QUOTED_POSITIONS = (1, 3, 5, 6, 7, 8, 9)
_SIZE_POSITION = 4
#: The fields of a FileObj (len(FILE_KEYS)).
FILE_OBJ_WIDTH = 10
#: The characters json writes unchanged between quotes: printable ASCII but '"' and the backslash.
_JSON_PLAIN_BYTES = bytes(code for code in range(0x20, 0x7F) if code not in b'"\\')


def json_plain(text: str) -> bool:
    """True when ``quoted(text)`` is ``text`` between quotes (json escapes character by character).

    A C-level scan (``bytes.translate`` deletes the plain bytes), several
    times cheaper per character than :func:`quoted`.
    """
    return text.isascii() and not text.encode('ascii').translate(None, _JSON_PLAIN_BYTES)


def plain_and_quoted_length(text: str) -> Tuple[bool, int]:
    """:func:`json_plain` of ``text`` and ``len(quoted(text))``, without the quoted copy when it is plain."""
    plain = json_plain(text)
    return plain, len(text) + 2 if plain else len(quoted(text))


def quoted_length(text: str) -> int:
    """``len(quoted(text))``, without the quoted copy when ``text`` is plain."""
    return plain_and_quoted_length(text)[1]


@functools.lru_cache(maxsize=None)
def _record_parts(plain: Tuple[bool, ...]) -> Tuple[str, ...]:
    """The text around the 8 fields of :data:`_FILE_RECORD_JSON` (name, subdir, size, ... mtime), ", " first.

    A ``plain`` field's quotes are moved into the parts around it (128 variants at most).
    """
    parts = (', ' + _FILE_RECORD_JSON).replace('%d', '%s').split('%s')
    for index, flag in enumerate(plain[:2] + (False,) + plain[2:]):
        if flag:
            parts[index] += '"'
            parts[index + 1] = '"' + parts[index + 1]
    return tuple(parts)


def items_text(items: Sequence[Any]) -> List[bytes]:
    """``metadata_encode(MetaData(items))`` in UTF-8, encoded a slice of items at a time.

    Errors are raised by encoding the whole list, so that their item positions are right.
    """
    pieces = []
    items = list(items)
    try:
        for start in range(0, max(len(items), 1), SLICE):
            text = metadata_encode(MetaData(items[start:start + SLICE]))
            if start:
                text = ', ' + text[1:]
            if start + SLICE < len(items):
                text = text[:-1]
            pieces.append(text.encode('utf-8'))
    except MetadataEncodeError:
        metadata_encode(MetaData(items))
        raise
    return pieces


def flat_fields(file_infos: Sequence[Any]) -> List[Any]:
    """The fields of the FileObjs ``file_infos`` one after another: column ``i`` is ``flat[i::FILE_OBJ_WIDTH]``.

    ``list.extend`` of a tuple copies its items without an iterator, so this
    allocates no object per record that the garbage collector tracks (as
    ``zip(*file_infos)`` does: one tuple iterator per record, all alive at
    once; the reason is in ``benchmarks/README.md``).
    """
    flat: List[Any] = []
    collections.deque(map(flat.extend, file_infos), 0)
    if len(flat) != FILE_OBJ_WIDTH * len(file_infos):
        raise ValueError('file records of {} fields each expected'.format(FILE_OBJ_WIDTH))
    return flat


def _file_records_text(file_infos: Sequence[Any], known_plain: Optional[Tuple[bool, ...]] = None) -> str:
    """The JSON objects of bundler-built FileObjs, joined by ", " (metadata_encode's text for them).

    Built column-wise, with no Python frame and no tracked object per record
    (the reason is in ``benchmarks/README.md``): the columns are slices of
    :func:`flat_fields`; a column whose values json writes unchanged
    (:func:`json_plain` of them joined) takes its quotes from the template's
    parts instead of a :func:`quoted` call per value; parts and values are
    put in place in one list by extended slice assignment and joined once.
    ``known_plain``: those flags, when the caller found them already for
    these very records (:func:`.filerecords.file_objs_chars`).
    """
    flat = flat_fields(file_infos)
    count = len(file_infos)
    fields: List[Sequence[str]] = []
    plain = []
    for index, position in enumerate(_QUOTED_POSITIONS):
        column = flat[position::FILE_OBJ_WIDTH]
        plain.append(known_plain[index] if known_plain is not None else json_plain(''.join(column)))
        fields.append(column if plain[-1] else list(map(quoted, column)))
    # json's text of an int, its subclasses too
    fields.insert(2, list(map(int.__repr__, flat[_SIZE_POSITION::FILE_OBJ_WIDTH])))
    parts = _record_parts(tuple(plain))
    stride = 2 * len(fields) + 1
    text = [parts[0]] * (stride * count)
    for index, (field, part) in enumerate(zip(fields, parts[1:])):
        text[2 * index + 1::stride] = field
        text[2 * index + 2::stride] = [part] * count
    return ''.join(text)[2:]


def _pieces(head: List[bytes], file_infos: Iterable[Any],
            plains: Optional[Sequence[Tuple[bool, ...]]] = None) -> Iterator[bytes]:
    """The pieces of metadata.txt: the caller's items (``head``, from :func:`items_text`), then the records.

    ``plains``: the :func:`json_plain` flags of each slice of :data:`SLICE`
    records, when the caller found them already (or None).
    """
    infos = iter(file_infos)
    batch = list(itertools.islice(infos, SLICE))
    if not batch:
        yield from head
        return
    yield from head[:-1]
    last = head[-1][:-1]  # reopen the list: drop its "]"
    yield last
    separator = b', ' if last != b'[' else b''
    number = 0
    while batch:
        known = plains[number] if plains is not None else None
        yield separator + _file_records_text(batch, known).encode('ascii')
        separator = b', '
        number += 1
        batch = list(itertools.islice(infos, SLICE))
    yield b']'


def metadata_text(items: Sequence[Any], file_infos: Iterable[Any]) -> List[bytes]:
    """``metadata_encode(MetaData(items + file_infos))`` in UTF-8 pieces; ``file_infos`` are bundler-built."""
    return list(_pieces(items_text(items), file_infos))


def _length(head: List[bytes], count: int, field_chars: int) -> int:
    """The length of :func:`_pieces` of ``head`` and ``count`` records whose fields have ``field_chars``."""
    size = sum(map(len, head))
    if not count:
        return size
    separator = 2 if size > 2 else 0  # a list of caller items ("[...]" longer than "[]") gets ", " before the records
    return size + separator + RECORD_FRAME * count + field_chars + 2 * (count - 1)


def metadata_length(items: Sequence[Any], count: int, field_chars: int) -> int:
    """The byte length of :func:`metadata_text` of ``items`` and ``count`` bundler-built records.

    ``field_chars``: the records' fields as they are written, the strings
    :func:`quoted` and the size in decimal digits, all added up
    (:func:`.filerecords.records_chars`).
    """
    return _length(items_text(items), count, field_chars)


def counted_metadata_text(items: Sequence[Any], file_infos: Iterable[Any], count: int, field_chars: int,
                          plains: Optional[Sequence[Tuple[bool, ...]]] = None) -> Tuple[int, Iterator[bytes]]:
    """:func:`metadata_length` and the pieces of :func:`metadata_text`, formatted a slice at a time as they are read.

    The caller's items are encoded (and their errors raised) here. ``plains``:
    the flags :func:`.filerecords.file_objs_chars` found for ``file_infos``.
    """
    head = items_text(items)
    return _length(head, count, field_chars), _pieces(head, file_infos, plains)
