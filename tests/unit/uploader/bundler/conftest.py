"""Fixtures of the bundler tests: metadata and files on disk."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from pacifica.uploader.metadata import MetaData
from tests.helpers.upstream import upstream  # noqa: F401 - the session fixture

from tests.helpers.bundles import MTIME, valid_metadata


@pytest.fixture
def md() -> MetaData:
    return valid_metadata()


@pytest.fixture
def make_files(tmp_path: Path) -> Callable[..., List[Dict[str, Any]]]:
    """Write ``{archive name: content}`` under tmp_path; return path entries for them."""
    def make(contents: Dict[str, bytes], mtime: Any = MTIME) -> List[Dict[str, Any]]:
        entries = []
        for name, content in contents.items():
            path = tmp_path / 'src' / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            os.utime(path, (int(mtime), int(mtime)))
            entries.append({'name': name, 'size': len(content), 'mtime': mtime, 'path': str(path)})
        return entries
    return make
