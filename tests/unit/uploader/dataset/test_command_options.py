"""The sharded options of pacifica-upload: sizes by one rule, everything else refused with the rule in the message."""
from __future__ import annotations

import argparse

import pytest

from pacifica.downloader import cli as download_cli
from pacifica.uploader import cli
from pacifica._client.cli import byte_size
from pacifica.uploader._dataset_cli import wanted


@pytest.mark.parametrize('text, size', [
    ('4096', 4096), ('1', 1), ('100B', 100), ('500M', 500 << 20), ('2G', 2 << 30), ('2g', 2 << 30),
    ('1.5GiB', 3 << 29), ('1.5gib', 3 << 29), ('750MB', 750_000_000), ('2KB', 2000), ('1K', 1024), ('3KiB', 3072),
    ('1T', 1 << 40), ('1PB', 10 ** 15), ('0.5K', 512), ('2.5K', 2560), (' 7M ', 7 << 20), ('1.0001K', 1024),
])
def test_sizes_follow_one_rule(text: str, size: int) -> None:
    assert byte_size(text) == size


def test_both_commands_read_sizes_by_this_rule() -> None:
    """pacifica-upload's bundle size and pacifica-download's cart size mean the same by the same text."""
    down = download_cli.build_parser().parse_args(['--transaction-id', '1', '--destination', 'x',
                                                   '--max-cart-size', '750MB', '--workers', '3'])
    assert (down.max_cart_size, down.workers) == (750_000_000, 3)
    up = cli.build_parser().parse_args(['--max-bundle-size', '750MB', '--workers', '3', 'results'])
    assert (up.max_bundle_size, up.workers) == (750_000_000, 3)


@pytest.mark.parametrize('text', ['', 'M', '2Q', '2 GiBs', '-1', '1e9', '1.5', '0', '0.0001K', '2iB', '1,5G', 'G2',
                                  '2MBB', '0x10'])
def test_anything_else_is_refused_naming_the_rule(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        byte_size(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize('argv, sharded', [
    ([], False), (['--workers', '2'], True), (['--manifest', 'm'], True), (['--max-bundle-size', '1M'], True),
    (['--max-bundle-files', '5'], True), (['--dask-scheduler', 'tcp://h:8786'], True), (['--wait'], False),
])
def test_any_sharded_option_chooses_the_sharded_path(argv: list, sharded: bool) -> None:
    args = cli.build_parser().parse_args([*argv, 'results'])
    assert wanted(args) is sharded


def test_help_lists_the_sharded_options() -> None:
    text = cli.build_parser().format_help()
    for flag in ('--workers', '--max-bundle-size', '--max-bundle-files', '--manifest', '--dask-scheduler'):
        assert flag in text
    assert "pacifica-transfer[dask]" in text
