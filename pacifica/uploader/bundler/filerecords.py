"""What a bundle remembers of its files until ``metadata.txt``: each file's digest, nothing more.

0.3.1's contract has the Bundler append one ``FileObj`` per file to
``md_obj``, a few hundred bytes a file that the caller keeps. A bundle that
does not need them (``Bundler(..., append_file_objs=False)``) keeps each
file's digest in one bytearray (:class:`DigestList`: 20 bytes a file for
sha1). ``metadata.txt`` is then written from ``file_data`` and those
digests, its records built a slice at a time by the Bundler's own
``_file_info`` (:func:`file_infos`), so its text is the default flow's byte
for byte.

:func:`records_chars` counts the characters of the files' records without
building them: with :func:`.metadatatext.metadata_length` it gives the exact
length of ``metadata.txt`` (the digests have a fixed length, so it is known
before any file is read), for ``content_length()`` and for the member's
header.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

from pacifica._client.exceptions import BundleError

from .metadatatext import (_QUOTED_POSITIONS, _SIZE_POSITION, FILE_OBJ_WIDTH, SLICE, flat_fields,
                           plain_and_quoted_length, quoted)

__all__ = ['DigestList', 'file_infos', 'records_chars', 'file_objs_chars', 'exactly']


class DigestList:
    """The digests of a bundle's files, in file order, in one bytearray sized once."""

    __slots__ = ('_data', '_size', '_count')

    def __init__(self, count: int, digest_size: int) -> None:
        self._data = bytearray(count * digest_size)
        self._size = digest_size
        self._count = 0

    def append(self, hexsum: str) -> None:
        """Remember the next file's digest, given as hex text."""
        digest = bytes.fromhex(hexsum)
        start = self._count * self._size
        if len(digest) != self._size or start + self._size > len(self._data):
            raise ValueError('digest {!r} does not fit this list of {}-byte digests'.format(hexsum, self._size))
        self._data[start:start + self._size] = digest
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        """The hex digests, in file order."""
        data, size = self._data, self._size
        return (data[start:start + size].hex() for start in range(0, self._count * size, size))


def file_infos(file_info: Callable[[str, int, Any, str], Any], entries: Iterable[Any],
               digests: Iterable[str]) -> Iterator[Any]:
    """The records of ``entries`` with their ``digests``, built by ``file_info`` as they are asked for."""
    return (file_info(entry['name'], entry['size'], entry['mtime'], hexsum)
            for entry, hexsum in zip(entries, digests))


def records_chars(entries: Sequence[Any], hashtype: str, hexlen: int, subdir: Callable[[str], str],
                  mimetype: Callable[[str, str], str], isotime: Callable[[Any], str]) -> int:
    """The characters of the ``entries``' record fields in metadata.txt, without building the records.

    ``subdir``, ``mimetype`` and ``isotime`` are the Bundler's, the ones its
    ``_file_info`` uses, and the archive path is split as it splits it; the
    unit tests hold this count to the length of the text written.
    """
    chars = (len(quoted(hashtype)) + hexlen + 2) * len(entries)
    last_directory, directory_chars = None, 0
    for entry in entries:
        name = entry['name']
        slash = name.rfind('/')
        base = name[slash + 1:]
        directory = name[:slash] if slash > 0 else ''
        if directory != last_directory:  # the files of one folder come together: no per-folder table
            last_directory, directory_chars = directory, len(quoted(subdir(directory)))
        chars += (len(quoted(base)) + directory_chars + len('%d' % entry['size'])
                  + len(quoted(mimetype(name, base))) + 2 * len(quoted(isotime(entry['mtime']))))
    return chars


def file_objs_chars(infos: Sequence[Any], plains: Optional[List[Tuple[bool, ...]]] = None) -> int:
    """:func:`records_chars` counted from the bundler-built FileObjs themselves, a slice of them at a time.

    A slice is turned into columns (slices of :func:`.metadatatext.flat_fields`), and json escapes a str
    character by character, so a column's quoted length is that of its
    values joined, less one pair of quotes (:func:`.metadatatext.plain_and_quoted_length`):
    no Python call per file (the reason: ``benchmarks/README.md``). Slices
    keep the joined text small. The unit tests hold it to :func:`records_chars`.

    ``plains``, when given, gets per slice the :func:`.metadatatext.json_plain`
    flags of its quoted columns, found on the way, for
    :func:`.metadatatext.counted_metadata_text` to format the same slices
    without finding them again.
    """
    chars = 0
    for start in range(0, len(infos), SLICE):
        batch = infos[start:start + SLICE]
        flat = flat_fields(batch)
        # '%d' of an int, its subclasses too
        chars += len(''.join(map(int.__repr__, flat[_SIZE_POSITION::FILE_OBJ_WIDTH])))
        flags = []
        for position in _QUOTED_POSITIONS:
            plain, length = plain_and_quoted_length(''.join(flat[position::FILE_OBJ_WIDTH]))
            flags.append(plain)
            chars += length
        if plains is not None:
            plains.append(tuple(flags))
        chars += 2 * len(_QUOTED_POSITIONS) * (len(batch) - 1)  # the quotes of the values beyond the first
    return chars


def exactly(pieces: Iterable[bytes], size: int, name: str) -> Iterator[bytes]:
    """``pieces``, checked to add up to the ``size`` announced in the member's header."""
    total = 0
    for piece in pieces:
        total += len(piece)
        if total > size:
            break
        yield piece
    if total != size:
        raise BundleError('{} came to {} bytes, not the {} its header announced'.format(name, total, size))
