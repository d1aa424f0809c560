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
"""
from __future__ import annotations

import json
from typing import Any, List, Sequence

from pacifica._client.exceptions import MetadataEncodeError

from ..metadata import MetaData, metadata_encode

#: Items of metadata.txt encoded at a time.
SLICE = 2048

#: metadata_encode's text of a bundler-built FileObj (see the module docstring).
_FILE_RECORD_JSON = ('{"destinationTable": "Files", "name": %s, "subdir": %s, "size": %d, "hashtype": %s, '
                     '"hashsum": %s, "mimetype": %s, "ctime": %s, "mtime": %s}')


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


def _file_records_text(file_infos: Sequence[Any]) -> str:
    """The JSON objects of bundler-built FileObjs, joined by ", " (metadata_encode's text for them)."""
    quote = json.encoder.encode_basestring_ascii
    return ', '.join([_FILE_RECORD_JSON % (quote(info.name), quote(info.subdir), info.size, quote(info.hashtype),
                                           quote(info.hashsum), quote(info.mimetype), quote(info.ctime),
                                           quote(info.mtime))
                      for info in file_infos])


def metadata_text(items: Sequence[Any], file_infos: Sequence[Any]) -> List[bytes]:
    """``metadata_encode(MetaData(items + file_infos))`` in UTF-8 pieces; ``file_infos`` are bundler-built."""
    pieces = items_text(items)
    if not file_infos:
        return pieces
    pieces[-1] = pieces[-1][:-1]  # reopen the list: drop its "]"
    separator = b', ' if items else b''
    for start in range(0, len(file_infos), SLICE):
        pieces.append(separator + _file_records_text(file_infos[start:start + SLICE]).encode('ascii'))
        separator = b', '
    pieces.append(b']')
    return pieces
