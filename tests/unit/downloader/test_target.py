"""Target paths: the cached directory prefix gives what os.path.join gives."""
from __future__ import annotations

import os

import pytest

from pacifica.downloader._target import Target


@pytest.mark.parametrize('location', ['base', 'base' + os.sep, os.sep])
@pytest.mark.parametrize('filename_parts', [(), ('data',), ('data', 'sub')])
def test_a_path_is_the_joined_path(location, filename_parts):
    target = Target(location, filename_parts)
    for parts in [('a',), ('d', 'e', 'f.bin'), ('d', 'e', 'g.bin'), ('a',)]:
        assert target.path(parts) == os.path.join(location, *filename_parts, *parts)
    assert target.path(()) == os.path.join(location, *filename_parts)
