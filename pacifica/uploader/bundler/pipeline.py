"""Hash on the second core while the first one reads and sends.

Reading a file into a buffer and sending a buffer release the GIL, and so
does hashing a large buffer. :class:`AsyncHasher` takes the hashing of large
reads off the bundling thread: while it digests buffer A, the bundler already
reads the next piece of the file into buffer B (and the consumer sends A).
:class:`BufferRing` hands out the output buffers and only gives one back for
writing once the consumer moved on and every hash job on it is finished.
The digests' text and length (:func:`hexdigest`, :func:`digest_bytes`) and the
byte count a progress display reads (:class:`ByteCount`) live here too.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterator, List, Optional

from pacifica._client.rules import new_hash

#: SHAKE digests have no natural length; these (256 and 512 bits) match their security levels.
SHAKE_DIGEST_BYTES = {'shake_128': 32, 'shake_256': 64}


class ByteCount:
    """A count of bytes that another thread may read while it grows (a progress display)."""

    __slots__ = ('value',)

    def __init__(self) -> None:
        self.value = 0


def hexdigest(hashval: Any) -> str:
    """Hex digest of any hashlib object; SHAKE objects get the length of :data:`SHAKE_DIGEST_BYTES`."""
    if getattr(hashval, 'digest_size', None) == 0:
        return hashval.hexdigest(SHAKE_DIGEST_BYTES.get(hashval.name, 32))
    return hashval.hexdigest()


def digest_bytes(hash_name: str) -> int:
    """The length of ``hash_name``'s digests in bytes (SHAKE: :data:`SHAKE_DIGEST_BYTES`)."""
    return SHAKE_DIGEST_BYTES.get(hash_name) or new_hash(hash_name).digest_size


#: Reads at least this long are hashed on the hashing thread; shorter ones inline.
ASYNC_HASH_MIN = 64 * 1024
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


class OutputBuffer:
    """The output buffer being filled: ``view[:pos]`` is ready, ``flushed`` bytes went out before."""

    __slots__ = ('view', 'pos', 'flushed', 'acquire')

    def __init__(self, acquire: Callable[[], memoryview]) -> None:
        self.acquire = acquire
        self.view = acquire()
        self.pos = 0
        self.flushed = 0

    def full_chunk(self) -> memoryview:
        """Hand out the full buffer and continue in a fresh one."""
        chunk = self.view
        self.flushed += len(chunk)
        self.view = self.acquire()
        self.pos = 0
        return chunk

    def put(self, data: Any) -> Iterator[memoryview]:
        """Copy ``data`` in, yielding each buffer that fills up."""
        data = memoryview(data).cast('B')
        while data:
            if self.pos == len(self.view):
                yield self.full_chunk()
            count = min(len(data), len(self.view) - self.pos)
            self.view[self.pos:self.pos + count] = data[:count]
            self.pos += count
            data = data[count:]
