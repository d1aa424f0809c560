"""Use the second core: read and hash on helper threads while the bundling thread packs and sends.

Opening, reading and closing a file, hashing a buffer of 2 KiB or more and
sending a buffer all release the GIL, so two threads can overlap them.

- Small files: :class:`SmallFileReader` opens, reads, closes and hashes the
  next small ``path`` files ahead of the bundling thread, in ``file_data``
  order, and hands them over in batches (one queue operation per batch, not
  per file). The bundling thread only packs headers, copies the bytes into
  its output buffer and builds the metadata. At most a few batches wait, so
  memory stays flat however many files there are, and each file is open only
  while it is read (no descriptor pile-up).
- Large files: :class:`AsyncHasher` takes the hashing of large reads off the
  bundling thread: while it digests buffer A, the bundler already reads the
  next piece of the file into buffer B (and the consumer sends A).
  :class:`BufferRing` hands out the output buffers and only gives one back for
  writing once the consumer moved on and every hash job on it is finished.
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple, Union

from pacifica._client.exceptions import FileChangedError

#: Reads at least this long are hashed on the hashing thread; shorter ones inline.
ASYNC_HASH_MIN = 64 * 1024
#: ``path`` files up to this size are read whole, ahead, by the SmallFileReader.
SMALL_FILE = 256 * 1024
#: A SmallFileReader batch ends after this many files or bytes, whichever comes first.
BATCH_FILES = 64
BATCH_BYTES = 256 * 1024
#: Batches read ahead of the bundling thread (bounds the memory: about 1 MiB).
BATCHES_AHEAD = 4
_OPEN_FLAGS = os.O_RDONLY | getattr(os, 'O_BINARY', 0) | getattr(os, 'O_CLOEXEC', 0)

#: Output buffers in the ring: one being filled, one with the consumer or the hasher.
RING_SIZE = 2


class AsyncHasher:
    """One background thread that runs ``hashval.update(view)`` jobs in submission order."""

    def __init__(self) -> None:
        self.submitted = 0
        self.finished = 0
        self._jobs: 'queue.SimpleQueue[Optional[tuple]]' = queue.SimpleQueue()
        self._progress = threading.Condition()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name='pacifica-bundle-hasher', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            hashval, view = job
            try:
                hashval.update(view)
            except BaseException as error:  # noqa: BLE001 - any error must reach wait(), or it would wait for ever
                self._error = error
            with self._progress:
                self.finished += 1
                self._progress.notify_all()

    def submit(self, hashval: Any, view: memoryview) -> int:
        """Queue ``hashval.update(view)``; returns the job's sequence number."""
        self.submitted += 1
        self._jobs.put((hashval, view))
        return self.submitted

    def wait(self, sequence: int) -> None:
        """Block until the jobs up to ``sequence`` are done."""
        if self.finished < sequence:
            with self._progress:
                while self.finished < sequence:
                    self._progress.wait()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Finish the queued jobs and end the thread."""
        self._jobs.put(None)
        self._thread.join()


class BufferRing:
    """Output buffers used in turn; a buffer is handed out again once its hash jobs are done.

    The consumer is done with a chunk when it asks for the next one, and by
    then the bundler has moved on to the other buffer: so when a buffer's turn
    comes back, only the hasher may still be reading it.
    """

    def __init__(self, chunk_size: int, hasher: AsyncHasher) -> None:
        self._buffers: List[memoryview] = [memoryview(bytearray(chunk_size)) for _ in range(RING_SIZE)]
        self._last_job = [0] * RING_SIZE
        self._current = RING_SIZE - 1
        self._hasher = hasher

    def acquire(self) -> memoryview:
        """The next buffer to fill, once nothing reads it any more."""
        self._last_job[self._current] = self._hasher.submitted
        self._current = (self._current + 1) % RING_SIZE
        self._hasher.wait(self._last_job[self._current])
        return self._buffers[self._current]


def open_for_reading(path: Any, name: str) -> int:
    """A descriptor of ``path``; FileChangedError naming the member when it cannot be opened any more."""
    try:
        return os.open(path, _OPEN_FLAGS)
    except OSError as error:
        raise FileChangedError(error.errno, '{!r} cannot be opened any more ({}): {}'.format(
            name, os.fsdecode(os.fspath(path)), error.strerror)) from error


def read_small_file(path: Any, size: int, name: str) -> bytes:
    """All ``size`` bytes of a ``path`` file; FileChangedError if it holds fewer or more now.

    Each read asks for one byte more than is still missing. A regular file
    returns fewer bytes than asked only at its end, so a short read that
    completes ``size`` also proves that nothing follows (no extra read).
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        fd = open_for_reading(path, name)  # raises the explanation (or succeeds on a retry)
    try:
        data = os.read(fd, size + 1)
        while len(data) < size:
            more = os.read(fd, size + 1 - len(data))
            if not more:
                raise FileChangedError('{!r} ended after {} of its {} bytes: it shrank since it was '
                                       'listed'.format(name, len(data), size))
            data += more
    finally:
        os.close(fd)
    if len(data) > size:
        raise FileChangedError('{!r} holds more than its {} bytes: it grew since it was listed'.format(name, size))
    return data


#: What SmallFileReader yields per entry: (data, hex digest), None (not a small path file:
#: the bundling thread reads it itself) or the exception reading it raised.
Prefetched = Union[Tuple[bytes, str], None, BaseException]
_END = None


class SmallFileReader:
    """Reads and hashes the small ``path`` files of ``file_data`` on a helper thread, ahead of their turn.

    Iterate over :meth:`results` in step with ``file_data``. After the first
    failure the reader stops; the failure is yielded at that file's position,
    so every earlier file is still bundled first. :meth:`close` stops the
    thread when the bundle ends early.
    """

    def __init__(self, file_data: Iterable[dict], new_hash: Callable[[], Any], digest: Callable[[Any], str]) -> None:
        self._file_data = file_data
        self._new_hash = new_hash
        self._digest = digest
        self._batches: 'queue.Queue[Optional[List[Prefetched]]]' = queue.Queue(BATCHES_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='pacifica-bundle-reader', daemon=True)
        self._thread.start()

    def results(self) -> Iterator[Prefetched]:
        """One result per ``file_data`` entry, in order."""
        return itertools.chain.from_iterable(iter(self._batches.get, _END))

    def close(self) -> None:
        """Stop reading ahead and end the thread."""
        self._stop.set()
        self._thread.join()

    def _put(self, batch: Optional[List[Prefetched]]) -> bool:
        """Queue ``batch`` unless the reader was stopped meanwhile; False when it was."""
        while not self._stop.is_set():
            try:
                self._batches.put(batch, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            self._read_all()
        except BaseException as error:  # noqa: BLE001 - handed over: the bundling thread raises it
            self._put([error])
        finally:
            self._put(_END)

    def _read_all(self) -> None:
        """The loop, flat on purpose: it runs once per file."""
        new_hash, digest, read_small = self._new_hash, self._digest, read_small_file
        batch: List[Prefetched] = []
        batch_bytes = 0
        for entry in self._file_data:
            size = entry['size']
            if size > SMALL_FILE or entry.get('fileobj') is not None:
                batch.append(None)
                continue
            try:
                data = read_small(entry['path'], size, entry['name'])
            except Exception as error:  # noqa: BLE001 - raised by the bundling thread at this file's turn
                batch.append(error)
                break
            hashval = new_hash()
            hashval.update(data)
            batch.append((data, digest(hashval)))
            batch_bytes += size
            if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
                if not self._put(batch):
                    return
                batch, batch_bytes = [], 0
        if batch:
            self._put(batch)
