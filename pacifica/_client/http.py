"""The one HTTP core under both packages: sessions, retries, deadlines, errors.

Retry policy
    Each client object owns one :class:`requests.Session` whose adapters use a
    :class:`PacificaRetry` (urllib3 ``Retry``). A request is repeated only when
    that is safe: GET, HEAD, PUT, DELETE and OPTIONS always; POST only where
    the caller declares it read-only (the Policy queries). Connection failures
    that happen before any byte was sent are retried for every method, since
    the server never saw the request; a POST that broke after it was sent
    (ingest upload, cart creation) is never sent again behind the caller's
    back. Statuses 429, 502, 503 and 504 are retried, obeying ``Retry-After``
    up to ``retry_after_max`` seconds. The backoff before retry ``n`` is::

        0                                               for n == 1
        min(backoff_max, backoff_factor * 2 ** (n - 1))  for n >= 2

Deadlines
    Socket timeouts alone cannot stop a server that trickles one byte a
    second. Every API call therefore runs under a deadline
    (:attr:`TransferConfig.deadline`): a watchdog thread shuts down the call's
    socket when it passes, and the retry sleeps never outlast it. Bulk
    transfers (the upload body, the cart stream) run without an overall
    deadline but fail when the socket stays silent for ``read_timeout``.

Errors
    requests/urllib3 exceptions and unacceptable statuses become the
    :mod:`~pacifica._client.exceptions` tree; no message carries credentials.
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Collection, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util.retry import Retry

from .config import TransferConfig
from .exceptions import (
    ConfigurationError, HTTPStatusError, InvalidResponseError, RequestTimeout,
    ServerConnectionError, TransportError,
)

LOGGER = logging.getLogger(__name__)

#: Methods whose repetition cannot change the server's state twice.
IDEMPOTENT_METHODS = frozenset({'GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'})
#: Statuses that mean "try again later".
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: URL schemes the servers speak.
SCHEMES = ('http', 'https')
#: Errors that mean "waited too long", wherever they sit in a wrapped error's chain.
_TIMEOUTS = (requests.Timeout, Urllib3TimeoutError, TimeoutError)
#: Keys of an ``auth`` dict whose values are secret and never shown.
SECRET_AUTH_KEYS = frozenset({'auth', 'cert', 'headers', 'cookies', 'proxies'})


# --------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------
def redact_url(url: str) -> str:
    """Return ``url`` with any ``user:password@`` replaced by ``***@``."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return '<unparsable URL>'
    if '@' not in parts.netloc:
        return str(url)
    host = parts.netloc.rsplit('@', 1)[1]
    return urlunsplit((parts.scheme, '***@' + host, parts.path, parts.query, parts.fragment))


def redact_auth(auth: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """Return a copy of an ``auth`` dict that is safe to print: secrets become ``'***'``."""
    return {key: ('***' if key in SECRET_AUTH_KEYS else value) for key, value in (auth or {}).items()}


# --------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------
def check_url(url: str, what: str = 'URL') -> str:
    """Return ``url`` if it is an absolute http(s) URL, else raise ConfigurationError."""
    try:
        parts = urlsplit(str(url))
    except ValueError as err:
        raise ConfigurationError('{} {!r} cannot be parsed: {}'.format(what, redact_url(url), err)) from None
    if parts.scheme not in SCHEMES or not parts.netloc:
        raise ConfigurationError('{} {!r} is not an absolute http:// or https:// URL'.format(what, redact_url(url)))
    return str(url)


def join_url(proto: Any, addr: Any, port: Any, path: Any = '') -> str:
    """Build ``proto://addr:port/path``; a bare IPv6 address gets its brackets."""
    host = str(addr)
    if ':' in host and not host.startswith('['):
        host = '[{}]'.format(host)
    return '{}://{}:{}{}'.format(proto, host, port, path or '')


# --------------------------------------------------------------------------
# Deadlines: a watchdog that shuts the socket of a call that overran
# --------------------------------------------------------------------------
class _DeadlineExpired(Exception):
    """Raised inside urllib3 when a call's deadline passed; never leaves this module.

    It deliberately derives from none of the exceptions urllib3 catches, so it
    ends the retry loop at once.
    """


class _CallState:
    """What the watchdog knows about one API call in flight."""

    __slots__ = ('deadline', 'expired', 'connection', 'lock')

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.connection: Optional[HTTPConnection] = None
        self.lock = threading.Lock()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def expire(self) -> None:
        """Mark the call late and break its connection, waking any blocked recv/send."""
        with self.lock:
            self.expired = True
            sock = getattr(self.connection, 'sock', None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Watchdog:
    """One daemon thread expiring the calls whose deadline passed."""

    def __init__(self) -> None:
        self._heap: List[Tuple[float, int, _CallState]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._pid = 0

    def watch(self, state: _CallState) -> None:
        with self._cond:
            if self._thread is None or self._pid != os.getpid():  # new process after fork
                self._heap = []
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name='pacifica-http-watchdog', daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (state.deadline, next(self._counter), state))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, state = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            if state.connection is not None or not state.expired:
                state.expire()


_WATCHDOG = _Watchdog()
_CURRENT = threading.local()


def _current_call() -> Optional[_CallState]:
    return getattr(_CURRENT, 'call', None)


@contextmanager
def deadline(seconds: Optional[float]) -> Iterator[Optional[_CallState]]:
    """Run the body of the ``with`` as one call that must end within ``seconds``."""
    if seconds is None:
        yield None
        return
    state = _CallState(time.monotonic() + seconds)
    previous = _current_call()
    _CURRENT.call = state
    _WATCHDOG.watch(state)
    try:
        yield state
    finally:
        _CURRENT.call = previous
        with state.lock:
            state.connection = None
        state.expired = True  # retire it: the watchdog drops it when due


class _WatchedHTTPConnection(HTTPConnection):
    """Registers each request's connection with the call in flight."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        state = _current_call()
        if state is not None:
            with state.lock:
                if state.expired or state.remaining() <= 0:
                    raise _DeadlineExpired()
                state.connection = self
        return super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """HTTPS, with the watched ``request`` of :class:`_WatchedHTTPConnection`."""


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {'http': _WatchedHTTPConnectionPool, 'https': _WatchedHTTPSConnectionPool}


class PacificaRetry(Retry):
    """urllib3 ``Retry`` that caps ``Retry-After`` and never sleeps past the call's deadline."""

    #: Upper bound for a server's ``Retry-After``; set per policy by :func:`retry_policy`.
    RETRY_AFTER_CAP = 60.0

    def get_retry_after(self, response: Any) -> Optional[float]:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.RETRY_AFTER_CAP)

    def sleep(self, response: Any = None) -> None:
        state = _current_call()
        if state is None:
            return super().sleep(response)
        wanted = self.get_retry_after(response) if (response is not None and self.respect_retry_after_header) else None
        if wanted is None:
            wanted = self.get_backoff_time()
        if wanted >= state.remaining():
            raise _DeadlineExpired()
        if wanted > 0:
            time.sleep(wanted)


def retry_policy(config: TransferConfig, repeatable_methods: Collection[str] = IDEMPOTENT_METHODS) -> Retry:
    """Return the immutable retry object for a session of ``config``.

    ``repeatable_methods`` are retried after read errors and retry statuses;
    every method is retried after a failure to connect.
    """
    cap = config.retry_after_max
    policy_cls = type('PacificaRetry', (PacificaRetry,), {'RETRY_AFTER_CAP': cap})
    return policy_cls(
        total=config.retries,
        connect=config.retries,
        read=config.retries,
        status=config.retries,
        other=0,
        redirect=0,
        allowed_methods=frozenset(method.upper() for method in repeatable_methods),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=config.backoff_factor,
        backoff_max=config.backoff_max,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=True,
    )


class _WatchedAdapter(HTTPAdapter):
    """HTTPAdapter whose connections report to the deadline watchdog."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


def new_session(config: TransferConfig, repeatable_methods: Collection[str] = IDEMPOTENT_METHODS) -> requests.Session:
    """Return a session with retrying, deadline-aware adapters for http and https."""
    session = requests.Session()
    adapter = _WatchedAdapter(max_retries=retry_policy(config, repeatable_methods))
    session.mount('http://', adapter)
    session.mount('https://', adapter)
    return session


# --------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------
def _describe(method: str, url: str) -> str:
    return '{} {}'.format(method.upper(), redact_url(url))


def map_transport_error(err: BaseException, method: str, url: str, state: Optional[_CallState] = None,
                        limit: Optional[float] = None) -> TransportError:
    """Turn a requests/urllib3/socket failure into the library's exception."""
    what = _describe(method, url)
    if (state is not None and state.expired) or isinstance(err, _DeadlineExpired):
        return RequestTimeout('{} did not complete within its deadline of {:g} s'.format(what, limit or 0))
    if any(_is_timeout(cause) for cause in _causes(err)):
        # requests reports a read timeout whose retries ran out as a ConnectionError
        # (MaxRetryError(reason=ReadTimeoutError)); it is still a timeout.
        return RequestTimeout('{} timed out: {}'.format(what, _reason(err)))
    if isinstance(err, (requests.ConnectionError, ConnectionError)):
        return ServerConnectionError('{} failed: {}'.format(what, _reason(err)))
    return TransportError('{} failed: {}'.format(what, _reason(err)))


def _is_timeout(err: BaseException) -> bool:
    # urllib3 2 derives NewConnectionError (connection refused, no route) from
    # ConnectTimeoutError for old except clauses; it is not a timeout.
    return isinstance(err, _TIMEOUTS) and not isinstance(err, NewConnectionError)


def _causes(err: BaseException, depth: int = 5) -> List[BaseException]:
    """``err`` and the errors it wraps, outermost first.

    requests and urllib3 nest their errors in ``reason`` (MaxRetryError) or
    the first argument (requests.ConnectionError(MaxRetryError(...))).
    """
    chain = [err]
    while len(chain) < depth:
        outer: Any = chain[-1]
        inner = getattr(outer, 'reason', None) or (outer.args[0] if getattr(outer, 'args', None) else None)
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    return chain


def _reason(err: BaseException) -> str:
    """The innermost useful reason of a requests/urllib3 error, without URLs' secrets."""
    reason = _causes(err)[-1]
    text = '{}: {}'.format(type(reason).__name__, reason) if str(reason) else type(reason).__name__
    return _strip_credentials(text)


def _strip_credentials(text: str) -> str:
    """Remove ``user:pass@`` from any URL mentioned in ``text``."""
    out = []
    for word in text.split(' '):
        out.append(redact_url(word) if '://' in word and '@' in word else word)
    return ' '.join(out)


def status_error(resp: requests.Response, what: str) -> HTTPStatusError:
    """Build the HTTPStatusError for an unacceptable reply."""
    body = _body_excerpt(resp)
    return HTTPStatusError(
        '{} answered HTTP {} {}{}'.format(what, resp.status_code, resp.reason or '',
                                          ': ' + body if body else '').rstrip(),
        status_code=resp.status_code, body=body, url=redact_url(resp.url or ''))


def _body_excerpt(resp: requests.Response) -> str:
    try:
        return resp.text[:512].strip()
    except Exception:  # noqa: BLE001 - an undecodable body must not mask the status
        return ''


# --------------------------------------------------------------------------
# CommonBase
# --------------------------------------------------------------------------
def _env(name: str) -> Optional[str]:
    value = os.environ.get(name)
    return value if value else None


class CommonBase:
    """Shared by every client object: endpoint settings, one session, guarded requests.

    ``_server_url`` and ``_setup_requests_session`` keep the names and
    behaviour of pacifica-uploader/downloader; ``_request`` and
    ``_request_json`` are the one way this library talks HTTP.
    """

    session: Optional[requests.Session] = None
    _auth: Dict[str, Any]
    #: Endpoint parts, set by :meth:`_server_url` in the subclasses that have them.
    _proto: Any
    _addr: Any
    _port: Any
    _config: TransferConfig = TransferConfig()
    #: POST is repeated only by subclasses whose POSTs only read.
    _repeatable_methods: Collection[str] = IDEMPOTENT_METHODS

    def _server_url(self, parts: Sequence[Tuple[str, Any]], env_prefix: str, kwargs: Mapping[str, Any]) -> None:
        """Set ``self._<part>`` from ``kwargs[part]``, env ``<PREFIX>_<PART>``, or the default."""
        for part, default in parts:
            value = kwargs.get(part)
            if not value:
                value = _env('{}_{}'.format(env_prefix, part).upper())
            setattr(self, '_{}'.format(part), value if value else default)

    def _complete_urls(self, names: Sequence[str], service: str) -> None:
        """Set each ``_<name>_url`` not given whole to ``<proto>://<addr>:<port><_<name>_path>``; check them all.

        Run after :meth:`_server_url` read the parts. ``service`` names the
        server in the ConfigurationError for a URL that is not http(s).
        """
        for name in names:
            attribute = '_{}_url'.format(name)
            if not getattr(self, attribute):
                setattr(self, attribute, join_url(self._proto, self._addr, self._port,
                                                  getattr(self, '_{}_path'.format(name))))
            check_url(getattr(self, attribute), '{} {} URL'.format(service, name))

    def _setup_requests_session(self) -> None:
        """Give this object its own retrying, deadline-aware session."""
        self.session = new_session(self._config, self._repeatable_methods)

    def _configure(self, kwargs: Mapping[str, Any]) -> None:
        """Read the ``config``, ``timeout`` and ``auth`` keywords shared by every client."""
        config = kwargs.get('config')
        if config is None:
            config = TransferConfig()
        elif not isinstance(config, TransferConfig):
            raise ConfigurationError('config must be a TransferConfig, not {}'.format(type(config).__name__))
        self._config = config.with_timeout(kwargs.get('timeout'))
        auth = kwargs.get('auth')
        if auth is None:
            auth = {}
        if not isinstance(auth, Mapping):
            raise ConfigurationError(
                'auth must be a dict of requests keyword arguments (such as {{"auth": (user, password)}}), '
                'not {}'.format(type(auth).__name__))
        self._auth = dict(auth) if not isinstance(auth, dict) else auth

    def _request_kwargs(self, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        """The requests keywords of one call: the ``auth`` dict, the default timeout, then the call's own.

        ``headers`` are merged, not replaced: the auth dict's headers (tokens,
        X-Remote-User) travel with every call, and a call's own header (its
        Content-Type) wins over one of the same name.
        """
        auth = getattr(self, '_auth', None) or {}
        merged = dict(auth)
        merged.setdefault('timeout', self._config.timeout)
        merged.update(kwargs)
        if auth.get('headers') and kwargs.get('headers'):
            merged['headers'] = {**auth['headers'], **kwargs['headers']}
        return merged

    def _request(self, method: str, url: str, *, accept: Collection[int] = (200,),
                 bulk: bool = False, max_seconds: Optional[float] = None, **kwargs: Any) -> requests.Response:
        """Send one request through this object's session and return the reply.

        ``accept`` lists the statuses the caller handles; others raise
        HTTPStatusError. ``bulk`` requests (streamed bodies) run without the
        overall deadline. ``max_seconds`` shortens the deadline of this one
        call (a caller with its own deadline, such as ``Uploader.wait``).
        Never logs or shows the ``auth`` values.
        """
        if self.session is None:
            self._setup_requests_session()
        assert self.session is not None
        limit = None if bulk else self._config.deadline
        if limit is not None and max_seconds is not None:
            limit = max(min(limit, max_seconds), 0.001)
        what = _describe(method, url)
        LOGGER.debug('%s', what)
        with deadline(limit) as state:
            try:
                resp = self.session.request(method, url, **self._request_kwargs(kwargs))
                if not kwargs.get('stream'):
                    resp.content  # noqa: B018 - read the body under the deadline
            except (requests.RequestException, OSError, _DeadlineExpired) as err:
                raise map_transport_error(err, method, url, state, limit) from None
            if state is not None and state.expired:
                raise RequestTimeout('{} did not complete within its deadline of {:g} s'.format(what, limit or 0))
        LOGGER.debug('%s -> %s', what, resp.status_code)
        if resp.status_code not in accept:
            raise status_error(resp, what)
        return resp

    def _request_json(self, method: str, url: str, *, accept: Collection[int] = (200,), **kwargs: Any) -> Any:
        """Like :meth:`_request`, and return the reply's JSON document."""
        resp = self._request(method, url, accept=accept, **kwargs)
        return parse_json(resp, _describe(method, url))


def parse_json(resp: requests.Response, what: str) -> Any:
    """Return the reply's JSON, or raise InvalidResponseError showing a short excerpt."""
    try:
        return json.loads(resp.content)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidResponseError('{} answered HTTP {} with a body that is not JSON ({}): {!r}'.format(
            what, resp.status_code, err, resp.content[:200])) from None
