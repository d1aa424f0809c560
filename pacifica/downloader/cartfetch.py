"""CartFetch: one cart's whole fetch, from the request to verified files in place.

The data path of one download, top to bottom:

1. Files already downloaded and verified are set aside
   (:func:`~._target.scan_existing`: resume).
2. cartd is asked for a cart of the rest (``CartAPI.setup_cart``) and polled
   until it is ready (``CartAPI.wait_for_cart``).
3. A receiving thread reads the tar stream with ``readinto`` into a few
   reusable buffers of ``chunk_size`` bytes; no bytes object is allocated
   per read. The buffers belong to the :class:`CartFetch` alone.
4. On the calling thread, :class:`~._tarstream.TarStreamReader` parses the
   headers and hands each member's data out as memoryview slices of those
   buffers; :class:`~._extract.Extraction` hashes every slice and passes it
   to :class:`~._partwriter.PartWriter`, which writes big members on a third
   thread. Hashing, socket reads and writes release the GIL, so on two
   cores they overlap.
5. A buffer is refilled only after the reader asked for the next chunk and
   the writer has written every slice of it (:meth:`PartWriter.fence`), so
   no byte is copied between the socket and the ``write`` call.
6. When the stream ends, every file is checked, then the cart's staging
   folder is moved into place a subtree at a time (:mod:`._stage`); on
   failure unverified files go, verified ones stay parked for the next call,
   and the folders made for the download are removed again when empty.
"""
from __future__ import annotations

import http.client
import logging
import queue
import socket
import threading
from typing import Any, Callable, List, Optional, Sequence, Tuple

from urllib3.exceptions import ReadTimeoutError

from pacifica._client.exceptions import ArchiveError, PacificaError, RecordError, RequestTimeout
from pacifica._client.redact import redact, redact_url

from ._creator import start_creator
from ._extract import Extraction, ProgressCallback
from ._partwriter import PartWriter
from ._records import FileEntry, path_parts, yield_cart_files
from ._tarstream import TarStreamReader
from ._target import Parts, Target, scan_existing
from .cartapi import CartAPI

LOGGER = logging.getLogger(__name__)

#: Receive buffers per fetch: memory is this many times ``chunk_size``.
RECEIVE_BUFFERS = 4
#: Seconds the receiving thread sleeps at most between two looks at whether the fetch was abandoned.
_WAKE_INTERVAL = 0.1


class CartFetch:
    """Fetch one cart into ``target``: request, wait, receive, extract, verify, put in place.

    ``filename`` is the download methods' option (the cart's file name at
    cartd, and the folder below the location); ``progress`` is called with
    ``(bytes_done, bytes_total or None)``. One object serves one cart:
    make a new one for the next.
    """

    def __init__(self, cart_api: CartAPI, target: Target, filename: str,
                 progress: Optional[ProgressCallback] = None) -> None:
        self.cart_api = cart_api
        self.target = target
        self.filename = filename
        self.progress = progress
        self._writer = PartWriter()
        self._free: 'queue.Queue[Tuple[bytearray, Optional[threading.Event]]]' = queue.Queue()
        self._filled: 'queue.Queue[Tuple[Any, int]]' = queue.Queue()  # at most RECEIVE_BUFFERS items
        self._lent: Optional[bytearray] = None  # the buffer the tar reader is reading from
        self._finished = False
        self._stopped = threading.Event()

    def fetch(self, entries: Sequence[FileEntry], timeout: float, delete_cart: bool = False) -> None:
        """Place every file of ``entries`` (unique by path) under the target, verified.

        Files already there and verified are kept; the rest come in one cart,
        which is deleted afterwards when ``delete_cart`` is true.
        """
        existing = scan_existing(self.target, entries)
        if existing.in_place or existing.parked:
            LOGGER.info('%d of %d file(s) already downloaded and verified under %s', len(existing.in_place) +
                        len(existing.parked), len(entries), self.target.root)
        if not existing.missing:
            Extraction(self.target, [], [self.target.filename_parts], writer=self._writer).commit(existing.parked)
            return
        cart_url = self.cart_api.setup_cart(yield_cart_files(existing.missing))
        self.cart_api.wait_for_cart(cart_url, timeout)
        self.receive(cart_url, existing.missing, existing.parked)
        if delete_cart:
            try:
                self.cart_api.delete_cart(cart_url)
            except PacificaError as err:  # the files are complete; only the server keeps a copy
                LOGGER.warning('download verified, but the cart could not be deleted: %s', err)

    def receive(self, cart_url: str, entries: Optional[Sequence[FileEntry]],
                parked: Sequence[FileEntry] = ()) -> List[Parts]:
        """Stream the staged cart into the target; every file verified before any takes its final name.

        ``entries`` None keeps every safe regular file, unverified (there is
        no record to check against). ``parked`` files, verified earlier, are
        put in place with the others. Returns the files now in place, as path
        parts below the target.
        """
        small = sum(1 for entry in entries if entry.size is None or entry.size < PartWriter.BACKGROUND_SIZE
                    ) if entries is not None else 0
        self._writer = PartWriter(creator=start_creator(small))
        extraction = Extraction(self.target, entries, _prefixes(self.target, cart_url, self.filename),
                                self.progress, self._writer)
        try:
            resp = self.cart_api.open_cart(cart_url, self.filename)
        except BaseException:
            extraction.abort()  # nothing written yet: this ends the part-file process
            raise
        chunk_size = self.cart_api.config.chunk_size
        receiver = self._start_receiving(_body_readinto(resp), chunk_size)
        try:
            extraction.run(TarStreamReader(self._next_chunk, chunk_size))
            extraction.verify()
            placed = extraction.commit(parked)
        except BaseException:
            self._abandon(resp, receiver)
            extraction.abort()
            self.target.remove_created()  # those holding verified files for a resume stay
            raise
        finally:
            resp.close()
        LOGGER.debug('cart %s: %d file(s) in place under %s', redact_url(cart_url), len(placed), self.target.root)
        return placed

    # -- the receive buffers -------------------------------------------------
    def _start_receiving(self, readinto: Callable[[bytearray], int], chunk_size: int) -> threading.Thread:
        for _ in range(RECEIVE_BUFFERS):
            self._free.put((bytearray(chunk_size), None))
        thread = threading.Thread(target=self._receive, args=(readinto,), name='pacifica-cart-receiver',
                                  daemon=True)
        thread.start()
        return thread

    def _receive(self, readinto: Callable[[bytearray], int]) -> None:
        """The receiving thread: fill a free buffer completely, queue it, take the next free one."""
        try:
            while not self._stopped.is_set():
                try:
                    buffer, written = self._free.get(timeout=_WAKE_INTERVAL)
                except queue.Empty:
                    continue
                while written is not None and not written.wait(_WAKE_INTERVAL):
                    if self._stopped.is_set():
                        return
                count = readinto(buffer)
                self._filled.put((buffer, count))
                if not count:
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consuming thread
            self._filled.put((err, 0))

    def _next_chunk(self, _size: int) -> Any:
        """The tar reader's ``read``: the next filled chunk as a memoryview, ``b''`` at the end.

        Asking for the next chunk means the reader is done with the previous
        one; its buffer is refilled once the writer is done with it too.
        Errors of the receiving thread are re-raised here.
        """
        if self._lent is not None:
            self._free.put((self._lent, self._writer.fence()))
            self._lent = None
        if self._finished:
            return b''
        item, count = self._filled.get()
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        if not count:
            self._finished = True
            return b''
        self._lent = item
        return memoryview(item)[:count]

    def _abandon(self, resp: Any, receiver: threading.Thread) -> None:
        """Stop receiving: wake the receiving thread (blocked in a read, maybe) and let it end."""
        self._stopped.set()
        _, sock = _plain_http_body(resp)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        receiver.join(timeout=5)


def _prefixes(target: Target, cart_url: str, filename: str) -> List[Parts]:
    """The first name components cartd may put before the files' paths in this cart."""
    cart_uid = cart_url.rstrip('/').rsplit('/', 1)[-1]
    prefixes = [target.filename_parts, (cart_uid,)]
    if '.tar' in filename:  # cartd names the top directory after the filename minus every '.tar'
        try:
            prefixes.append(path_parts(filename.replace('.tar', ''), 'filename'))
        except RecordError:
            pass
    return prefixes


# -- the reply body ---------------------------------------------------------------
def _plain_http_body(resp: Any) -> Tuple[Optional[http.client.HTTPResponse], Any]:
    """urllib3's insides that make the fast body read possible: ``(http.client response, socket)``.

    This is the one place that touches urllib3's private attributes. The
    http.client response is given only when the body needs no decoding and
    urllib3 has read none of it yet; then its ``readinto`` fills our buffers
    straight from the socket. The socket lets an abandoned fetch wake a
    blocked read. Either is None when this urllib3 does not have it; the
    callers then take the public way (``raw.read``; waiting for the read).
    """
    raw = getattr(resp, 'raw', None)
    fp = getattr(raw, '_fp', None)
    encoding = resp.headers.get('Content-Encoding', 'identity').strip().lower()
    plain = (isinstance(fp, http.client.HTTPResponse) and encoding in ('', 'identity')
             and not getattr(raw, '_fp_bytes_read', 0))
    sock = getattr(getattr(raw, '_connection', None), 'sock', None)
    return (fp if plain else None), (sock if callable(getattr(sock, 'shutdown', None)) else None)


def _body_readinto(resp: Any, fast: bool = True) -> Callable[[bytearray], int]:
    """``readinto(buffer)``: fill ``buffer`` from the reply body (short only at the end); errors in the tree.

    With ``fast`` and a body that needs no decoding, the bytes go from the
    socket straight into ``buffer`` through http.client's ``readinto`` (which
    also undoes chunked transfer encoding), bypassing urllib3's read path and
    its per-read allocations (see :func:`_plain_http_body`). Otherwise
    urllib3 reads and decodes, and the result is copied in.
    """
    body = _plain_http_body(resp)[0] if fast else None
    raw = resp.raw
    received = [0]

    def fill(view: memoryview) -> int:
        if body is not None:
            count = body.readinto(view)
            if not count and body.length:  # http.client ends a short Content-Length body quietly
                raise http.client.IncompleteRead(b'', body.length)
            return count
        data = raw.read(len(view), decode_content=True)
        view[:len(data)] = data
        return len(data)

    def readinto(buffer: bytearray) -> int:
        view = memoryview(buffer)
        filled = 0
        try:
            while filled < len(view):
                count = fill(view[filled:])
                if not count:
                    break
                filled += count
        except Exception as err:  # noqa: BLE001 - urllib3/http.client/socket errors of many kinds
            done = received[0] + filled
            if isinstance(err, (ReadTimeoutError, TimeoutError, socket.timeout)):
                raise RequestTimeout('the cart stream stalled after {} bytes: {}'.format(
                    done, type(err).__name__)) from None
            raise ArchiveError('the cart stream broke off after {} bytes: {}: {}'.format(
                done, type(err).__name__, redact(str(err)))) from None
        received[0] += filled
        return filled
    return readinto
