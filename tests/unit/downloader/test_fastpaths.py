"""Small speed tricks of the download path, each held to the plain code it replaces."""
from __future__ import annotations

import hashlib
import json

import pytest

from pacifica._client.exceptions import RecordError
from pacifica._client.rules import new_hash
from pacifica.downloader._extract import hash_factory
from pacifica.downloader.cartapi import _cart_body
from pacifica.downloader._records import transaction_entries
from pacifica.downloader._target import SHORT_NAME_LIMIT, VERIFIED_SUFFIX, hidden_name


@pytest.mark.parametrize('name', ['sha1', 'md5', 'sha256', 'sha512', 'SHA1', 'blake2b', 'sha3_256'])
def test_hash_factory_makes_what_new_hash_makes(name):
    made, plain = hash_factory(name)(), new_hash(name)
    for hasher in (made, plain):
        hasher.update(b'some bytes of a cart member')
    assert (made.name, made.hexdigest()) == (plain.name, plain.hexdigest())


def test_hash_factory_of_an_unknown_name_fails_as_new_hash_does():
    with pytest.raises(ValueError):
        hash_factory('no-such-hash')()


def _plain_hidden_name(name: str, suffix: str) -> str:
    if len(name.encode('utf-8', 'surrogateescape')) > SHORT_NAME_LIMIT:
        name = hashlib.sha1(name.encode('utf-8', 'surrogateescape')).hexdigest()
    return '.{}{}'.format(name, suffix)


@pytest.mark.parametrize('name', ['a', 'x' * 50, 'x' * 51, 'x' * 200, 'x' * 201, '\u00e9' * 100, '\u00e9' * 101,
                                  '\U0001f600' * 50, '\U0001f600' * 51, 'a\udcff' * 100, 'b\udcff' * 101])
def test_hidden_name_skips_the_encoding_only_where_it_cannot_matter(name):
    assert hidden_name(name, VERIFIED_SUFFIX) == _plain_hidden_name(name, VERIFIED_SUFFIX)


def _info(hashtypes):
    return {'files': {str(index): {'name': 'f{}'.format(index), 'subdir': 'd', 'hashtype': hashtype,
                                   'hashsum': '00'} for index, hashtype in enumerate(hashtypes)}}


def test_each_hash_name_is_checked_even_after_a_good_one():
    assert [entry.hashtype for entry in transaction_entries(_info(['sha1', 'sha1', 'md5']))] == ['sha1', 'sha1', 'md5']
    with pytest.raises(RecordError, match='no-such-hash'):
        transaction_entries(_info(['sha1', 'sha1', 'no-such-hash']))


def _plain_cart_body(files, extra_args) -> bytes:
    text = '{"fileids": [' + ', '.join(json.dumps(item) for item in files) + ']'
    if extra_args:
        text += ', ' + json.dumps(dict(extra_args))[1:-1]
    return (text + '}').encode('utf-8')


@pytest.mark.parametrize('count', [0, 1, 999, 1000, 1001, 2500])
@pytest.mark.parametrize('extra_args', [{}, {'note': 'caf\u00e9'}])
def test_cart_body_in_batches_is_the_body_file_by_file(count, extra_args):
    files = [{'id': index, 'path': 'd/\u00e9{}'.format(index), 'hashtype': 'sha1', 'hashsum': '0' * 40}
             for index in range(count)]
    body, made = _cart_body(iter(files), extra_args)
    assert (body, made) == (_plain_cart_body(files, extra_args), count)
    assert json.loads(body)['fileids'] == files
