"""The secrets scanner every test runs under (autouse in tests/conftest.py).

It turns DEBUG logging on for the root logger, urllib3, requests and the
``pacifica`` loggers, records every :class:`PacificaError` created during the
test, and fails the test if a known secret value appears in any captured log
record or in the text (str, repr, args, chained causes) of any of those
exceptions. Tests put the canonical secrets into their clients with the
``secret_auth`` fixture, use one of :data:`UNIT_SECRETS`, or register their own
with ``secrets.add(value)``.
"""
from __future__ import annotations

import base64
import logging
import os
from typing import Iterator, List, Set

import pytest

from pacifica._client.exceptions import PacificaError

#: The suite's canonical secrets: a password, a bearer token, a client key path, a URL password.
SECRET_PASSWORD = 'pw-5ecr3t-Zq9'
SECRET_TOKEN = 'tok-5ecr3t-Xk2'
#: The client key path's directory and file names: a leak of the path shows either.
SECRET_KEY_DIR = 'secret-dir-Hh7'
SECRET_KEY_NAME = 'client-5ecr3t.key'
SECRET_URL_PASSWORD = 'urlpw-5ecr3t-Jm4'
#: A session cookie (requests sends it in the Cookie header).
SECRET_COOKIE = 'cookie-5ecr3t-Vb6'
#: The user names the suite pairs the passwords with (HTTP Basic sends base64('user:password')).
SECRET_USER, SECRET_URL_USER = 'alice', 'bob'
KNOWN_SECRETS = (SECRET_PASSWORD, SECRET_TOKEN, SECRET_KEY_DIR, SECRET_KEY_NAME, SECRET_URL_PASSWORD, SECRET_COOKIE,
                 base64.b64encode('{}:{}'.format(SECRET_USER, SECRET_PASSWORD).encode()).decode(),
                 base64.b64encode('{}:{}'.format(SECRET_URL_USER, SECRET_URL_PASSWORD).encode()).decode())

#: Secret values the unit suites put into ``auth`` dicts and URLs.
UNIT_SECRETS = ('s3cr3t-pa55', 'hunter2-secret', 's3cr3t-pw', 'url-very-secret', 'token-very-secret')

LOGGERS = ('', 'urllib3', 'requests', 'pacifica', 'pacifica.uploader', 'pacifica.downloader', 'pacifica._client')


def secret_auth_dict(key_root: str) -> dict:
    """An ``auth`` dict holding every kind of secret the library must never show.

    The client certificate and key files exist under ``key_root`` (requests
    checks that), and are ignored on http://, so calls still work.
    """
    key_dir = os.path.join(key_root, SECRET_KEY_DIR)
    os.makedirs(key_dir, exist_ok=True)
    cert, key = os.path.join(key_dir, 'client.pem'), os.path.join(key_dir, SECRET_KEY_NAME)
    for path in (cert, key):
        with open(path, 'w') as handle:
            handle.write('not a real key\n')
    return {
        'auth': (SECRET_USER, SECRET_PASSWORD),
        'headers': {'Authorization': 'Bearer ' + SECRET_TOKEN},
        'cert': (cert, key),
        'cookies': {'session': SECRET_COOKIE},
    }


def _texts_of(err: BaseException) -> Iterator[str]:
    """Every text a user could see for ``err``, including what a traceback prints of its chain."""
    seen = 0
    while err is not None and seen < 10:
        seen += 1
        yield str(err)
        yield repr(err)
        for arg in getattr(err, 'args', ()):
            yield repr(arg)
        # Every attribute (body, url, reply, state, server_exception, problems, notes, ...), not a fixed list.
        for value in getattr(err, '__dict__', {}).values():
            yield repr(value)
        cause = err.__cause__
        if cause is None and not err.__suppress_context__:
            cause = err.__context__
        err = cause


class SecretScanner:
    """Collects the texts a test produced and checks them for secrets."""

    def __init__(self) -> None:
        self.secrets: Set[str] = set(KNOWN_SECRETS + UNIT_SECRETS)
        self.errors: List[BaseException] = []

    def add(self, value: str) -> None:
        self.secrets.add(value)

    def leaks(self, caplog: pytest.LogCaptureFixture) -> List[str]:
        found = []
        handler_formatter = logging.Formatter('%(name)s %(levelname)s %(message)s')
        # At teardown caplog.records holds only the teardown phase: read every phase.
        records = [*caplog.get_records('setup'), *caplog.get_records('call'), *caplog.records]
        for record in records:
            line = handler_formatter.format(record)
            found += ['log {}: {!r}'.format(record.name, line[:300]) for s in self.secrets if s in line]
        for err in self.errors:
            for text in _texts_of(err):
                found += ['{}: {!r}'.format(type(err).__name__, text[:300]) for s in self.secrets if s in text]
        return found


def scan_for_secrets(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretScanner]:
    """Generator behind the ``secrets`` fixture: DEBUG logging everywhere; at the end, no known secret
    in any log line or PacificaError text."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    scanner = SecretScanner()

    def recording_init(self, *args, **kwargs):  # observe, do not change, every PacificaError made
        scanner.errors.append(self)
        super(PacificaError, self).__init__(*args, **kwargs)
    # __init__, not __new__: replacing __new__ would change how OSError-based classes take arguments.
    monkeypatch.setattr(PacificaError, '__init__', recording_init)
    yield scanner
    leaks = scanner.leaks(caplog)
    assert not leaks, 'secrets leaked:\n' + '\n'.join(leaks)
