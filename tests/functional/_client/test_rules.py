"""The shared rules: one meaning of "a number of seconds" at every call site, checksums made for checksums."""
from __future__ import annotations

import argparse
import fractions
import functools
import hashlib
import io

import pytest

from pacifica._client import cli
from pacifica._client.config import TransferConfig
from pacifica._client.exceptions import ConfigurationError
from pacifica._client.rules import new_hash, seconds, seconds_or_none
from pacifica.downloader import Downloader
from pacifica.downloader.cartapi import CartAPI
from pacifica.uploader import Uploader
from pacifica.uploader.bundler import Bundler
from tests.helpers.cartd import CartServer, transaction_info
from tests.helpers.bundles import valid_metadata

NOWHERE = 'http://127.0.0.1:9'  # nothing may be sent: every value here is refused before any request
INF, NAN = float('inf'), float('nan')


def bundler_sleeptime(value):
    bundler = Bundler(valid_metadata(), [{'name': 'data/a', 'size': 1, 'mtime': 0, 'fileobj': io.BytesIO(b'a')}])
    bundler.stream(io.BytesIO(), callback=lambda fraction: None, sleeptime=value)


def download_timeout(value, tmp_path):
    files = {7: ('', 'a.txt', b'a')}
    Downloader(cart_api_url=NOWHERE).transactioninfo(str(tmp_path), transaction_info(files), timeout=value)


def command_timeout(value):
    try:
        cli.positive_seconds(str(value))
    except argparse.ArgumentTypeError as error:
        raise ConfigurationError(str(error)) from None


#: call site -> (a call that uses the value, 0 accepted, infinity accepted)
SITES = {
    'TransferConfig.connect_timeout': (lambda value, _: TransferConfig(connect_timeout=value), False, False),
    'TransferConfig.read_timeout': (lambda value, _: TransferConfig(read_timeout=value), False, False),
    'TransferConfig.poll_interval': (lambda value, _: TransferConfig(poll_interval=value), False, False),
    'TransferConfig.call_deadline': (lambda value, _: TransferConfig(call_deadline=value), False, False),
    'TransferConfig.backoff_factor': (lambda value, _: TransferConfig(backoff_factor=value), True, False),
    'TransferConfig.backoff_max': (lambda value, _: TransferConfig(backoff_max=value), True, False),
    'TransferConfig.retry_after_max': (lambda value, _: TransferConfig(retry_after_max=value), True, False),
    'client timeout=': (lambda value, _: Uploader(timeout=value), False, False),
    'client timeout=(connect, read)': (lambda value, _: CartAPI(NOWHERE, timeout=(5, value)), False, False),
    'Uploader.wait interval': (lambda value, _: Uploader(status_url=NOWHERE).wait(1, timeout=1, interval=value),
                               False, False),
    'CartAPI.wait_for_cart timeout': (lambda value, _: CartAPI(NOWHERE).wait_for_cart(NOWHERE + '/c', timeout=value),
                                      False, False),
    'download timeout': (lambda value, tmp_path: download_timeout(value, tmp_path), False, False),
    'command --timeout': (lambda value, _: command_timeout(value), False, False),
    'Bundler.stream sleeptime': (lambda value, _: bundler_sleeptime(value), True, True),
}
ALWAYS_REFUSED = [True, False, NAN, -1, -0.5, -INF, [1], object()]
#: 0.3.1 handed sleeptime to time.sleep(), which takes True and False as 1 and 0: they keep working there.
ACCEPTED_FOR_COMPATIBILITY = {'Bundler.stream sleeptime': (True, False)}


@pytest.mark.parametrize('site', SITES)
@pytest.mark.parametrize('value', ALWAYS_REFUSED, ids=repr)
def test_every_call_site_refuses_what_is_no_duration(site, value, tmp_path):
    call, _, _ = SITES[site]
    if any(value is legacy for legacy in ACCEPTED_FOR_COMPATIBILITY.get(site, ())):
        call(value, tmp_path)
        return
    with pytest.raises(ConfigurationError, match='seconds') as info:
        call(value, tmp_path)
    if site != 'command --timeout' and not isinstance(value, list):  # text from argv; a list is a (connect, read)
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        assert isinstance(info.value, TypeError) is not is_number, 'what is no number is a TypeError too, as before'


@pytest.mark.parametrize('site', SITES)
@pytest.mark.parametrize('value', [0, 0.0, INF], ids=repr)
def test_zero_and_infinity_only_where_they_mean_something(site, value, tmp_path):
    call, zero, infinite = SITES[site]
    if (zero if value == 0 else infinite):
        call(value, tmp_path)  # accepted: these sites need no server for it
    else:
        with pytest.raises(ConfigurationError, match='seconds'):
            call(value, tmp_path)


@pytest.mark.parametrize('value, kwargs, expected', [
    (2, {}, 2.0), (0.25, {}, 0.25), (fractions.Fraction(1, 4), {}, 0.25),
    (0, {'zero': True}, 0.0), (INF, {'infinite': True}, INF), ('2.5', {'text': True}, 2.5),
])
def test_seconds_returns_floats(value, kwargs, expected):
    result = seconds(value, name='wait', **kwargs)
    assert result == expected and type(result) is float


@pytest.mark.parametrize('value, kwargs, text', [
    (True, {}, 'wait must be a number of seconds > 0, not True'),
    ('5', {}, "wait must be a number of seconds > 0, not '5'"),
    (-1, {'zero': True}, 'wait must be a number of seconds >= 0, not -1'),
    (NAN, {'infinite': True}, "wait must be a number of seconds > 0, float('inf') included, not nan"),
])
def test_seconds_names_the_parameter_and_what_it_takes(value, kwargs, text):
    with pytest.raises(ConfigurationError) as info:
        seconds(value, name='wait', **kwargs)
    assert str(info.value) == text and isinstance(info.value, ValueError)


def test_text_that_is_no_number_is_a_bad_value_only_where_text_is_taken():
    """With ``text`` (an option an old package ran through int()), 'soon' is a ValueError as int('soon') was."""
    with pytest.raises(ConfigurationError) as info:
        seconds('soon', name='wait', text=True)
    assert str(info.value) == "wait must be a number of seconds > 0, not 'soon'"
    assert not isinstance(info.value, TypeError)
    with pytest.raises(TypeError):
        seconds('soon', name='wait')


def test_seconds_or_none_says_what_none_means():
    assert seconds_or_none(None, name='timeout', none_means='no limit') is None
    assert seconds_or_none(3, name='timeout', none_means='no limit') == 3.0
    with pytest.raises(ConfigurationError, match=r'timeout must be a number of seconds > 0, or None \(no limit\)'):
        seconds_or_none(0, name='timeout', none_means='no limit')


def test_the_download_timeout_takes_a_number_in_text_as_0_4_did(tmp_path):
    """pacifica-downloader 0.4.x ran int(timeout); text that is no number is refused by the rule."""
    with pytest.raises(ConfigurationError, match="timeout must be a number of seconds > 0, not 'soon'"):
        download_timeout('soon', tmp_path)
    with pytest.raises(ConfigurationError, match='timeout must be a number of seconds > 0, not 0.0'):
        download_timeout('0', tmp_path)


# -- new_hash -----------------------------------------------------------------------------------
def test_new_hash_is_made_for_checksums(monkeypatch):
    calls = []
    real_new = hashlib.new

    def recording_new(name, *args, **kwargs):
        calls.append((name, kwargs))
        return real_new(name, *args, **kwargs)

    monkeypatch.setattr(hashlib, 'new', recording_new)
    assert new_hash('sha256').name == 'sha256'
    assert calls == [('sha256', {'usedforsecurity': False})]


def test_new_hash_without_the_keyword(monkeypatch):
    """A hashlib that does not know usedforsecurity (older builds, other interpreters) gets the plain call."""
    real_new = hashlib.new

    def old_new(name, data=b''):
        return real_new(name, data)

    monkeypatch.setattr(hashlib, 'new', old_new)
    hasher = new_hash('md5')
    hasher.update(b'abc')
    assert hasher.hexdigest() == '900150983cd24fb0d6963f7d28e17f72'


def fips_mode(monkeypatch):
    """hashlib as under a FIPS-mode OpenSSL: MD5 only where it protects nothing (usedforsecurity=False)."""
    real_new = hashlib.new

    def new(name, data=b'', **kwargs):
        if name.lower() == 'md5' and kwargs.get('usedforsecurity', True):
            raise ValueError('[digital envelope routines] unsupported')
        return real_new(name, data, **kwargs)

    monkeypatch.setattr(hashlib, 'new', new)
    monkeypatch.setattr(hashlib, 'md5', functools.partial(new, 'md5'))


def test_md5_checksums_on_a_fips_mode_python_upload_and_download(server, tmp_path, monkeypatch):
    """Records with MD5 sums are checked, downloaded, verified and resumed; bundles are hashed with MD5."""
    files = {7: ('a', 'one.txt', b'first file'), 8: ('', 'two.bin', bytes(range(256)))}
    record = transaction_info(files, hashtype='md5')
    cartd = CartServer(server, tmp_path / 'cartd')
    for file_id, (_, _, content) in files.items():
        cartd.add_file(file_id, content)
    fips_mode(monkeypatch)
    with pytest.raises(ValueError):
        hashlib.md5(b'x')  # the stand-in is strict
    dest = str(tmp_path / 'dest')
    down = Downloader(cart_api_url=cartd.url, config=TransferConfig(poll_interval=0.01))
    down.transactioninfo(dest, record)
    assert (tmp_path / 'dest' / 'data' / 'a' / 'one.txt').read_bytes() == b'first file'
    requests = len(cartd.server.requests)
    down.transactioninfo(dest, record)  # every file is on disk: each is verified by its MD5 sum, none fetched
    assert len(cartd.server.requests) == requests
    entry = {'name': 'data/x', 'size': 3, 'mtime': 0, 'fileobj': io.BytesIO(b'abc')}
    md = valid_metadata()
    Bundler(md, [entry], hashfunc='md5').stream(io.BytesIO())
    assert md[-1].hashsum == '900150983cd24fb0d6963f7d28e17f72'


def test_new_hash_of_an_unknown_name_is_a_value_error():
    with pytest.raises(ValueError):
        new_hash('no-such-hash')
