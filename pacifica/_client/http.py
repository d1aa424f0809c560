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

import base64
import heapq
import itertools
import json
import logging
import math
import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Collection, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import InvalidHeader, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util.retry import Retry

from .config import TransferConfig
from .exceptions import (
    ConfigurationError, HTTPStatusError, InvalidResponseError, PacificaError, RequestTimeout,
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

    __slots__ = ('deadline', 'reply_limit', 'expired', 'connection', 'sock', 'lock')

    def __init__(self, deadline: float, reply_limit: Optional[float] = None) -> None:
        self.deadline = deadline
        #: Seconds the reply may take once the request is sent (bulk calls: armed at getresponse).
        self.reply_limit = reply_limit
        self.expired = False
        self.connection: Optional[HTTPConnection] = None
        #: The socket itself: http.client detaches it from the connection when
        #: the reply says ``Connection: close``, yet the body is still read from it.
        self.sock: Optional[socket.socket] = None
        self.lock = threading.Lock()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def expire(self) -> None:
        """Mark the call late and break its connection, waking any blocked recv/send."""
        with self.lock:
            self.expired = True
            sock = self.sock or getattr(self.connection, 'sock', None)
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
def deadline(seconds: Optional[float], reply_seconds: Optional[float] = None) -> Iterator[Optional[_CallState]]:
    """Run the body of the ``with`` as one call that must end within ``seconds``.

    ``reply_seconds`` instead bounds only the wait for the reply, from the
    moment the request is sent: an upload body may take hours, its answer not.
    """
    if seconds is None and reply_seconds is None:
        yield None
        return
    state = _CallState(math.inf if seconds is None else time.monotonic() + seconds, reply_seconds)
    previous = _current_call()
    _CURRENT.call = state
    if seconds is not None:
        _WATCHDOG.watch(state)
    try:
        yield state
    finally:
        _CURRENT.call = previous
        with state.lock:
            state.connection = None
            state.sock = None
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

    def connect(self) -> None:
        super().connect()
        state = _current_call()
        if state is not None:
            with state.lock:
                state.sock = self.sock

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        state = _current_call()
        if state is not None and state.reply_limit is not None:
            with state.lock:
                state.deadline = min(state.deadline, time.monotonic() + state.reply_limit)
                state.reply_limit = None  # armed once: retries count against the same reply deadline
            _WATCHDOG.watch(state)
        return super().getresponse(*args, **kwargs)


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
        try:
            seconds = super().get_retry_after(response)
        except InvalidHeader:  # "0.5", "soon": not RFC 9110, so back off as if it were absent
            return None
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
                        limit: Optional[float] = None, secrets: Sequence[str] = ()) -> TransportError:
    """Turn a requests/urllib3/socket failure into the library's exception.

    ``secrets`` are texts (from the ``auth`` dict) blanked out of the message.
    """
    what = _describe(method, url)
    if (state is not None and state.expired) or isinstance(err, _DeadlineExpired):
        return RequestTimeout('{} did not complete within its deadline of {:g} s'.format(what, limit or 0))
    if any(_is_timeout(cause) for cause in _causes(err)):
        # requests reports a read timeout whose retries ran out as a ConnectionError
        # (MaxRetryError(reason=ReadTimeoutError)); it is still a timeout.
        return RequestTimeout('{} timed out: {}'.format(what, _reason(err, secrets)))
    if isinstance(err, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, ConnectionError,
                        ProtocolError)):
        return ServerConnectionError('{} failed: {}'.format(what, _reason(err, secrets)))
    return TransportError('{} failed: {}'.format(what, _reason(err, secrets)))


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


def _reason(err: BaseException, secrets: Sequence[str] = ()) -> str:
    """The innermost useful reason of a requests/urllib3 error, without URLs' secrets."""
    reason = _causes(err)[-1]
    text = '{}: {}'.format(type(reason).__name__, reason) if str(reason) else type(reason).__name__
    text = _strip_credentials(text)
    for secret in secrets:
        text = text.replace(secret, '***')
    return text


def _strip_credentials(text: str) -> str:
    """Remove ``user:pass@`` from any URL mentioned in ``text``."""
    out = []
    for word in text.split(' '):
        out.append(redact_url(word) if '://' in word and '@' in word else word)
    return ' '.join(out)


def status_error(resp: requests.Response, what: str, secrets: Sequence[str] = ()) -> HTTPStatusError:
    """Build the HTTPStatusError for an unacceptable reply, without the caller's secrets in the body.

    Servers echo request headers in error pages; the secrets are ``secrets``
    or, for a reply that came through :class:`CommonBase`, those it recorded.
    """
    body = _scrub(_body_excerpt(resp), secrets or getattr(resp, _SECRETS_ATTRIBUTE, ()))
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
        return self._exchange(method, url, accept, bulk, max_seconds, False, kwargs)[0]

    def _request_json(self, method: str, url: str, *, accept: Collection[int] = (200,), bulk: bool = False,
                      max_seconds: Optional[float] = None, **kwargs: Any) -> Any:
        """Like :meth:`_request`, and return the reply's JSON document."""
        return self._exchange(method, url, accept, bulk, max_seconds, True, kwargs)[1]

    def _exchange(self, method: str, url: str, accept: Collection[int], bulk: bool, max_seconds: Optional[float],
                  want_json: bool, kwargs: Dict[str, Any]) -> Tuple[requests.Response, Any]:
        """One API call: the request, its reply body and, if wanted, its JSON, under one deadline.

        urllib3 retries connections and retry statuses. What breaks after the
        status line (a body cut short or reset, a body that is not JSON) is
        retried here, for repeatable requests whose body can be sent again.
        """
        if self.session is None:
            self._setup_requests_session()
        assert self.session is not None
        limit = None if bulk else self._config.deadline
        if limit is not None and max_seconds is not None:
            limit = max(min(limit, max_seconds), 0.001)
        reply_limit = self._config.deadline if bulk else None
        what = _describe(method, url)
        stream = bool(kwargs.get('stream'))
        attempts = 1
        if not stream and method.upper() in self._repeatable_methods and _resendable(kwargs.get('data')):
            attempts += self._config.retries
        secrets = sorted(set(_secret_values(getattr(self, '_auth', None)) + _url_secrets(url)), key=len, reverse=True)
        with deadline(limit, reply_limit) as state:
            for attempt in range(1, attempts + 1):
                LOGGER.debug('%s', what)
                try:
                    # Always streamed, so the body is read below where its failures can be retried.
                    resp = self.session.request(method, url, **self._request_kwargs(dict(kwargs, stream=True)))
                    setattr(resp, _SECRETS_ATTRIBUTE, secrets)  # for errors callers build from it
                except (requests.RequestException, OSError, _DeadlineExpired) as err:
                    raise map_transport_error(err, method, url, state, limit or reply_limit, secrets) from None
                failure: Optional[PacificaError] = None
                try:
                    if not stream:
                        resp.content  # noqa: B018 - read the body under the deadline
                except (requests.RequestException, OSError, _DeadlineExpired) as err:
                    failure = map_transport_error(err, method, url, state, limit or reply_limit, secrets)
                if failure is None and state is not None and state.expired:
                    failure = RequestTimeout('{} did not complete within its deadline of {:g} s'.format(
                        what, limit or reply_limit or 0))
                if failure is None:
                    LOGGER.debug('%s -> %s', what, resp.status_code)
                    if resp.status_code not in accept:
                        raise status_error(resp, what, secrets)
                    if not want_json:
                        return resp, None
                    try:
                        return resp, parse_json(resp, what)
                    except InvalidResponseError as err:
                        if not 200 <= resp.status_code < 300:
                            raise status_error(resp, what, secrets) from None  # an error page, not a broken body
                        failure = err
                pause = _backoff(self._config, attempt)
                if attempt == attempts or (state is not None and (state.expired or pause >= state.remaining())):
                    raise failure
                LOGGER.debug('%s: %s; trying again in %.2f s', what, failure, pause)
                time.sleep(pause)
        raise AssertionError('unreachable')  # pragma: no cover - the loop returns or raises


def _resendable(data: Any) -> bool:
    """True when a request body can be sent a second time (not a consumed stream)."""
    return data is None or isinstance(data, (bytes, bytearray, str, dict, list, tuple))


def _backoff(config: TransferConfig, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``, by the rule in the module docstring."""
    return 0.0 if attempt < 2 else min(config.backoff_max, config.backoff_factor * 2 ** (attempt - 1))


#: Where a reply keeps the secrets of its request, so that errors built from it can blank them.
_SECRETS_ATTRIBUTE = '_pacifica_secrets'


def _url_secrets(url: str) -> List[str]:
    """A URL's password, alone and as HTTP Basic sends it with its user name."""
    try:
        parts = urlsplit(str(url))
        user, password = parts.username, parts.password
    except ValueError:
        return []
    if not password:
        return []
    pair = '{}:{}'.format(unquote(user or ''), unquote(password))
    return [unquote(password), password, base64.b64encode(pair.encode('latin-1', 'replace')).decode()]


def _secret_values(auth: Optional[Mapping[str, Any]]) -> List[str]:
    """The texts inside the secret entries of an ``auth`` dict (passwords, tokens, key paths)."""
    found: List[str] = []

    def walk(value: Any, depth: int) -> None:
        if depth > 4:
            return
        if isinstance(value, bytes):
            value = value.decode('utf-8', 'replace')
        if isinstance(value, str):
            if len(value) >= 3:
                found.append(value)
            found.extend(word for word in value.split()[1:] if len(word) >= 4)  # 'Bearer <token>'
        elif isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
            found.extend(v for v in value if len(v) >= 3)  # (user, password), also as Basic sends it
            found.append(base64.b64encode('{}:{}'.format(*value).encode('latin-1', 'replace')).decode())
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item, depth + 1)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, depth + 1)
        elif hasattr(value, '__dict__'):  # a requests auth object such as HTTPBasicAuth
            for item in vars(value).values():
                walk(item, depth + 1)

    for key, value in (auth or {}).items():
        if key in SECRET_AUTH_KEYS:
            walk(value, 0)
    return sorted(found, key=len, reverse=True)


def parse_json(resp: requests.Response, what: str) -> Any:
    """Return the reply's JSON, or raise InvalidResponseError showing a short excerpt (without secrets)."""
    try:
        return json.loads(resp.content)
    except (ValueError, UnicodeDecodeError) as err:
        excerpt = _scrub(repr(resp.content[:200]), getattr(resp, _SECRETS_ATTRIBUTE, ()))
        raise InvalidResponseError('{} answered HTTP {} with a body that is not JSON ({}): {}'.format(
            what, resp.status_code, err, excerpt)) from None


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, '***')
    return text
