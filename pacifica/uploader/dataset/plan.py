"""Split a dataset into shards: one ingest transaction each, cut by bytes and/or file count.

A dataset is an ordered stream of ``file_data`` entries, the dicts
:class:`~pacifica.uploader.bundler.Bundler` takes (``name``, ``size``,
``mtime`` and ``path`` or ``fileobj``). Its :class:`DatasetSource` hands out
that stream again on every call, so planning and sending are two passes that
hold one shard's entries at most, never the dataset's::

    source = DatasetSource.from_root('/data/run42')        # or .from_file_data(entries)
    shards = plan(source(), max_bytes=2 << 30, max_files=10_000)
    for shard, entries in cut(source(), shards):            # each shard's entries, checked
        ...

A shard is a contiguous index range of that stream (:class:`ShardPlan`), so
the manifest records it in a few numbers. The cut is greedy in stream order
and depends on nothing else: the same entries give the same shards. A file
larger than ``max_bytes`` travels alone. Each shard keeps a digest of its
file names; :func:`cut` compares it, so a dataset that changed between two
runs (a file added, removed or renamed) is refused instead of shifting files
between shards that were already sent.
"""
from __future__ import annotations

import hashlib
import marshal
import os
import tempfile
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from pacifica.uploader import ConfigurationError, FileDataError

__all__ = ['ShardPlan', 'DatasetSource', 'EntrySpool', 'EmptyDatasetError', 'DatasetChangedError', 'plan_shards',
           'plan', 'cut', 'entries_under']

Entry = Mapping[str, Any]


class EmptyDatasetError(ConfigurationError):
    """The dataset holds no file: there is nothing to shard."""


class DatasetChangedError(ConfigurationError):
    """The dataset's entries no longer match the shards planned for it (the manifest's)."""


class ShardPlan(NamedTuple):
    """One shard: entries ``start`` to ``stop - 1`` of the dataset's stream (``part`` counts from 1)."""

    part: int
    start: int
    stop: int
    size: int
    #: sha256 of the shard's file names, each followed by a NUL: what identifies its files.
    digest: str
    first: str
    last: str

    @property
    def files(self) -> int:
        """How many files the shard holds."""
        return self.stop - self.start


def _names_hash() -> Any:
    # The digest recognises a shard's files; it guards no secret (and FIPS builds allow it so).
    return hashlib.sha256(usedforsecurity=False)


def _name_bytes(name: str) -> bytes:
    # Names read from a file system may hold surrogates (undecodable bytes): hash them too.
    return name.encode('utf-8', 'surrogatepass') + b'\0'


def _name_and_size(entry: Any, index: int) -> Tuple[str, int]:
    """The two fields planning needs, checked; the Bundler checks the rest in the worker."""
    try:
        name = entry['name']
        size = entry['size']
    except (KeyError, TypeError, IndexError):
        raise FileDataError("dataset entry {} is not a file_data dict with 'name' and 'size'".format(index)) from None
    if not isinstance(name, str) or not name:
        raise FileDataError("dataset entry {}: 'name' must be a non-empty str, not {!r}".format(index, name))
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise FileDataError("dataset entry {} ({}): 'size' must be an int >= 0, not {!r}".format(index, name, size))
    return name, size


def _limit(value: Optional[int], what: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError('{} must be an int >= 1 or None, not {!r}'.format(what, value))
    return value


class _OpenShard:
    """The shard being filled: running totals only, never its entries."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.size = 0
        self.files = 0
        self.hasher = _names_hash()
        self.first = ''
        self.last = ''

    def add(self, name: str, size: int) -> None:
        if not self.files:
            self.first = name
        self.last = name
        self.files += 1
        self.size += size
        self.hasher.update(_name_bytes(name))

    def close(self, part: int) -> ShardPlan:
        return ShardPlan(part, self.start, self.start + self.files, self.size, self.hasher.hexdigest(),
                         self.first, self.last)


def plan_shards(entries: Iterable[Entry], max_bytes: Optional[int] = None,
                max_files: Optional[int] = None) -> Iterator[ShardPlan]:
    """Yield the shards of ``entries`` as they close, reading the stream once.

    A shard closes before an entry that would take it over ``max_bytes`` or
    ``max_files``; an entry larger than ``max_bytes`` makes a shard of its
    own. At least one limit is needed. EmptyDatasetError (a
    ConfigurationError) when ``entries`` is empty, once the stream ends.
    """
    byte_limit = _limit(max_bytes, 'max_bytes')
    file_limit = _limit(max_files, 'max_files')
    if byte_limit is None and file_limit is None:
        raise ConfigurationError('a dataset is split by max_bytes, max_files or both: give at least one')
    part = 0
    current = _OpenShard(0)
    index = -1
    for index, entry in enumerate(entries):
        name, size = _name_and_size(entry, index)
        full = current.files and (
            (file_limit is not None and current.files >= file_limit)
            or (byte_limit is not None and current.size + size > byte_limit))
        if full:
            part += 1
            yield current.close(part)
            current = _OpenShard(index)
        current.add(name, size)
    if index < 0:
        raise EmptyDatasetError('the dataset holds no file: nothing to upload')
    yield current.close(part + 1)


def plan(entries: Iterable[Entry], max_bytes: Optional[int] = None, max_files: Optional[int] = None) -> List[ShardPlan]:
    """All shards of ``entries`` (see :func:`plan_shards`): a list, since ``i/N`` needs N."""
    return list(plan_shards(entries, max_bytes, max_files))


def cut(entries: Iterable[Entry], shards: Sequence[ShardPlan],
        wanted: Optional[Callable[[ShardPlan], bool]] = None) -> Iterator[Tuple[ShardPlan, List[Entry]]]:
    """Yield each wanted shard with its entries, streaming ``entries`` once.

    ``shards`` must cover the stream from index 0 without gaps, as
    :func:`plan` made them. Every shard's file names are compared with its
    digest, wanted or not, and the stream must end where the last shard does:
    DatasetChangedError otherwise, raised at the first shard that differs.
    ``wanted`` (default: all) picks the shards whose entries are collected.
    """
    stream = enumerate(entries)
    position = 0
    for shard in shards:
        if shard.start != position or shard.stop < shard.start:
            raise DatasetChangedError('the shards do not cover the dataset in order: part {} starts at {}, not {}'
                                      .format(shard.part, shard.start, position))
        collect = wanted is None or wanted(shard)
        hasher = _names_hash()
        taken: List[Entry] = []
        for _ in range(shard.files):
            step = next(stream, None)
            if step is None:
                raise _changed(shard, 'the dataset ends after {} entries'.format(position))
            index, entry = step
            hasher.update(_name_bytes(_name_and_size(entry, index)[0]))
            if collect:
                taken.append(entry)
            position += 1
        if hasher.hexdigest() != shard.digest:
            raise _changed(shard, 'its file names differ (it began with {!r}, ended with {!r})'.format(
                shard.first, shard.last))
        if collect:
            yield shard, taken
    if next(stream, None) is not None:
        raise DatasetChangedError('the dataset holds more than the {} entries its shards were planned for'.format(
            position))


def _changed(shard: ShardPlan, why: str) -> DatasetChangedError:
    return DatasetChangedError('the dataset changed since it was planned: part {} (entries {} to {}): {}'.format(
        shard.part, shard.start, shard.stop - 1, why))


def _sorted_children(folder: str) -> List[Tuple[str, bool, os.DirEntry]]:
    """(name, is a folder, listing entry) of a folder's entries by name; links to folders are left out, as
    pacifica-upload does. The listing's own entries save a join per file and stat by their folder."""
    children = []
    with os.scandir(folder) as listing:
        for item in listing:
            is_dir = item.is_dir(follow_symlinks=False)
            if not is_dir and item.is_symlink() and item.is_dir():
                continue  # entering links could walk a folder twice, or forever
            if not is_dir and not item.is_file():
                raise ConfigurationError('{} is not a regular file (a broken link, a FIFO or a socket?)'.format(
                    item.path))
            children.append((item.name, is_dir, item))
    children.sort(key=_by_name)
    return children


def _by_name(child: Tuple[str, bool, os.DirEntry]) -> str:
    return child[0]


def entries_under(root: str, prefix: str = 'data') -> Iterator[Dict[str, Any]]:
    """``file_data`` entries for every file below ``root``, in a stable order, one at a time.

    Names are ``<prefix>/<path relative to root>`` with ``/`` separators;
    each entry names its file by ``path`` (opened when bundled), so entries
    pickle to worker processes. Only one folder's listing is held at a time
    per level of depth.
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise ConfigurationError('{} is not a folder'.format(root))
    stack: List[Tuple[str, Iterator[Tuple[str, bool, os.DirEntry]]]] = [(prefix, iter(_sorted_children(root)))]
    while stack:
        name_prefix, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        name, is_dir, item = child
        arc_name = name_prefix + '/' + name if name_prefix else name
        if is_dir:
            stack.append((arc_name, iter(_sorted_children(item.path))))
            continue
        info = _file_stat(item)
        yield {'name': arc_name, 'size': info.st_size, 'mtime': info.st_mtime, 'path': item.path}


def _file_stat(item: os.DirEntry) -> os.stat_result:
    """The file's stat through its listing entry (a link followed, as os.stat): by its folder, not its whole path,
    and on Windows from the listing itself (benchmarks/README.md, sharded uploads)."""
    return item.stat()


class DatasetSource:
    """Hands out a dataset's entries afresh on every call: planning and sending each read them once.

    ``plain``: the entries are plain data that :class:`EntrySpool` can keep
    (a folder's listing), so :meth:`spooled` saves the second listing.
    """

    def __init__(self, open_entries: Callable[[], Iterator[Entry]], description: str, plain: bool = False) -> None:
        self._open_entries = open_entries
        self.description = description
        self.plain = plain

    def __call__(self) -> Iterator[Entry]:
        return self._open_entries()

    def __repr__(self) -> str:
        return 'DatasetSource({})'.format(self.description)

    @classmethod
    def from_root(cls, root: str, prefix: str = 'data') -> 'DatasetSource':
        """Every file below ``root`` (see :func:`entries_under`), walked again on each call."""
        return cls(lambda: entries_under(root, prefix), 'files under {}'.format(os.path.basename(root) or root),
                   plain=True)

    @classmethod
    def from_file_data(cls, file_data: Sequence[Entry]) -> 'DatasetSource':
        """A ``file_data`` list the caller already holds; a name twice in it is refused now.

        Shards are separate bundles, so the Bundler's own check of duplicate
        names cannot see two copies in different shards. The check keeps
        references to the list's own name strings only.
        """
        if isinstance(file_data, (str, bytes, Mapping)) or not isinstance(file_data, Sequence):
            raise ConfigurationError('file_data must be a list of file_data dicts, not {}'.format(
                type(file_data).__name__))
        seen: Set[str] = set()
        for index, entry in enumerate(file_data):
            name = _name_and_size(entry, index)[0]
            if name in seen:
                raise FileDataError("dataset entry {}: 'name' {!r} appears twice".format(index, name))
            seen.add(name)
        return cls(lambda: iter(file_data), '{} file_data entries'.format(len(file_data)))


def _load_batch(spool: Any, length: int) -> Any:
    """One recorded batch read whole, then decoded: marshal.load on the file itself reads it field by field,
    several times slower (benchmarks/README.md, sharded uploads)."""
    return marshal.loads(spool.read(length))


class EntrySpool:
    """A source's entries as one pass listed them, kept in an anonymous temporary file for the next passes.

    Listing a large tree is the coordinator's largest share of work, so the
    pass that plans (or checks) the shards is recorded and sending reads it
    back::

        with EntrySpool(source) as spool:
            shards = plan(spool.first_pass(), max_files=10_000)
            for shard, entries in cut(spool.source(), shards): ...

    Only a source whose entries are plain data (``plain``: a folder's
    listing of ``name``, ``size``, ``mtime``, ``path``) is recorded; another
    (a ``file_data`` list, already in memory) is read again, as is any
    source until its first pass has ended. The file is written and read in
    chunks of ``chunk`` entries, so memory holds a chunk, not the dataset
    (the disk holds about the length of each entry's name and path, in the
    temporary folder), and it is unlinked from the start: it vanishes with
    its process.
    """

    def __init__(self, source: DatasetSource, chunk: int = 4096) -> None:
        self._source = source
        self._chunk = chunk
        self._file: Optional[Any] = tempfile.TemporaryFile(prefix='pacifica-entries-') if source.plain else None
        self._ends: List[int] = []
        self._complete = False

    def __enter__(self) -> 'EntrySpool':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._complete = False

    def first_pass(self) -> Iterator[Entry]:
        """The source's entries, recorded as they pass when they are plain."""
        if self._file is None:
            yield from self._source()
            return
        batch: List[Tuple[str, int, float, str]] = []
        for entry in self._source():
            batch.append((entry['name'], entry['size'], entry['mtime'], entry['path']))
            if len(batch) >= self._chunk:
                self._write(batch)
                batch = []
            yield entry
        if batch:
            self._write(batch)
        self._complete = True

    def _write(self, batch: List[Tuple[str, int, float, str]]) -> None:
        assert self._file is not None
        marshal.dump(batch, self._file)
        self._ends.append(self._file.tell())

    def _replay(self) -> Iterator[Entry]:
        if not self._complete or self._file is None:
            yield from self._source()
            return
        offset = 0
        for end in self._ends:
            self._file.seek(offset)  # each reader its own position: two passes may interleave
            batch = _load_batch(self._file, end - offset)
            offset = end
            for name, size, mtime, path in batch:
                yield {'name': name, 'size': size, 'mtime': mtime, 'path': path}

    def source(self) -> DatasetSource:
        """The source of the next passes: the recorded entries once the first pass has ended."""
        return DatasetSource(self._replay, self._source.description)
