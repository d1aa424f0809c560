"""Where each server and its endpoints are when nothing says otherwise, and the URL rules.

Each server table lists ``(part, default)`` pairs for :func:`server_parts`,
which takes every part from a keyword, else from the environment variable
``<PREFIX>_<PART>``, else from the table. Keeping one table per server means
the clients, and the commands' ``--*-url`` flags, cannot disagree about
where a server or an endpoint is.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Sequence, Tuple
from urllib.parse import urlsplit

from .exceptions import ConfigurationError
from .redact import redact_url

#: The policy server's address parts (environment prefix ``POLICY``).
POLICY_SERVER: Tuple[Tuple[str, Any], ...] = (('proto', 'http'), ('addr', '127.0.0.1'), ('port', 8181))
#: The policy endpoints below that address: the upload form's queries and the metadata check.
POLICY_PATHS: Tuple[Tuple[str, str], ...] = (('uploader_path', '/uploader'), ('ingest_path', '/ingest'))
#: The ingest server's address parts (environment prefix ``INGEST``).
INGEST_SERVER: Tuple[Tuple[str, Any], ...] = (('proto', 'http'), ('port', 8066), ('addr', '127.0.0.1'))
#: The ingest endpoints below that address: the upload POST and the job state GET.
INGEST_PATHS: Tuple[Tuple[str, str], ...] = (('upload_path', '/upload'), ('status_path', '/get_state'))
#: The cart server's address parts (environment prefix ``CARTD``); carts live right below it.
CARTD_SERVER: Tuple[Tuple[str, Any], ...] = (('proto', 'http'), ('port', '8081'), ('addr', '127.0.0.1'))

#: The metadata server's address parts (environment prefix ``METADATA``): the dataset lookup's REST tables.
METADATA_SERVER: Tuple[Tuple[str, Any], ...] = (('proto', 'http'), ('addr', '127.0.0.1'), ('port', 8121))

#: URL schemes the servers speak.
SCHEMES = ('http', 'https')


def server_parts(parts: Sequence[Tuple[str, Any]], env_prefix: str, kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    """Each ``part`` from ``kwargs[part]`` if truthy, else env ``<PREFIX>_<PART>`` if set, else its default."""
    found = {}
    for part, default in parts:
        found[part] = kwargs.get(part) or os.environ.get('{}_{}'.format(env_prefix, part).upper()) or default
    return found


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


def complete_url(url: Any, proto: Any, addr: Any, port: Any, path: Any, what: str) -> str:
    """``url`` when given whole, else ``proto://addr:port<path>``; ConfigurationError naming ``what`` if not http(s)."""
    return check_url(url or join_url(proto, addr, port, path), what)
