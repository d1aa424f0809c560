"""The one HTTP core under both packages: sessions, retries, deadlines, errors.

Retry policy (one budget for every call)
    Each client object owns one :class:`requests.Session` whose adapters use a
    :class:`PacificaRetry` (urllib3 ``Retry``, built once per configuration by
    :func:`retry_policy`; urllib3 derives each next state with ``Retry.new``).
    The numbers are fields of :class:`~pacifica._client.config.TransferConfig`
    (``retries``, ``backoff_factor``, ``backoff_max``, ``retry_after_max``,
    defaults in the ``DEFAULT_*`` constants of :mod:`~pacifica._client.config`).

    - A failure before any byte of the request was sent (connection refused,
      host name not resolved, no connection within ``connect_timeout``) is
      retried for every call and every method, bulk or not: the server never
      saw the request. Up to ``retries`` retries, and never past the call's
      deadline (``TransferConfig.deadline``), which a bulk call also has
      until its request goes out. A TLS failure is not retried: it comes
      from certificates or a wrong port, which a retry cannot change.
    - After the request was sent, only a repeatable request is retried: GET,
      HEAD, PUT, DELETE and OPTIONS always; POST only where the caller
      declares it read-only (the Policy queries). A POST that broke after it
      was sent (ingest upload, cart creation) is never sent again behind the
      caller's back. Statuses 429, 502, 503 and 504 are retried, obeying
      ``Retry-After`` up to ``retry_after_max`` seconds.
    - The pause after the ``n``-th failed attempt is (:func:`backoff_seconds`)::

          0                                                for n == 1
          min(backoff_max, backoff_factor * 2 ** (n - 1))  for n >= 2

      With the defaults (5 retries, factor 0.5): 0, 1, 2, 4 and 8 s.
    - Each retry is logged at INFO on ``pacifica._client.http`` with its
      cause and pause (the commands show them); when the budget is spent the
      error names the cause, the URL, the attempts and the time.

Deadlines
    Socket timeouts alone cannot stop a server that trickles one byte a
    second. Every API call therefore runs under a deadline
    (:attr:`TransferConfig.deadline`): a watchdog thread shuts down the call's
    socket when it passes, and the retry sleeps never outlast it. Bulk
    transfers (the upload body, the cart stream) have that deadline only
    until their request goes out; then they run without an overall deadline
    but fail when the socket stays silent for ``read_timeout``.

Errors
    requests/urllib3 exceptions and unacceptable statuses become the
    :mod:`~pacifica._client.exceptions` tree. Every text taken from a reply
    goes through :mod:`~pacifica._client.redact`: no message or log line
    carries credentials.
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import math
import os
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from typing import Any, Collection, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import InvalidHeader, NameResolutionError, NewConnectionError, ProtocolError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util.retry import Retry

from .config import TransferConfig
from .exceptions import (
    ConfigurationError, HTTPStatusError, InvalidResponseError, PacificaError, RequestTimeout,
    ServerConnectionError, TransportError,
)
from .redact import EXCERPT_LIMIT, excerpt, redact, redact_url, secrets_of

LOGGER = logging.getLogger(__name__)

#: Methods whose repetition cannot change the server's state twice.
IDEMPOTENT_METHODS = frozenset({'GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'})
#: Statuses that mean "try again later".
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: URL schemes the servers speak.
SCHEMES = ('http', 'https')
#: Errors that mean "waited too long", wherever they sit in a wrapped error's chain.
_TIMEOUTS = (requests.Timeout, Urllib3TimeoutError, TimeoutError)


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
    """What the watchdog, the retries and the error messages know about one API call in flight."""

    __slots__ = ('deadline', 'reply_limit', 'connect_only', 'expired', 'connection', 'sock', 'lock',
                 'what', 'started', 'attempts', 'last_failure')

    def __init__(self, deadline: float, reply_limit: Optional[float] = None, connect_only: bool = False,
                 what: str = '') -> None:
        self.deadline = deadline
        #: Seconds the reply may take once the request is sent (bulk calls: armed at getresponse).
        self.reply_limit = reply_limit
        #: The deadline bounds only the time until a connection carries the request (bulk calls).
        self.connect_only = connect_only
        self.expired = False
        self.connection: Optional[HTTPConnection] = None
        #: The socket itself: http.client detaches it from the connection when
        #: the reply says ``Connection: close``, yet the body is still read from it.
        self.sock: Optional[socket.socket] = None
        self.lock = threading.Lock()
        #: ``METHOD url`` (without credentials), for log lines and messages.
        self.what = what
        self.started = time.monotonic()
        #: Attempts that failed so far, and the last failure (an exception, or the reply of a retried status).
        self.attempts = 0
        self.last_failure: Any = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def failed(self, failure: Any) -> None:
        """Count one failed attempt of this call."""
        self.attempts += 1
        self.last_failure = failure

    def tally(self) -> str:
        """``'3 attempts in 1.0 s'``: what the call tried, for its error message."""
        tries = max(self.attempts, 1)
        return '{} attempt{} in {:.1f} s'.format(tries, '' if tries == 1 else 's', time.monotonic() - self.started)

    def carrying(self, sock: Any) -> None:
        """The request is about to go out on ``sock``: a bulk call's connect deadline ends here."""
        with self.lock:
            if sock is not None:
                self.sock = sock
            if self.connect_only:
                self.connect_only = False
                self.deadline = math.inf

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
            if state.remaining() > 0:  # the deadline moved (a bulk call connected): a later entry, if any
                continue
            if state.connection is not None or not state.expired:
                state.expire()


_WATCHDOG = _Watchdog()
_CURRENT = threading.local()


def _current_call() -> Optional[_CallState]:
    return getattr(_CURRENT, 'call', None)


@contextmanager
def deadline(seconds: Optional[float], reply_seconds: Optional[float] = None, connect_seconds: Optional[float] = None,
             what: str = '') -> Iterator[_CallState]:
    """Run the body of the ``with`` as one call that must end within ``seconds``.

    ``reply_seconds`` instead bounds only the wait for the reply, from the
    moment the request is sent: an upload body may take hours, its answer not.
    ``connect_seconds`` bounds the time until a connection carries the request
    (with its retries), for calls that have no overall deadline.
    """
    if seconds is not None:
        state = _CallState(time.monotonic() + seconds, reply_seconds, what=what)
    elif connect_seconds is not None:
        state = _CallState(time.monotonic() + connect_seconds, reply_seconds, connect_only=True, what=what)
    else:
        state = _CallState(math.inf, reply_seconds, what=what)
    previous = _current_call()
    _CURRENT.call = state
    if state.deadline != math.inf:
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
            if self.sock is not None:  # a kept-alive connection: nothing left to connect
                state.carrying(None)
        return super().request(*args, **kwargs)

    def connect(self) -> None:
        super().connect()
        state = _current_call()
        if state is not None:
            state.carrying(self.sock)

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


def backoff_seconds(config: TransferConfig, failures: int) -> float:
    """Seconds to wait after the ``failures``-th failed attempt: the formula of the module docstring."""
    if failures < 2:
        return 0.0
    return min(config.backoff_max, config.backoff_factor * 2 ** (failures - 1))


class PacificaRetry(Retry):
    """urllib3 ``Retry`` with this library's budget: the backoff of :func:`backoff_seconds`,
    ``Retry-After`` capped at ``retry_after_max``, no sleep past the call's deadline, each retry logged.

    :func:`retry_policy` makes the one instance of a configuration; urllib3
    derives each next state with :meth:`new`, which keeps the extra settings.
    """

    def __init__(self, *args: Any, config: Optional[TransferConfig] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = config if config is not None else TransferConfig()

    def new(self, **kwargs: Any) -> 'PacificaRetry':
        kwargs.setdefault('config', self.config)
        return super().new(**kwargs)

    def get_backoff_time(self) -> float:
        failures = len(list(itertools.takewhile(lambda item: item.redirect_location is None, reversed(self.history))))
        return backoff_seconds(self.config, failures)

    def get_retry_after(self, response: Any) -> Optional[float]:
        try:
            seconds = super().get_retry_after(response)
        except InvalidHeader:  # "0.5", "soon": not RFC 9110, so back off as if it were absent
            return None
        return None if seconds is None else min(seconds, self.config.retry_after_max)

    def pause(self, response: Any = None) -> float:
        """Seconds :meth:`sleep` waits before the next attempt."""
        wanted = self.get_retry_after(response) if (response is not None and self.respect_retry_after_header) else None
        return self.get_backoff_time() if wanted is None else wanted

    def increment(self, method: Optional[str] = None, url: Optional[str] = None, response: Any = None,
                  error: Optional[Exception] = None, _pool: Any = None, _stacktrace: Any = None) -> 'PacificaRetry':
        state = _current_call()
        if state is not None:
            state.failed(error if error is not None else response)
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        assert isinstance(retry, PacificaRetry)
        if state is not None:
            failure = 'HTTP {}'.format(response.status) if error is None and response is not None else (
                _cause(error) if error is not None else 'failed')
            LOGGER.info('%s: %s; attempt %d failed, trying again in %.2f s', state.what, failure, state.attempts,
                         retry.pause(response))
        return retry

    def sleep(self, response: Any = None) -> None:
        state = _current_call()
        wanted = self.pause(response)
        if state is not None and wanted >= state.remaining():
            raise _DeadlineExpired()  # the retry budget is spent: no time for another attempt
        if wanted > 0:
            time.sleep(wanted)


def retry_policy(config: TransferConfig, repeatable_methods: Collection[str] = IDEMPOTENT_METHODS) -> Retry:
    """Return the retry object for a session of ``config``.

    ``repeatable_methods`` are retried after read errors and retry statuses;
    every method is retried after a failure before the request was sent.
    """
    return PacificaRetry(
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
        config=config,
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
    """Turn a requests/urllib3/socket failure into the library's exception, naming its cause.

    The message says what failed (method and URL), why (connection refused,
    host name not resolved, TLS failure, timeout, ...), and how many attempts
    took how long; ``secrets`` are blanked out of it.
    """
    what = _describe(method, url)
    last = state.last_failure if state is not None else None
    if isinstance(last, BaseException) and not isinstance(last, PacificaError) and (
            (isinstance(err, _DeadlineExpired) and not _expired(state))
            or (_expired(state) and state is not None and state.sock is None and _never_sent(last))):
        # The retries stopped because the next one would not fit the deadline, or the deadline passed
        # while no connection could even be made (a slow resolver): report what kept failing.
        err = last
    elif _expired(state) or isinstance(err, _DeadlineExpired):
        since = '; the last attempt: {}'.format(_failure_text(last, secrets)) if last is not None else ''
        return RequestTimeout('{} did not complete within its deadline of {:g} s ({}{})'.format(
            what, limit or 0, state.tally() if state is not None else '1 attempt', since))
    tally = ' ({})'.format(state.tally()) if state is not None else ''
    text = '{} failed: {}{}'.format(what, _failure_text(err, secrets), tally)
    if any(_is_timeout(cause) for cause in _causes(err)):
        # requests reports a read timeout whose retries ran out as a ConnectionError
        # (MaxRetryError(reason=ReadTimeoutError)); it is still a timeout.
        return RequestTimeout(text)
    if isinstance(err, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, ConnectionError,
                        ProtocolError, NewConnectionError, Urllib3SSLError, ssl.SSLError)):
        return ServerConnectionError(text)
    return TransportError(text)


def _expired(state: Optional[_CallState]) -> bool:
    """True when the watchdog ended the call (its deadline passed during an attempt)."""
    return state is not None and state.expired


def _never_sent(err: BaseException) -> bool:
    """True for a failure before any byte of the request was sent: no connection, no TLS session."""
    return any(isinstance(cause, (NewConnectionError, Urllib3SSLError, ssl.SSLError)) for cause in _causes(err))


def _failure_text(failure: Any, secrets: Sequence[str]) -> str:
    if isinstance(failure, BaseException):
        return redact(_cause(failure), secrets)
    status = getattr(failure, 'status', None)
    return 'HTTP {}'.format(status) if status is not None else str(failure)


def _cause(err: BaseException) -> str:
    """What went wrong, in words: the innermost useful reason of a requests/urllib3/socket error."""
    chain = _causes(err)
    for item in chain:
        if isinstance(item, NameResolutionError):
            host = getattr(getattr(item, 'conn', None), 'host', None) or '?'
            return 'the host name {!r} could not be resolved ({})'.format(host, _os_reason(item))
        if isinstance(item, NewConnectionError):
            inner = item.__cause__ or item.__context__
            where = _where(item)
            if isinstance(inner, ConnectionRefusedError):
                return 'connection refused by {}'.format(where)
            return 'could not connect to {} ({})'.format(where, _os_reason(item))
        if isinstance(item, (Urllib3SSLError, ssl.SSLError)):
            return 'TLS failure: {}'.format(_innermost(item))
    reason = chain[-1]
    return '{}: {}'.format(type(reason).__name__, reason) if str(reason) else type(reason).__name__


def _where(err: NewConnectionError) -> str:
    conn = getattr(err, 'conn', None)
    host, port = getattr(conn, 'host', None), getattr(conn, 'port', None)
    return '{}:{}'.format(host, port) if host else 'the server'


def _os_reason(err: BaseException) -> str:
    inner = err.__cause__ or err.__context__
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return str(inner or err)


def _innermost(err: BaseException) -> str:
    while isinstance(err.args[0] if err.args else None, BaseException):
        err = err.args[0]
    return str(err)


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


def status_error(resp: requests.Response, what: str) -> HTTPStatusError:
    """Build the HTTPStatusError for an unacceptable reply, its reason phrase and body redacted."""
    secrets = reply_secrets(resp)
    body = excerpt(_reply_text(resp), secrets)
    reason = redact(resp.reason or '', secrets)
    return HTTPStatusError(
        '{} answered HTTP {} {}{}'.format(what, resp.status_code, reason, ': ' + body if body else '').rstrip(),
        status_code=resp.status_code, body=body, url=redact_url(resp.url or ''))


def reply_excerpt(resp: requests.Response, streamed: bool = False) -> str:
    """The start of a reply's body, redacted; a streamed body is read only that far."""
    if streamed:
        try:
            data = resp.raw.read(EXCERPT_LIMIT, decode_content=True) or b''
        except Exception:  # noqa: BLE001 - an unreadable body must not hide the status
            data = b''
        return excerpt(data.decode('utf-8', 'replace'), reply_secrets(resp))
    return excerpt(_reply_text(resp), reply_secrets(resp))


def reply_redact(resp: requests.Response, text: Any) -> str:
    """``text`` built from ``resp`` (a header, a JSON field), redacted against the secrets of its request."""
    return excerpt(text, reply_secrets(resp))


def reply_secrets(resp: requests.Response) -> Sequence[str]:
    """The secrets of the request ``resp`` answers: those :class:`CommonBase` recorded, and its sensitive headers."""
    request = getattr(resp, 'request', None)
    return secrets_of(headers=getattr(request, 'headers', None), extra=getattr(resp, _SECRETS_ATTRIBUTE, ()))


def _reply_text(resp: requests.Response) -> str:
    try:
        return resp.content[:EXCERPT_LIMIT * 4].decode(resp.encoding or 'utf-8', 'replace')
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
        secrets = self._secrets(url)
        # A bulk call has no overall deadline, but the same one as any call until its request goes out.
        with deadline(limit, reply_limit, self._config.deadline if bulk else None, what) as state:
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
                    state.failed(err)
                    failure = map_transport_error(err, method, url, state, limit or reply_limit, secrets)
                if failure is None and state.expired:
                    failure = RequestTimeout('{} did not complete within its deadline of {:g} s ({})'.format(
                        what, limit or reply_limit or 0, state.tally()))
                if failure is None:
                    LOGGER.debug('%s -> %s', what, resp.status_code)
                    if resp.status_code not in accept:
                        raise status_error(resp, what)
                    if not want_json:
                        return resp, None
                    try:
                        return resp, parse_json(resp, what)
                    except InvalidResponseError as err:
                        if not 200 <= resp.status_code < 300:
                            raise status_error(resp, what) from None  # an error page, not a broken body
                        state.failed(err)
                        failure = err
                pause = backoff_seconds(self._config, attempt)
                if attempt == attempts or state.expired or pause >= state.remaining():
                    raise failure
                LOGGER.info('%s: %s; attempt %d failed, trying again in %.2f s', what, failure, state.attempts,
                            pause)
                time.sleep(pause)
        raise AssertionError('unreachable')  # pragma: no cover - the loop returns or raises

    def _secrets(self, url: str) -> Sequence[str]:
        """The secrets a call to ``url`` may carry: the auth dict's, the URL's password, the session's own."""
        session = self.session
        return secrets_of(getattr(self, '_auth', None), [url], getattr(session, 'headers', None),
                          [getattr(session, 'auth', None), getattr(session, 'cookies', None)])

    def _redact(self, text: Any, url: str) -> str:
        """``text`` built from a reply of ``url`` (a JSON document, a field of it), redacted and shortened."""
        return excerpt(text, self._secrets(url))


def _resendable(data: Any) -> bool:
    """True when a request body can be sent a second time (not a consumed stream)."""
    return data is None or isinstance(data, (bytes, bytearray, str, dict, list, tuple))


#: Where a reply keeps the secrets of its request, so that errors built from it can blank them.
_SECRETS_ATTRIBUTE = '_pacifica_secrets'


def parse_json(resp: requests.Response, what: str) -> Any:
    """Return the reply's JSON, or raise InvalidResponseError showing a short excerpt (without secrets)."""
    try:
        return json.loads(resp.content)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidResponseError('{} answered HTTP {} with a body that is not JSON ({}): {}'.format(
            what, resp.status_code, err, reply_excerpt(resp))) from None
