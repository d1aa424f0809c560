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

Everything else, from the cart request to verified files in place, is
:class:`~.cartfetch.CartFetch`'s (its module tells the data path top to
bottom); the records become file entries in :mod:`._records`.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Set, Tuple

from pacifica._client.exceptions import ConfigurationError, RecordError, UsageError
from pacifica._client.keywords import drop_unknown_keywords
from pacifica._client.redact import redact_url
from pacifica._client.rules import is_absolute, seconds

from ._records import FileEntry, cloudevent_entries, path_parts, transaction_entries, unique_entries
from ._extract import ProgressCallback
from ._target import Parts, Target
from .cartapi import CART_API_KEYWORDS, CartAPI
from .cartfetch import CartFetch

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
    if is_absolute(filename):
        raise ConfigurationError('filename {!r} must be relative to the download location'.format(filename))
    try:
        return path_parts(filename, 'filename')
    except RecordError as err:
        raise ConfigurationError(str(err)) from None


def _answer(location_given: bool, paths: List[str]) -> Optional[List[str]]:
    """What a call returns: None in the 0.4.x convention (``sys.exit(result)`` must mean success)."""
    return None if location_given else list(paths)


class _Call(NamedTuple):
    """One download call, parsed and checked: where the files go, which files, the options, the convention."""

    target: Target
    filename: str
    entries: List[FileEntry]
    timeout: float
    callback: Optional[ProgressCallback]
    delete_cart: bool
    #: True in the 0.4.x convention, where the call names the location.
    location_given: bool


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
        filename = 'data' if filename is None else filename
        target = Target(self._resolve_location(location, '_download_from_url'), _filename_parts(filename))
        placed = CartFetch(self.cart_api, target, filename).receive(cart_url, None)
        self.paths_written = [target.path(parts) for parts in placed]
        return _answer(location is not None, self.paths_written)

    # -- argument handling -------------------------------------------------
    def _resolve_location(self, location: Any, method: str) -> str:
        if location is None:
            location = self.location
        if location is None:
            raise UsageError(
                '{0}() has no download location: call {0}(location, ...) or build the Downloader '
                'as Downloader(location, cart_api_url)'.format(method))
        return _location(location)

    def _parse_call(self, method: str, record_name: str, entries_of: Callable[[Any], List[FileEntry]],
                    args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Call:
        """Parse a download call of either convention, its record and its options, once."""
        location, record, options = _sort_arguments(method, record_name, args, kwargs)
        merged = dict(DOWNLOAD_DEFAULTS)
        # the warning points at the caller of transactioninfo()/cloudevent(), past _download_record
        merged.update(drop_unknown_keywords('{}()'.format(method), options, _option_names(record_name),
                                            stacklevel=4))
        if merged['callback'] is not None and not callable(merged['callback']):
            raise ConfigurationError('callback must be callable, not {!r}'.format(merged['callback']))
        root = self._resolve_location(location, method)
        entries = entries_of(record)
        target = Target(root, _filename_parts(merged['filename']))
        # 0.4.x ran int(timeout): a number written as text is taken too.
        timeout = seconds(merged['timeout'], name='timeout', text=True)
        return _Call(target, merged['filename'], unique_entries(entries), timeout, merged['callback'],
                     merged['delete_cart'], location is not None)

    # -- the download ------------------------------------------------------
    def _download_record(self, method: str, record_name: str, entries_of: Callable[[Any], List[FileEntry]],
                         args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Optional[List[str]]:
        """One download method: parse the call, fetch the record's files, answer per convention."""
        self.paths_written = []
        call = self._parse_call(method, record_name, entries_of, args, kwargs)
        CartFetch(self.cart_api, call.target, call.filename, call.callback).fetch(
            call.entries, call.timeout, call.delete_cart)
        self.paths_written = [call.target.path(entry.parts) for entry in call.entries]
        return _answer(call.location_given, self.paths_written)


def _sort_arguments(method: str, record_name: str, args: Tuple[Any, ...],
                    kwargs: Mapping[str, Any]) -> Tuple[Any, Any, Dict[str, Any]]:
    """Sort a download call's arguments into location (None: the constructor's), record and options.

    A record (a mapping) first is the seed form ``(record, filename)``; a
    path first is the 0.4.x form ``(location, record, **options)``.
    """
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
    return location, record, options
