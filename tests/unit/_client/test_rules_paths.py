"""The shared rule of safe relative paths, and the places that apply it."""
from __future__ import annotations

import os

import pytest

from pacifica._client.exceptions import ConfigurationError, RecordError
from pacifica._client.rules import is_absolute, is_plain_name, is_whole_number, relative_parts
from pacifica.downloader import Downloader
from pacifica.downloader._records import path_parts


@pytest.mark.parametrize('part', ['a', 'file.txt', '\u00e9t\u00e9', '...', '.hidden', 'a b'])
def test_plain_names(part):
    assert is_plain_name(part)


@pytest.mark.parametrize('part', ['', '.', '..', 'a/b', 'nul\x00byte'])
def test_names_that_are_not_plain(part):
    assert not is_plain_name(part)


def test_windows_syntax_is_unsafe_on_windows_only():
    assert is_plain_name('a\\b') == is_plain_name('c:') == (os.name != 'nt')


@pytest.mark.parametrize('path, parts', [
    ('a/b/c.txt', ('a', 'b', 'c.txt')), ('./a//b/', ('a', 'b')), ('/top/x', ('top', 'x')), ('', ()), ('.', ()),
])
def test_relative_parts_drops_empty_and_dot_components(path, parts):
    assert relative_parts(path) == parts


@pytest.mark.parametrize('path', ['../x', 'a/../../x', 'a/..', 'a/b\x00/c'])
def test_relative_parts_names_the_unsafe_component(path):
    with pytest.raises(ValueError, match='unsafe component'):
        relative_parts(path)


def test_absolute_paths():
    assert is_absolute('/etc/passwd') and not is_absolute('etc/passwd')
    assert is_absolute('c:/x') == is_absolute('\\\\server\\share') == (os.name == 'nt')


def test_whole_numbers():
    assert is_whole_number(0) and is_whole_number(2 ** 70)
    assert not any(is_whole_number(value) for value in (True, 1.0, '1', None))


def test_one_rule_for_records_option_and_members():
    """A record path, the filename option and (see test_hostile) cart members refuse the same paths."""
    with pytest.raises(RecordError, match=r"unsafe component '\.\.'"):
        path_parts('a/../b', 'file 1')
    with pytest.raises(RecordError, match='names no file'):
        path_parts('./', 'file 1')
    down = Downloader(cart_api_url='http://127.0.0.1:9')
    for filename in ('../up', '/abs'):
        with pytest.raises(ConfigurationError):
            down.transactioninfo('/nonexistent-location', {'files': {}}, filename=filename)
