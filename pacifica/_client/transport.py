"""The one HTTP client every client object holds: requests with retries, a deadline, mapped errors, redaction.

``HttpClient(config, auth).call(method, url, accept=..., document=True)``
sends one API call and returns a :class:`Reply`. Around it:

- the session's adapters retry what :mod:`~pacifica._client.retry` allows,
  and :meth:`HttpClient.call` retries, under the same budget, a repeatable
  call whose body broke after the status line (cut short, reset, not JSON);
- :mod:`~pacifica._client.deadline` ends a call that overran
  ``TransferConfig.deadline``; a ``bulk`` call (a streamed upload or cart)
  has that deadline only until its request goes out;
- :mod:`~pacifica._client.failures` turns what went wrong into the
  :mod:`~pacifica._client.exceptions` tree, and every text taken from a
  reply is redacted against the secrets of its request.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Collection, Dict, Mapping, Optional, Sequence, Union

import requests

from .config import TimeoutArg, TransferConfig
from .deadline import CallState, DeadlineExpired, WatchedAdapter, deadline
from .exceptions import ConfigurationError, InvalidResponseError, PacificaError, RequestTimeout
from .failures import SECRETS_ATTRIBUTE, describe, map_transport_error, parse_json, status_error
from .redact import excerpt, secrets_of
from .retry import IDEMPOTENT_METHODS, LOGGER as RETRY_LOGGER, backoff_seconds, retry_policy

LOGGER = logging.getLogger(__name__)

#: What a failed send or body read raises before it is mapped to the exception tree.
_SEND_ERRORS = (requests.RequestException, OSError, DeadlineExpired)


def new_session(config: TransferConfig, repeatable_methods: Collection[str] = IDEMPOTENT_METHODS) -> requests.Session:
    """Return a session with retrying, deadline-aware adapters for http and https."""
    session = requests.Session()
    adapter = WatchedAdapter(max_retries=retry_policy(config, repeatable_methods))
    session.mount('http://', adapter)
    session.mount('https://', adapter)
    return session


def check_config(config: Any, timeout: TimeoutArg = None) -> TransferConfig:
    """``config`` (None: the defaults) with ``timeout`` applied; ConfigurationError if it is no TransferConfig."""
    if config is None:
        config = TransferConfig()
    elif not isinstance(config, TransferConfig):
        raise ConfigurationError('config must be a TransferConfig, not {}'.format(type(config).__name__))
    return config.with_timeout(timeout)


def check_auth(auth: Any) -> Dict[str, Any]:
    """``auth`` as the dict of requests keywords sent with every call (None: ``{}``)."""
    if auth is None:
        return {}
    if not isinstance(auth, Mapping):
        raise ConfigurationError(
            'auth must be a dict of requests keyword arguments (such as {{"auth": (user, password)}}), '
            'not {}'.format(type(auth).__name__))
    return auth if isinstance(auth, dict) else dict(auth)


class Reply:
    """The answer to one call: the requests ``response`` and, when asked for, its JSON ``document``."""

    __slots__ = ('response', 'document')

    def __init__(self, response: requests.Response, document: Any = None) -> None:
        self.response = response
        self.document = document

    @property
    def status_code(self) -> int:
        """The reply's HTTP status."""
        return self.response.status_code

    @property
    def headers(self) -> Any:
        """The reply's headers (case-insensitive)."""
        return self.response.headers


class HttpClient:
    """One session, one :class:`TransferConfig` and one ``auth`` dict; every call of a client object goes here.

    ``auth`` is the dict of extra requests keywords sent with every call
    (``auth``, ``cert``, ``verify``, ``headers``, ...); it is never logged
    or shown. ``session`` replaces this object's own retrying session.
    ``repeatable_methods`` lists the methods a retry may send again after the
    request reached the server (the Policy client adds its read-only POST).
    """

    def __init__(self, config: Optional[TransferConfig] = None, auth: Optional[Mapping[str, Any]] = None, *,
                 timeout: TimeoutArg = None, session: Optional[requests.Session] = None,
                 repeatable_methods: Collection[str] = IDEMPOTENT_METHODS) -> None:
        self.config = check_config(config, timeout)
        self._auth = check_auth(auth)
        self.repeatable_methods = frozenset(method.upper() for method in repeatable_methods)
        self.session = session if session is not None else new_session(self.config, self.repeatable_methods)

    @classmethod
    def from_keywords(cls, kwargs: Mapping[str, Any], **options: Any) -> 'HttpClient':
        """The client of a constructor's ``config``, ``timeout``, ``auth`` and ``session`` keywords."""
        return cls(kwargs.get('config'), kwargs.get('auth'), timeout=kwargs.get('timeout'),
                   session=kwargs.get('session'), **options)

    @property
    def auth(self) -> Dict[str, Any]:
        """The dict of extra requests keywords sent with every call."""
        return self._auth

    @auth.setter
    def auth(self, auth: Optional[Mapping[str, Any]]) -> None:
        self._auth = check_auth(auth)

    def secrets(self, url: str) -> Sequence[str]:
        """The secrets a call to ``url`` may carry: the auth dict's, the URL's password, the session's own."""
        session = self.session
        return secrets_of(self._auth, [url], getattr(session, 'headers', None),
                          [getattr(session, 'auth', None), getattr(session, 'cookies', None)])

    def redact(self, text: Any, url: str) -> str:
        """``text`` built from a reply of ``url`` (a JSON document, a field of it), redacted and shortened."""
        return excerpt(text, self.secrets(url))

    def call(self, method: str, url: str, *, accept: Collection[int] = (200,), document: bool = False,
             bulk: bool = False, max_seconds: Optional[float] = None, stream: bool = False, data: Any = None,
             headers: Optional[Mapping[str, str]] = None, params: Any = None, timeout: TimeoutArg = None,
             allow_redirects: Optional[bool] = None) -> Reply:
        """Send one request and return its :class:`Reply`.

        ``accept`` lists the statuses the caller handles; others raise
        HTTPStatusError. ``document`` parses the body as JSON (a body that is
        not, in a 2xx reply, is retried, then InvalidResponseError). ``bulk``
        calls (a streamed body) run without the overall deadline;
        ``max_seconds`` shortens the deadline of this one call. ``stream``
        leaves the body unread. ``data``, ``headers``, ``params``,
        ``timeout`` and ``allow_redirects`` go to requests; ``headers`` are
        merged over the auth dict's.
        """
        limit = None if bulk else self.config.deadline
        if limit is not None and max_seconds is not None:
            limit = max(min(limit, max_seconds), 0.001)
        reply_limit = self.config.deadline if bulk else None
        what = describe(method, url)
        attempts = 1
        if not stream and method.upper() in self.repeatable_methods and _resendable(data):
            attempts += self.config.retries
        attempt = _Attempt(method, url, what, self.secrets(url), limit or reply_limit,
                           self._options(data, headers, params, timeout, allow_redirects))
        # A bulk call has no overall deadline, but the same one as any call until its request goes out.
        with deadline(limit, reply_limit, self.config.deadline if bulk else None, what) as state:
            for number in range(1, attempts + 1):
                outcome = attempt.run(self.session, state, accept, document, stream)
                if isinstance(outcome, Reply):
                    return outcome
                pause = backoff_seconds(self.config, number)
                if number == attempts or state.expired or pause >= state.remaining():
                    raise outcome
                RETRY_LOGGER.info('%s: %s; attempt %d failed, trying again in %.2f s', what, outcome,
                                  state.attempts, pause)
                time.sleep(pause)
        raise AssertionError('unreachable')  # pragma: no cover - the loop returns or raises

    def _options(self, data: Any, headers: Optional[Mapping[str, str]], params: Any, timeout: TimeoutArg,
                 allow_redirects: Optional[bool]) -> Dict[str, Any]:
        """The requests keywords of one call: the auth dict, the default timeout, then the call's own.

        The auth dict's headers (tokens, X-Remote-User) travel with every
        call; a call's own header (its Content-Type) wins over one of the
        same name. The auth dict itself is never changed.
        """
        merged = dict(self._auth)
        merged.setdefault('timeout', self.config.timeout)
        own = {'data': data, 'params': params, 'timeout': timeout, 'allow_redirects': allow_redirects}
        merged.update((key, value) for key, value in own.items() if value is not None)
        if headers is not None:
            merged['headers'] = {**self._auth['headers'], **headers} if self._auth.get('headers') else headers
        merged['stream'] = True  # always: the body is read where its failures can be retried
        return merged


class _Attempt:
    """One attempt of a call: send, read the body under the deadline, judge the status, parse."""

    __slots__ = ('method', 'url', 'what', 'secrets', 'limit', 'options')

    def __init__(self, method: str, url: str, what: str, secrets: Sequence[str], limit: Optional[float],
                 options: Dict[str, Any]) -> None:
        self.method, self.url, self.what, self.secrets, self.limit = method, url, what, secrets, limit
        self.options = options

    def run(self, session: requests.Session, state: CallState, accept: Collection[int], document: bool,
            stream: bool) -> Union[Reply, PacificaError]:
        """The reply, or the failure a retry may cure; a failure no retry cures is raised."""
        LOGGER.debug('%s', self.what)
        try:
            resp = session.request(self.method, self.url, **self.options)
        except _SEND_ERRORS as err:
            raise self._mapped(err, state) from None
        setattr(resp, SECRETS_ATTRIBUTE, self.secrets)  # for errors callers build from it
        if not stream:
            try:
                resp.content  # noqa: B018 - read the body under the deadline
            except _SEND_ERRORS as err:
                state.failed(err)
                return self._mapped(err, state)
        if state.expired:
            return RequestTimeout('{} did not complete within its deadline of {:g} s ({})'.format(
                self.what, self.limit or 0, state.tally()))
        LOGGER.debug('%s -> %s', self.what, resp.status_code)
        if resp.status_code not in accept:
            raise status_error(resp, self.what)
        if not document:
            return Reply(resp)
        try:
            return Reply(resp, parse_json(resp, self.what))
        except InvalidResponseError as err:
            if not 200 <= resp.status_code < 300:
                raise status_error(resp, self.what) from None  # an error page, not a broken body
            state.failed(err)
            return err

    def _mapped(self, err: BaseException, state: CallState) -> PacificaError:
        return map_transport_error(err, self.method, self.url, state, self.limit, self.secrets)


def _resendable(data: Any) -> bool:
    """True when a request body can be sent a second time (not a consumed stream)."""
    return data is None or isinstance(data, (bytes, bytearray, str, dict, list, tuple))
