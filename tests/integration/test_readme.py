"""Every Python code block of README.md runs as written against the real services.

Each block runs in a process of its own, in a fresh directory that holds the
files the examples name, with the stack's ``INGEST_*``, ``POLICY_*`` and
``CARTD_*`` environment (the examples name no server). A block that
downloads into ``./copy`` must bring back exactly those files, with their
modification times.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from .conftest import REPO, Stack, tree_on_disk

pytestmark = pytest.mark.integration

BLOCK = re.compile(r'^```python\n(.*?)^```', re.DOTALL | re.MULTILINE)
#: Files the examples name: content and modification time (whole seconds: metadata keeps no more).
EXAMPLE_FILES: Dict[str, Tuple[bytes, int]] = {
    'results/a.csv': (b'run,value\n1,0.25\n2,0.5\n', 1551675967),  # 2019-03-04T05:06:07Z
    'results/b.csv': ('sample,note\n7,"Zoë\'s ✓"\n'.encode('utf-8'), 1262304000),  # 2010-01-01T00:00:00Z
}
EXAMPLE_TIMEOUT = 300


def python_blocks() -> List[str]:
    return BLOCK.findall((REPO / 'README.md').read_text(encoding='utf-8'))


def test_the_readme_has_python_examples() -> None:
    assert python_blocks(), 'README.md has no ```python block'


@pytest.mark.parametrize('index', range(len(python_blocks())))
def test_a_python_block_runs_as_written(index: int, stack: Stack, tmp_path: Path) -> None:
    code = python_blocks()[index]
    assert '://' not in code, 'README examples take the servers from the environment, not from URLs'
    named = set(re.findall(r"'(results/[^']+)'", code))
    assert named <= set(EXAMPLE_FILES), 'the example names files this test does not make: {}'.format(
        sorted(named - set(EXAMPLE_FILES)))
    for relative, (content, mtime) in EXAMPLE_FILES.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(str(path), (mtime, mtime))
    (tmp_path / 'example.py').write_text(code, encoding='utf-8')
    done = subprocess.run([sys.executable, 'example.py'], cwd=str(tmp_path), env=dict(os.environ),
                          capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT)
    assert done.returncode == 0, 'README block {} failed:\n{}\n{}'.format(index + 1, done.stdout, done.stderr)
    if 'transactioninfo(' not in code:
        return
    copy = tmp_path / 'copy' / 'data'
    assert tree_on_disk(copy) == {relative: content for relative, (content, _) in EXAMPLE_FILES.items()}
    for relative, (_content, mtime) in EXAMPLE_FILES.items():
        assert (copy / relative).stat().st_mtime == mtime, relative
