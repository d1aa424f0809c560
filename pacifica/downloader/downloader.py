"""The Downloader: from a transaction info or cloud event to verified files on disk.

One class serves both generations of the public API:

=================  ===============================================  ==========================================
                   seed documents (0.3.x)                           0.4.x (pacifica-cli)
=================  ===============================================  ==========================================
constructor        ``Downloader(location, cart_api_url, **kw)``     ``Downloader(**kw)``
transaction        ``transactioninfo(transinfo, filename='data')``  ``transactioninfo(location, transinfo, **kw)``
cloud event        ``cloudevent(cloudevent, filename='data')``      ``cloudevent(location, cloudevent, **kw)``
helper             ``_download_from_url(cart_url, filename)``       ``_download_from_url(location, cart_url, filename)``
=================  ===============================================  ==========================================

The download methods tell the two apart by their first argument: a record
(a dict) means the seed form, a path means the 0.4.x form.

The data path of one download, top to bottom:

1. The record becomes a list of :class:`~._records.FileEntry` tuples that
   reuse the record's strings (memory stays near the caller's own record).
   Files already downloaded and verified are set aside (resume).
2. cartd is asked for a cart of the rest (``CartAPI.setup_cart``) and polled
   until it is ready.
3. :class:`Receiver` reads the tar stream on its own thread with
   ``readinto`` into four reusable buffers of ``chunk_size`` bytes; no bytes
   object is allocated per read.
4. On the calling thread, :class:`~._tarstream.TarStreamReader` parses the
   headers and hands each member's data out as memoryview slices of those
   buffers; :class:`~._extract.Extraction` hashes every slice and passes it
   to :class:`~._extract.PartWriter`, which writes big members on a third
   thread. Hashing, socket reads and writes release the GIL, so on two
   cores they overlap.
5. A buffer goes back to the receiver only after the writer has written the
   last slice of it (``PartWriter.recycle``), so no byte is copied between
   the socket and the ``write`` call.
6. When the stream ends, every file is checked, then renamed into place.
"""
from __future__ import annotations

import http.client
import logging
import os
import queue
import socket
import threading
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from urllib3.exceptions import ReadTimeoutError

from pacifica._client.exceptions import (
    ArchiveError, ConfigurationError, PacificaError, RecordError, RequestTimeout, UsageError,
)
from pacifica._client.redact import redact, redact_url
from pacifica._client.keywords import drop_unknown_keywords
from pacifica._client.rules import seconds

from ._extract import Extraction, Parts, Progress, Target, scan_existing
from ._records import FileEntry, cloudevent_entries, path_parts, transaction_entries, yield_cart_files
from ._tarstream import TarStreamReader
from .cartapi import CART_API_KEYWORDS, CartAPI

LOGGER = logging.getLogger(__name__)

#: Keyword options of the download methods, with their defaults.
DOWNLOAD_DEFAULTS: Dict[str, Any] = {'filename': 'data', 'timeout': 120, 'callback': None, 'delete_cart': False}
_MISSING = object()
PathArg = Any  # str, bytes or os.PathLike


def _option_names(record_name: str) -> Set[str]:
    """Every keyword a download method understands (the accepted list of the unknown-keyword warning)."""
    return {'location', record_name, *DOWNLOAD_DEFAULTS}


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, bytes, os.PathLike))


def _looks_like_url(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith(('http://', 'https://'))


def _location(value: Any) -> str:
    if not _is_path(value):
        raise UsageError('the download location must be a path (str or os.PathLike), not {}'.format(
            type(value).__name__))
    text = os.fsdecode(os.fspath(value))
    if not text:
        raise UsageError('the download location is an empty path')
    return text


def _filename_parts(filename: Any) -> Parts:
    """The ``filename`` option as directory components below the location."""
    if not isinstance(filename, str) or not filename:
        raise ConfigurationError('filename must be a non-empty string, not {!r}'.format(filename))
    if filename.startswith('/') or (os.name == 'nt' and (filename.startswith('\\') or filename[1:2] == ':')):
        raise ConfigurationError('filename {!r} must be relative to the download location'.format(filename))
    try:
        return path_parts(filename, 'filename')
    except RecordError as err:
        raise ConfigurationError(str(err)) from None


def _timeout(value: Any) -> float:
    """The ``timeout`` option; as 0.4.x ran int(timeout) on it, a number in a string is taken too."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            # int('soon') raised ValueError in 0.4.x: text is a value that cannot be used, not a wrong type.
            raise ConfigurationError('timeout must be a number of seconds > 0, not {!r}'.format(value)) from None
    return seconds(value, name='timeout')


def _unique_entries(entries: Sequence[FileEntry]) -> List[FileEntry]:
    """Drop exact repeats; refuse two different files for one path, or a file where a directory must be."""
    by_parts: Dict[Parts, FileEntry] = {}
    for entry in entries:
        other = by_parts.get(entry.parts)
        if other is None:
            by_parts[entry.parts] = entry
        elif other != entry:
            raise RecordError('files {!r} and {!r} both go to {!r}'.format(other.id, entry.id, '/'.join(entry.parts)))
    for parts, entry in by_parts.items():
        for depth in range(1, len(parts)):
            if parts[:depth] in by_parts:
                raise RecordError('file {!r} ({!r}) sits below file {!r}, which cannot also be a directory'.format(
                    entry.id, '/'.join(parts), by_parts[parts[:depth]].id))
    return list(by_parts.values())


class _Call(NamedTuple):
    """One download call's arguments, sorted: where to, what, with which options, and in which convention."""

    location: str
    record: Any
    options: Dict[str, Any]
    #: True in the 0.4.x convention, where the call names the location.
    location_given: bool

    def result(self, paths: List[str]) -> Optional[List[str]]:
        """What the call returns: None in the 0.4.x convention (``sys.exit(result)`` must mean success)."""
        return None if self.location_given else list(paths)


class Downloader:
    """Download the files of a transaction info or cloud event through cartd, verified and safely.

    ``Downloader(location, cart_api_url, **kwargs)`` (seed documents) or
    ``Downloader(**kwargs)`` (0.4.x). Keywords go to
    :class:`~pacifica.downloader.cartapi.CartAPI`: ``cart_api_url``,
    ``proto``, ``addr``, ``port``, ``auth``, ``session``, ``extra_args``,
    ``timeout``, ``config``.

    Download methods take the keyword options ``filename`` (the directory
    under ``location`` the files go to, default ``'data'``), ``timeout``
    (seconds to wait for cartd to stage the cart, default 120), ``callback``
    (called with ``(bytes_done, bytes_total)``; ``bytes_total`` is None when
    the record lacks file sizes) and ``delete_cart`` (remove the cart from
    cartd after a verified download, default False).

    After each call, :attr:`paths_written` lists the files' paths,
    ``<location>/<filename>/<subdir>/<name>``, in record order. Called the
    0.4.x way (location as an argument) a method returns None, as 0.4.x did:
    ``pacifica-cli`` passes the result to ``sys.exit``, where anything but
    None means failure. Called the seed way (location from the constructor)
    it returns the same list as :attr:`paths_written`.
    """

    #: Paths of the files the last download call placed, in record order (reset at every call).
    paths_written: List[str]

    def __init__(self, location: Optional[PathArg] = None, cart_api_url: Optional[str] = None,
                 **kwargs: Any) -> None:
        if location is not None and cart_api_url is None and _looks_like_url(location):
            raise UsageError('Downloader({!r}): a URL where the download location belongs; pass '
                             'Downloader(location, cart_api_url) or Downloader(cart_api_url=...)'.format(
                                 redact_url(location)))
        self.location: Optional[str] = _location(location) if location is not None else None
        self.cart_api = CartAPI(cart_api_url, **drop_unknown_keywords('Downloader()', kwargs, CART_API_KEYWORDS))
        self.paths_written = []

    @property
    def auth(self) -> Dict[str, Any]:
        """The requests keyword arguments sent with every request (the CartAPI's ``auth``)."""
        return self.cart_api.auth

    @auth.setter
    def auth(self, auth: Dict[str, Any]) -> None:
        self.cart_api.auth = auth

    # -- public download methods -------------------------------------------
    def transactioninfo(self, *args: Any, **kwargs: Any) -> Optional[List[str]]:
        """Download the files of a Policy transaction info.

        ``transactioninfo(transinfo, filename='data')`` writes under the
        constructor's location and returns the files' paths;
        ``transactioninfo(location, transinfo, **options)`` writes under
        ``location`` and returns None (``sys.exit``-safe, as 0.4.x). Either
        way the paths are in :attr:`paths_written` afterwards.
        """
        return self._download_record('transactioninfo', 'transinfo', transaction_entries, args, kwargs)

    def cloudevent(self, *args: Any, **kwargs: Any) -> Optional[List[str]]:
        """Download the files of a cloud event from the Pacifica Notifications service.

        ``cloudevent(cloudevent, filename='data')`` writes under the
        constructor's location and returns the files' paths;
        ``cloudevent(location, cloudevent, **options)`` writes under
        ``location`` and returns None (``sys.exit``-safe, as 0.4.x). Either
        way the paths are in :attr:`paths_written` afterwards.
        """
        return self._download_record('cloudevent', 'cloudevent', cloudevent_entries, args, kwargs)

    def _download_from_url(self, *args: Any, **kwargs: Any) -> Optional[List[str]]:
        """Extract an already staged cart: ``(cart_url, filename)`` or ``(location, cart_url, filename)``.

        Without a record there is nothing to verify against: every safe
        regular file of the cart is kept (the other safety rules apply).
        Returns the paths for the first form and None for the second, like
        the download methods; :attr:`paths_written` has them either way.
        """
        self.paths_written = []
        kwargs = dict(kwargs)
        location = kwargs.pop('location', None)
        cart_url = kwargs.pop('cart_url', None)
        filename = kwargs.pop('filename', None)
        if kwargs:
            raise UsageError('_download_from_url() got unknown keyword(s): {}'.format(', '.join(sorted(kwargs))))
        positional = list(args)
        if positional and not _looks_like_url(positional[0]) and location is None:
            location = positional.pop(0)
        for name in ('cart_url', 'filename'):
            if positional:
                if (cart_url if name == 'cart_url' else filename) is not None:
                    raise UsageError('_download_from_url() got {} twice'.format(name))
                if name == 'cart_url':
                    cart_url = positional.pop(0)
                else:
                    filename = positional.pop(0)
        if positional:
            raise UsageError('_download_from_url() takes (cart_url, filename) or (location, cart_url, filename)')
        if not _looks_like_url(cart_url):
            raise UsageError('_download_from_url() needs the cart URL, got {!r}'.format(cart_url))
        call = _Call(self._resolve_location(location, '_download_from_url'), None,
                     {'filename': 'data' if filename is None else filename}, location is not None)
        target = Target(call.location, _filename_parts(call.options['filename']))
        placed = self._fetch(target, cart_url, call.options['filename'], None, (), None)
        self.paths_written = [target.path(parts) for parts in placed]
        return call.result(self.paths_written)

    # -- argument handling -------------------------------------------------
    def _resolve_location(self, location: Any, method: str) -> str:
        if location is None:
            location = self.location
        if location is None:
            raise UsageError(
                '{0}() has no download location: call {0}(location, ...) or build the Downloader '
                'as Downloader(location, cart_api_url)'.format(method))
        return _location(location)

    def _split_call(self, method: str, record_name: str, args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Call:
        """Sort a download call's arguments into location, record and options, for either convention."""
        options = dict(kwargs)
        location = options.pop('location', None)
        record = options.pop(record_name, _MISSING)
        positional = list(args)
        if positional and isinstance(positional[0], Mapping):  # seed form: (record, filename='data')
            if record is not _MISSING:
                raise UsageError('{}() got {} twice'.format(method, record_name))
            record = positional.pop(0)
            if positional:
                if 'filename' in options:
                    raise UsageError('{}() got filename twice'.format(method))
                options['filename'] = positional.pop(0)
        elif positional:  # 0.4.x form: (location, record, **options)
            if not _is_path(positional[0]):
                raise UsageError('{}() takes a {} dict or a download location first, not {}'.format(
                    method, record_name, type(positional[0]).__name__))
            if location is not None:
                raise UsageError('{}() got location twice'.format(method))
            location = positional.pop(0)
            if positional:
                if record is not _MISSING:
                    raise UsageError('{}() got {} twice'.format(method, record_name))
                record = positional.pop(0)
        if positional:
            raise UsageError('{}() got too many positional arguments'.format(method))
        if record is _MISSING:
            raise UsageError('{}() needs the {} to download'.format(method, record_name))
        merged = dict(DOWNLOAD_DEFAULTS)
        # the warning points at the caller of transactioninfo()/cloudevent(), past _download_record
        merged.update(drop_unknown_keywords('{}()'.format(method), options, _option_names(record_name),
                                            stacklevel=4))
        if merged['callback'] is not None and not callable(merged['callback']):
            raise ConfigurationError('callback must be callable, not {!r}'.format(merged['callback']))
        return _Call(self._resolve_location(location, method), record, merged, location is not None)

    # -- the download ------------------------------------------------------
    def _download_record(self, method: str, record_name: str, entries_of: Callable[[Any], List[FileEntry]],
                         args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Optional[List[str]]:
        """One download method: sort the arguments, download the record's files, answer per convention."""
        self.paths_written = []
        call = self._split_call(method, record_name, args, kwargs)
        self.paths_written = self._download_entries(call.location, entries_of(call.record), call.options)
        return call.result(self.paths_written)

    def _download_entries(self, location: str, entries: List[FileEntry], options: Mapping[str, Any]) -> List[str]:
        filename = options['filename']
        target = Target(location, _filename_parts(filename))
        timeout = _timeout(options['timeout'])
        entries = _unique_entries(entries)
        existing = scan_existing(target, entries)
        if existing.in_place or existing.parked:
            LOGGER.info('%d of %d file(s) already downloaded and verified under %s', len(existing.in_place) +
                        len(existing.parked), len(entries), target.root)
        if not existing.missing:
            Extraction(target, [], [target.filename_parts]).commit(existing.parked)
            return [target.path(entry.parts) for entry in entries]
        cart_url = self.cart_api.setup_cart(yield_cart_files(existing.missing))
        self.cart_api.wait_for_cart(cart_url, timeout)
        self._fetch(target, cart_url, filename, existing.missing, existing.parked, options['callback'])
        if options['delete_cart']:
            try:
                self.cart_api.delete_cart(cart_url)
            except PacificaError as err:  # the files are complete; only the server keeps a copy
                LOGGER.warning('download verified, but the cart could not be deleted: %s', err)
        return [target.path(entry.parts) for entry in entries]

    def _fetch(self, target: Target, cart_url: str, filename: str, entries: Optional[Sequence[FileEntry]],
               parked: Sequence[FileEntry], progress: Optional[Progress]) -> List[Parts]:
        """Stream the cart into ``target``; every file verified before any takes its final name.

        Returns the files now in place, as path parts below ``target``. On
        failure the directories made for the download are removed again,
        unless they hold something (such as a verified file kept for the
        next call).
        """
        cart_uid = cart_url.rstrip('/').rsplit('/', 1)[-1]
        prefixes = [target.filename_parts, (cart_uid,)]
        if '.tar' in filename:  # cartd names the top directory after the filename minus every '.tar'
            try:
                prefixes.append(path_parts(filename.replace('.tar', ''), 'filename'))
            except RecordError:
                pass
        extraction = Extraction(target, entries, prefixes, progress)
        resp = self.cart_api.open_cart(cart_url, filename)
        chunk_size = self.cart_api.config.chunk_size
        receiver = Receiver(_body_readinto(resp), chunk_size)
        try:
            extraction.run(TarStreamReader(receiver.read, chunk_size), receiver.give_back)
            extraction.verify()
            placed = extraction.commit(parked)
        except BaseException:
            receiver.stop(resp)
            extraction.abort()
            target.remove_created()  # those holding verified files for a resume stay
            raise
        finally:
            resp.close()
        LOGGER.debug('cart %s: %d file(s) in place under %s', redact_url(cart_url), len(placed), target.root)
        return placed


def _body_readinto(resp: Any) -> Callable[[bytearray], int]:
    """``readinto(buffer)``: fill ``buffer`` from the reply body (short only at the end); errors in the tree.

    When the body needs no decoding, the bytes go from the socket straight
    into ``buffer`` through http.client's ``readinto`` (which also undoes
    chunked transfer encoding), bypassing urllib3's read path and its
    per-read allocations. Otherwise urllib3 decodes and the result is copied in.
    """
    raw = resp.raw
    fp: Any = getattr(raw, '_fp', None)
    encoding = resp.headers.get('Content-Encoding', 'identity').strip().lower()
    direct = (isinstance(fp, http.client.HTTPResponse) and encoding in ('', 'identity')
              and not getattr(raw, '_fp_bytes_read', 0))
    received = [0]

    def fill(view: memoryview) -> int:
        if direct:
            count = fp.readinto(view)
            if not count and fp.length:  # http.client ends a short Content-Length body quietly
                raise http.client.IncompleteRead(b'', fp.length)
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


class Receiver:
    """Receive the cart on a second thread, into a few reusable buffers, while the caller hashes and writes.

    Socket reads, hashing and file writes all release the GIL, so on two
    cores receiving overlaps with the rest. The receiving thread fills a
    free buffer completely, queues it, and takes the next free one; the
    consumer hands each buffer back with :meth:`give_back` once nothing
    refers to its bytes any more. Memory is ``buffers * chunk_size``, and
    no buffer is allocated (or page-faulted in) per read.
    """

    def __init__(self, readinto: Callable[[bytearray], int], chunk_size: int, buffers: int = 4) -> None:
        self._readinto = readinto
        self._free: 'queue.Queue[bytearray]' = queue.Queue()
        for _ in range(buffers):
            self._free.put(bytearray(chunk_size))
        self._filled: 'queue.Queue[Tuple[Any, int]]' = queue.Queue()  # at most ``buffers`` items
        self._stopped = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, name='pacifica-cart-receiver', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopped.is_set():
                try:
                    buffer = self._free.get(timeout=0.1)
                except queue.Empty:
                    continue
                count = self._readinto(buffer)
                self._filled.put((buffer, count))
                if not count:
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consuming thread
            self._filled.put((err, 0))

    def read(self, _size: int) -> Any:
        """The next filled chunk as a memoryview, ``b''`` at the end; errors are re-raised here."""
        if self._finished:
            return b''
        item, count = self._filled.get()
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        if not count:
            self._finished = True
            return b''
        return memoryview(item)[:count]

    def give_back(self, chunk: memoryview) -> None:
        """Let the receiving thread refill the buffer under ``chunk``."""
        self._free.put(chunk.obj)  # type: ignore[arg-type]

    def stop(self, resp: Any) -> None:
        """Abandon the stream: wake the receiving thread and let it end."""
        self._stopped.set()
        sock = getattr(getattr(getattr(resp, 'raw', None), '_connection', None), 'sock', None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
