"""Unknown keyword arguments: ignored as the old packages did, with one warning aimed at the caller's line."""
from __future__ import annotations

import warnings

import pytest

from pacifica._client.keywords import IgnoredKeywordWarning, drop_unknown_keywords
from pacifica.downloader import CartAPI, Downloader
from pacifica.uploader import Uploader
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.metadata import MetaData, MetaObj
from tests.helpers.cartd import CartServer, transaction_info
from tests.functional.downloader.conftest import FAST, FILES, expected_tree, tree


def only_warning(caught):
    assert len(caught) == 1, [str(item.message) for item in caught]
    return caught[0]


def test_known_keywords_pass_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert drop_unknown_keywords('f()', {'a': 1}, {'a', 'b'}) == {'a': 1}


def test_unknown_keywords_are_dropped_and_named_once():
    with pytest.warns(IgnoredKeywordWarning) as caught:
        kept = drop_unknown_keywords('f()', {'alpha': 1, 'alpah': 2, 'zzz': 3}, {'alpha', 'beta'})
    assert kept == {'alpha': 1}
    message = str(only_warning(caught).message)
    assert message == ("f() ignores unknown keyword argument(s) 'alpah' (did you mean 'alpha'?), 'zzz'; "
                       "it accepts alpha, beta")
    assert issubclass(IgnoredKeywordWarning, UserWarning)


def test_the_warning_points_at_the_callers_line():
    def api(**kwargs):
        return drop_unknown_keywords('api()', kwargs, {'known'})

    with pytest.warns(IgnoredKeywordWarning) as caught:
        api(unknown=1)
    assert only_warning(caught).filename == __file__


def test_uploader_ignores_unknown_keywords():
    with pytest.warns(IgnoredKeywordWarning, match="'adr' \\(did you mean 'addr'\\?\\)") as caught:
        uploader = Uploader(adr='ingest.example', port=9)
    assert only_warning(caught).filename == __file__
    assert uploader._upload_url == 'http://127.0.0.1:9/upload'


def test_bundler_ignores_unknown_keywords():
    md = MetaData([MetaObj(destinationTable='Transactions.instrument', value=54)])
    with pytest.warns(IgnoredKeywordWarning, match="'hashfun' \\(did you mean 'hashfunc'\\?\\)") as caught:
        bundler = Bundler(md, [], hashfun='md5', hashfunc='sha256')
    assert only_warning(caught).filename == __file__
    assert bundler._hashstr == 'sha256'


@pytest.mark.parametrize('make', [
    lambda: CartAPI('http://h:1', extra_arg={'bundle': True}),
    lambda: Downloader(cart_api_url='http://h:1', extra_arg={'bundle': True}),
    lambda: Downloader('/tmp/x', 'http://h:1', extra_arg={'bundle': True}),
])
def test_cart_clients_ignore_unknown_keywords(make):
    with pytest.warns(IgnoredKeywordWarning, match="'extra_arg' \\(did you mean 'extra_args'\\?\\)") as caught:
        client = make()
    assert only_warning(caught).filename == __file__
    api = client if isinstance(client, CartAPI) else client.cart_api
    assert api.extra_args == {} and api.cart_api_url == 'http://h:1'


def test_download_methods_ignore_unknown_keywords(server, tmp_path):
    cartd = CartServer(server, tmp_path / 'cartd')
    for file_id, (_subdir, _name, content) in FILES.items():
        cartd.add_file(file_id, content)
    dest = str(tmp_path / 'dest')
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    with pytest.warns(IgnoredKeywordWarning, match="'filenam' \\(did you mean 'filename'\\?\\)") as caught:
        down.transactioninfo(dest, transaction_info(FILES), filenam='typo', timeout=30)
    assert only_warning(caught).filename == __file__
    assert tree(dest) == expected_tree()  # the typo changed nothing: default filename 'data'
