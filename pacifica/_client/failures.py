"""Mapping failures to the exception tree: a requests/urllib3/socket error, or an unacceptable reply.

Every text taken from a reply goes through :mod:`~pacifica._client.redact`,
against the secrets of the request it answers: no message carries
credentials.
"""
from __future__ import annotations

import json
import ssl
from typing import Any, List, Optional, Sequence

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError, ProtocolError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from .deadline import CallState, DeadlineExpired
from .exceptions import (
    HTTPStatusError, InvalidResponseError, PacificaError, RequestTimeout, ServerConnectionError, TransportError,
)
from .redact import EXCERPT_LIMIT, excerpt, redact, redact_url, secrets_of

#: Errors that mean "waited too long", wherever they sit in a wrapped error's chain.
_TIMEOUTS = (requests.Timeout, Urllib3TimeoutError, TimeoutError)
#: Where a reply keeps the secrets of its request, so that errors built from it can blank them.
SECRETS_ATTRIBUTE = '_pacifica_secrets'


def describe(method: str, url: str) -> str:
    """``'GET http://host/path'`` without credentials: how messages and log lines name a call."""
    return '{} {}'.format(method.upper(), redact_url(url))


def map_transport_error(err: BaseException, method: str, url: str, state: Optional[CallState] = None,
                        limit: Optional[float] = None, secrets: Sequence[str] = ()) -> TransportError:
    """Turn a requests/urllib3/socket failure into the library's exception, naming its cause.

    The message says what failed (method and URL), why (connection refused,
    host name not resolved, TLS failure, timeout, ...), and how many attempts
    took how long; ``secrets`` are blanked out of it.
    """
    what = describe(method, url)
    last = state.last_failure if state is not None else None
    if isinstance(last, BaseException) and not isinstance(last, PacificaError) and (
            (isinstance(err, DeadlineExpired) and not _expired(state))
            or (_expired(state) and state is not None and state.sock is None and _never_sent(last))):
        # The retries stopped because the next one would not fit the deadline, or the deadline passed
        # while no connection could even be made (a slow resolver): report what kept failing.
        err = last
    elif _expired(state) or isinstance(err, DeadlineExpired):
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


def _expired(state: Optional[CallState]) -> bool:
    """True when the watchdog ended the call (its deadline passed during an attempt)."""
    return state is not None and state.expired


def _never_sent(err: BaseException) -> bool:
    """True for a failure before any byte of the request was sent: no connection, no TLS session."""
    return any(isinstance(cause, (NewConnectionError, Urllib3SSLError, ssl.SSLError)) for cause in _causes(err))


def _failure_text(failure: Any, secrets: Sequence[str]) -> str:
    if isinstance(failure, BaseException):
        return redact(cause_text(failure), secrets)
    status = getattr(failure, 'status', None)
    return 'HTTP {}'.format(status) if status is not None else str(failure)


def cause_text(err: BaseException) -> str:
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
    """The secrets of the request ``resp`` answers: those its HttpClient recorded, and its sensitive headers."""
    request = getattr(resp, 'request', None)
    return secrets_of(headers=getattr(request, 'headers', None), extra=getattr(resp, SECRETS_ATTRIBUTE, ()))


def _reply_text(resp: requests.Response) -> str:
    try:
        return resp.content[:EXCERPT_LIMIT * 4].decode(resp.encoding or 'utf-8', 'replace')
    except Exception:  # noqa: BLE001 - an undecodable body must not mask the status
        return ''




def parse_json(resp: requests.Response, what: str) -> Any:
    """Return the reply's JSON, or raise InvalidResponseError showing a short excerpt (without secrets)."""
    try:
        return json.loads(resp.content)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidResponseError('{} answered HTTP {} with a body that is not JSON ({}): {}'.format(
            what, resp.status_code, err, reply_excerpt(resp))) from None
