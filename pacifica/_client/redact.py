"""Redaction: the one place where text shown to people loses the caller's secrets.

Servers echo requests back: an error page quoting the request headers, a
reason phrase or an ``X-Pacifica-Message`` repeating them. So every exception
message and log line built from a reply (its body, reason phrase, headers or
JSON), or naming a URL, goes through :func:`redact`, and through
:func:`excerpt` when it is shortened. Redaction blanks, with ``***``:

- every *known secret* of the call (:func:`secrets_of`): the values of the
  secret entries of the ``auth`` dict (HTTP Basic user and password, and
  their base64 form as the ``Authorization`` header carries them; tokens in
  ``headers``; cookie values; client certificate and key paths; proxy
  passwords), the password of a ``user:password@`` URL, and the values of the
  sensitive headers the request really carried (credentials requests took
  from ``~/.netrc``, cookies from the session's jar);
- the value after any sensitive header *name* (``Authorization``,
  ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``), in the forms a server
  echoes them (``Name: value``, ``'Name': 'value'``, ``"Name": "value"``),
  whatever the value: a credential the library never knew is hidden too;
- the ``user:password@`` part of any URL in the text.

Texts shorter than :data:`MIN_SECRET_LENGTH` are not treated as secrets: a
two-letter password would blank every word it is part of (the header-name rule
still hides it in an echoed header). A text cut short can end with the start
of a secret; :func:`excerpt` blanks such a tail as well.
"""
from __future__ import annotations

import base64
import re
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

#: What a secret is replaced with.
MASK = '***'
#: Keys of an ``auth`` dict whose values are secret and never shown.
SECRET_AUTH_KEYS = frozenset({'auth', 'cert', 'headers', 'cookies', 'proxies'})
#: Request headers whose values are credentials.
SENSITIVE_HEADERS = frozenset({'authorization', 'proxy-authorization', 'cookie', 'set-cookie'})
#: Shorter texts are not blanked wherever they occur (see the module docstring).
MIN_SECRET_LENGTH = 3
#: The shortest start of a secret that :func:`excerpt` blanks at the end of a cut text.
MIN_PARTIAL_LENGTH = 4
#: How many characters of a server's reply (body, message) an exception or log line shows.
EXCERPT_LIMIT = 1000

Secrets = Tuple[str, ...]

# ``Authorization: v``, ``'Authorization': 'v'``, ``"Authorization": "v"`` (also JSON-escaped), ``cookie=v``.
_ECHOED_HEADER = re.compile(
    r'''(?P<name>\b(?:proxy-authorization|authorization|set-cookie|cookie))'''
    r'''(?P<sep>(?:\\?['"])?\s*[:=]\s*)'''
    r'''(?P<value>\\?'(?:[^'\\]|\\.)*?\\?'|\\?"(?:[^"\\]|\\.)*?\\?"|[^\r\n]*)''',
    re.IGNORECASE)


def redact_url(url: Any) -> str:
    """Return ``url`` with any ``user:password@`` replaced by ``***@``."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return '<unparsable URL>'
    if '@' not in parts.netloc:
        return str(url)
    host = parts.netloc.rsplit('@', 1)[1]
    return urlunsplit((parts.scheme, MASK + '@' + host, parts.path, parts.query, parts.fragment))


def redact_auth(auth: Optional[Mapping[str, Any]]) -> dict:
    """Return a copy of an ``auth`` dict that is safe to print: secret entries become ``'***'``."""
    return {key: (MASK if key in SECRET_AUTH_KEYS else value) for key, value in (auth or {}).items()}


def secrets_of(auth: Optional[Mapping[str, Any]] = None, urls: Iterable[Any] = (),
               headers: Optional[Mapping[str, Any]] = None, extra: Iterable[Any] = ()) -> Secrets:
    """Every secret text of one call, longest first (so a secret inside another is blanked whole).

    ``auth`` is the call's ``auth`` dict, ``urls`` the URLs it used (their
    passwords), ``headers`` the headers the request really carried and
    ``extra`` other secret-holding values (a session's own ``auth``).
    """
    found: List[str] = []
    for key, value in (auth or {}).items():
        if key in SECRET_AUTH_KEYS:
            _collect(value, found, 0)
    for url in urls:
        found.extend(_url_secrets(url))
    for name, value in (headers or {}).items():
        if str(name).lower() in SENSITIVE_HEADERS:
            found.extend(_header_parts(str(name).lower(), value))
    for value in extra:
        _collect(value, found, 0)
    unique = {text for text in found if len(text) >= MIN_SECRET_LENGTH}
    return tuple(sorted(unique, key=lambda text: (-len(text), text)))


def redact(text: Any, secrets: Sequence[str] = ()) -> str:
    """Return ``text`` without ``secrets``, sensitive header values or URL passwords (see the module docstring)."""
    text = str(text)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _ECHOED_HEADER.sub(_mask_header_value, text)
    if '@' in text and '://' in text:
        text = ' '.join(redact_url(word) if '://' in word and '@' in word else word for word in text.split(' '))
    return text


def excerpt(text: Any, secrets: Sequence[str] = (), limit: int = EXCERPT_LIMIT) -> str:
    """The start of ``text`` (a reply body, a server message), redacted, stripped, at most ``limit`` characters.

    The text may already have been cut short where it was read: a tail that
    is the start of a secret is blanked too.
    """
    shown = _mask_partial_tail(redact(text, secrets).strip(), secrets)
    return shown if len(shown) <= limit else shown[:limit] + '...'


def redact_document(doc: Any, secrets: Sequence[str] = ()) -> Any:
    """A copy of a decoded JSON reply with every string in it redacted (for exceptions that keep the reply)."""
    if isinstance(doc, str):
        return redact(doc, secrets)
    if isinstance(doc, Mapping):
        return {key: redact_document(value, secrets) for key, value in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [redact_document(value, secrets) for value in doc]
    return doc


def _mask_header_value(match: 're.Match[str]') -> str:
    value = match.group('value')
    if not value.strip():
        return match.group(0)
    quote = value[:2] if value.startswith('\\') else value[:1]
    shown = quote + MASK + quote if quote.strip('\\') in ('"', "'") else MASK
    return match.group('name') + match.group('sep') + shown


def _mask_partial_tail(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        start = max(len(text) - len(secret) + 1, 0)
        while True:
            start = text.find(secret[:MIN_PARTIAL_LENGTH], start)
            if start < 0:
                break
            if secret.startswith(text[start:]):
                return text[:start] + MASK
            start += 1
    return text


def _url_secrets(url: Any) -> List[str]:
    """A URL's password, as written and decoded, and as HTTP Basic sends it with its user name."""
    try:
        parts = urlsplit(str(url))
        user, password = parts.username, parts.password
    except ValueError:
        return []
    if not password:
        return []
    return [password, unquote(password), _basic(unquote(user or ''), unquote(password))]


def _basic(user: str, password: str) -> str:
    return base64.b64encode('{}:{}'.format(user, password).encode('latin-1', 'replace')).decode()


def _header_parts(name: str, value: Any) -> List[str]:
    """The credentials in a header value: ``Basic <b64>`` -> the base64; ``a=1; b=2`` -> 1 and 2.

    The scheme (``Basic``, ``Bearer``) is no secret: a message may still say which was refused.
    """
    if isinstance(value, bytes):
        value = value.decode('latin-1')
    text = str(value).strip()
    if name in ('cookie', 'set-cookie'):
        return [cookie.partition('=')[2].strip() for cookie in text.split(';')]
    words = text.split()
    return words[1:] if len(words) > 1 else words


def _collect(value: Any, found: List[str], depth: int) -> None:
    """Gather the texts inside a secret value: strings, (user, password) pairs, dicts, auth objects."""
    if depth > 4 or value is None:
        return
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'replace')
    if isinstance(value, str):
        found.append(value)
        found.extend(word for word in value.split()[1:])  # 'Bearer <token>'
        if '://' in value:
            found.extend(_url_secrets(value))  # a proxy URL
    elif isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        found.extend(value)  # (user, password), also as HTTP Basic sends it
        found.append(_basic(*value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _collect(item, found, depth + 1)
    elif hasattr(value, '__dict__'):  # a requests auth object such as HTTPBasicAuth, a cookie jar's cookies
        for item in vars(value).values():
            _collect(item, found, depth + 1)
