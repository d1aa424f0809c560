"""Talk to cartd: request a cart, wait until it is staged, stream it, delete it."""
from __future__ import annotations

import io
import json
import logging
import time
import uuid
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import requests

from pacifica._client.common import CommonBase
from pacifica._client.config import TransferConfig
from pacifica._client.endpoints import CARTD_SERVER, complete_url
from pacifica._client.exceptions import (
    CartDownloadError, CartFailedError, CartRequestError, CartTimeoutError, ConfigurationError,
    HTTPStatusError, RequestTimeout, TransportError,
)
from pacifica._client.failures import reply_excerpt, reply_redact
from pacifica._client.keywords import drop_unknown_keywords
from pacifica._client.redact import redact_auth, redact_url
from pacifica._client.retry import RETRY_STATUSES
from pacifica._client.rules import seconds
from pacifica._client.transport import HttpClient

from ._records import CartFile

LOGGER = logging.getLogger(__name__)

#: Every status: the cart calls judge the reply themselves.
ANY_STATUS = range(100, 600)
#: Keywords CartAPI understands.
CART_API_KEYWORDS = frozenset({'cart_api_url', 'proto', 'addr', 'port', 'auth', 'session', 'extra_args',
                               'timeout', 'config'})


#: Cart files encoded by one ``json.dumps`` call: one call per file costs more than the encoding.
_ENCODE_BATCH = 1000


def _cart_body(files: Iterable[CartFile], extra_args: Mapping[str, Any]) -> Tuple[bytes, int]:
    """``{"fileids": [...], **extra_args}`` as JSON bytes, and the number of files.

    Encoded a batch of files at a time into one buffer, so a 100,000-file cart
    costs about one copy of its text rather than a list of dicts plus a str
    plus bytes.
    """
    body = io.BytesIO()
    body.write(b'{"fileids": [')
    count = 0
    batch: List[CartFile] = []
    for item in files:
        batch.append(item)
        if len(batch) == _ENCODE_BATCH:
            count = _write_batch(body, batch, count)
    count = _write_batch(body, batch, count)
    body.write(b']')
    if extra_args:
        body.write(b', ' + json.dumps(dict(extra_args)).encode('utf-8')[1:-1])
    body.write(b'}')
    return body.getvalue(), count


def _write_batch(body: io.BytesIO, batch: List[CartFile], count: int) -> int:
    """Append ``batch``'s items to the JSON list in ``body`` (after ``count`` items) and empty it."""
    if batch:
        if count:
            body.write(b', ')
        body.write(json.dumps(batch).encode('utf-8')[1:-1])  # the list's items, ', '-separated
        count += len(batch)
        batch.clear()
    return count


class CartAPI(CommonBase):
    """Client of the cartd REST API.

    ``CartAPI(cart_api_url=None, **kwargs)``: the URL is ``cart_api_url``,
    else the environment variable ``CARTD_CART_API_URL``, else
    ``<proto>://<addr>:<port>`` from the keywords or ``CARTD_PROTO``,
    ``CARTD_ADDR``, ``CARTD_PORT`` (``http``, ``127.0.0.1``, ``8081``).

    Keywords: ``session`` (a requests session to use instead of this
    object's own retrying one), ``auth`` (a dict of extra requests keyword
    arguments such as ``{'auth': (user, password), 'verify': ca_file}``),
    ``extra_args`` (a dict merged into every cart request body, e.g.
    ``{'bundle': True}``), ``timeout`` and ``config`` (see
    :class:`~pacifica._client.config.TransferConfig`).
    """

    _http: HttpClient
    _proto: str
    _addr: str
    _port: str
    _cart_api_url: str

    def __init__(self, cart_api_url: Optional[str] = None, **kwargs: Any) -> None:
        kwargs = drop_unknown_keywords('CartAPI()', kwargs, CART_API_KEYWORDS)
        if cart_api_url is not None:
            kwargs['cart_api_url'] = cart_api_url
        self._http = HttpClient.from_keywords(kwargs)  # ``session``, when given, replaces its own
        self._server_url([*CARTD_SERVER, ('cart_api_url', None)], 'CARTD', kwargs)
        self._cart_api_url = complete_url(self._cart_api_url, self._proto, self._addr, self._port, '', 'cart API URL')
        self._extra_args = self._check_extra_args(kwargs.get('extra_args'))
        self._setup_requests_session()
        LOGGER.debug('CartAPI URL %s auth %s', redact_url(self._cart_api_url), redact_auth(self._http.auth))

    @staticmethod
    def _check_extra_args(extra_args: Any) -> Dict[str, Any]:
        if extra_args is None:
            return {}
        if not isinstance(extra_args, Mapping):
            raise ConfigurationError('extra_args must be a dict, not {}'.format(type(extra_args).__name__))
        if 'fileids' in extra_args:
            raise ConfigurationError("extra_args cannot set 'fileids': the file list comes from the record")
        try:
            json.dumps(dict(extra_args))
        except (TypeError, ValueError) as err:
            raise ConfigurationError('extra_args must be JSON-serializable: {}'.format(err)) from None
        return dict(extra_args)

    @property
    def auth(self) -> Dict[str, Any]:
        """The dict of extra requests keyword arguments sent with every request."""
        return self._http.auth

    @auth.setter
    def auth(self, auth: Dict[str, Any]) -> None:
        self._http.auth = auth

    @property
    def config(self) -> TransferConfig:
        """The :class:`~pacifica._client.config.TransferConfig` this client runs with (timeout included)."""
        return self._http.config

    @property
    def cart_api_url(self) -> str:
        """The cartd endpoint under which carts are created."""
        return self._cart_api_url

    @property
    def extra_args(self) -> Dict[str, Any]:
        """Fields added to every cart request body."""
        return self._extra_args

    def new_cart_url(self) -> str:
        """A fresh cart URL: the API URL plus a random UUID."""
        return '{}/{}'.format(self._cart_api_url.rstrip('/'), uuid.uuid4())

    def setup_cart(self, yield_files: Callable[[], Iterable[CartFile]]) -> str:
        """Ask cartd to stage the files ``yield_files()`` produces; return the new cart's URL.

        The body is ``{"fileids": [...], **extra_args}``. cartd answers 201;
        anything else raises CartRequestError with the status (``status_code``)
        and the start of the reply. The POST is never sent twice once its
        bytes went out (each arrival records a cart).
        """
        cart_url = self.new_cart_url()
        body, count = _cart_body(yield_files(), self._extra_args)
        try:
            resp = self._http.call('POST', cart_url, accept=(201,), data=body,
                                   headers={'Content-Type': 'application/json'})
        except HTTPStatusError as err:
            raise CartRequestError('cart request POST {} answered HTTP {}, not 201{}'.format(
                redact_url(cart_url), err.status_code, ': ' + err.body if err.body else ''),
                err.status_code, err.body, err.url) from None
        LOGGER.debug('cart %s requested with %d file(s), HTTP %s', redact_url(cart_url), count, resp.status_code)
        return cart_url

    def wait_for_cart(self, cart_url: str, timeout: float = 120) -> str:
        """Poll ``HEAD cart_url`` until the cart is ready and return ``cart_url``.

        ``timeout`` is wall-clock seconds (including the time the HEADs
        take): past it, CartTimeoutError. State ``error``, or HEAD answering
        another status than 204 (404: unknown cart), raise CartFailedError
        with that status and cartd's ``X-Pacifica-Message``. A busy answer (429, 502, 503, 504 after the
        core's retries) is not a verdict on the cart: polling goes on.
        """
        deadline = time.monotonic() + seconds(timeout, name='timeout')
        where = redact_url(cart_url)
        config = self._http.config
        last = None
        while True:
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                resp = self._http.call('HEAD', cart_url, accept=ANY_STATUS, max_seconds=remaining, timeout=(
                    min(config.connect_timeout, remaining), min(config.read_timeout, remaining))).response
            except TransportError as err:
                # A poll cut short by this wait's own deadline is the wait timing out, not a failure.
                clipped = remaining < config.deadline and isinstance(err, RequestTimeout)
                if time.monotonic() < deadline and not clipped:
                    raise
                raise CartTimeoutError('cart {} was not ready within {:g} s (last status {!r}; the next poll '
                                       'did not finish in time: {})'.format(where, timeout, last, err)) from None
            state = resp.headers.get('X-Pacifica-Status', '')
            # What is shown is redacted; the decisions below read the header itself.
            status = last = reply_redact(resp, state)
            message = reply_redact(resp, resp.headers.get('X-Pacifica-Message', ''))
            LOGGER.debug('cart %s: HTTP %s, status %r, message %r', where, resp.status_code, status, message)
            if resp.status_code == 204 and state == 'ready':
                return cart_url
            if resp.status_code in RETRY_STATUSES:
                # The core already retried; cartd (or a proxy) is busy, which says nothing about the cart.
                LOGGER.debug('cart %s: busy (HTTP %s), polling on until the deadline', where, resp.status_code)
                status = last = 'busy (HTTP {})'.format(resp.status_code)
            elif resp.status_code == 404:
                raise CartFailedError('cart {} is unknown to cartd (HEAD answered 404){}'.format(
                    where, ': ' + message if message else ''), 404, message, where)
            elif state == 'error' or resp.status_code != 204:
                raise CartFailedError('cart {} failed (HEAD answered HTTP {}, status {!r}){}'.format(
                    where, resp.status_code, status or None, ': ' + message if message else ''),
                    resp.status_code, message, where)
            left = deadline - time.monotonic()
            if left <= 0:
                raise CartTimeoutError('cart {} was not ready within {:g} s (last status {!r}{})'.format(
                    where, timeout, status or None, ', ' + message if message else ''))
            pause = min(config.poll_interval, left)
            LOGGER.debug('cart %s is not ready; next poll in %.1f s', where, pause)
            time.sleep(pause)

    def open_cart(self, cart_url: str, filename: str) -> requests.Response:
        """Start ``GET cart_url?filename=...`` and return the streamed reply (status 200).

        Any other status raises CartDownloadError (202 means cartd says the
        cart is not ready yet).
        """
        resp = self._http.call('GET', cart_url, accept=ANY_STATUS, bulk=True, stream=True,
                               params={'filename': filename}).response
        if resp.status_code != 200:
            body = reply_excerpt(resp, streamed=True)
            resp.close()
            reason = 'the cart is not ready' if resp.status_code == 202 else 'download refused'
            raise CartDownloadError('cart {} GET answered HTTP {} ({}){}'.format(
                redact_url(cart_url), resp.status_code, reason, ': ' + body if body else ''),
                status_code=resp.status_code, body=body, url=redact_url(cart_url))
        return resp

    def delete_cart(self, cart_url: str) -> None:
        """``DELETE cart_url``: cartd removes the staged files (404 means already gone).

        Another status raises CartFailedError.
        """
        resp = self._http.call('DELETE', cart_url, accept=ANY_STATUS).response
        if resp.status_code not in (200, 204, 404):
            body = reply_excerpt(resp)
            raise CartFailedError('cart {} DELETE answered HTTP {}: {}'.format(
                redact_url(cart_url), resp.status_code, body), resp.status_code, body, redact_url(cart_url))
        LOGGER.debug('cart %s deleted (HTTP %s)', redact_url(cart_url), resp.status_code)
