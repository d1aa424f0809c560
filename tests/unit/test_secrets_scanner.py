"""The scanner every test runs under must itself catch a leak (else every secrets test proves nothing)."""
from __future__ import annotations

import logging

from pacifica._client.exceptions import HTTPStatusError
from tests.helpers.secrets import SECRET_PASSWORD


def test_scanner_sees_a_secret_logged_during_the_test(secrets, caplog):
    logging.getLogger('pacifica.uploader').debug('sending %s', SECRET_PASSWORD)
    assert any(SECRET_PASSWORD in leak for leak in secrets.leaks(caplog))
    caplog.clear()  # the leak was planted: keep the teardown check from failing this test
    assert secrets.leaks(caplog) == []


def test_scanner_sees_a_secret_in_an_error_text(secrets, caplog):
    err = HTTPStatusError('server said ' + SECRET_PASSWORD, status_code=500)
    assert any(SECRET_PASSWORD in leak for leak in secrets.leaks(caplog))
    secrets.errors.remove(err)
    assert secrets.leaks(caplog) == []
