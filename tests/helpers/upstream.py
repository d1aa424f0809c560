"""Run the upstream packages (pacifica-uploader 0.3.1, pacifica-downloader 0.4.1) side by side.

Compatibility tests compare this project's output with what the real
upstream code produces on the same inputs. Upstream lives in its own virtual
environment, never importable from the test process:

- ``PACIFICA_UPSTREAM_PYTHON``, when set, names a ready interpreter that has
  both packages installed;
- otherwise ``.venv-upstream`` at the repository root is used, and created
  (``python -m venv`` + ``pip install`` from the package index) when missing.

The test then runs a small script under that interpreter through a
subprocess (see :func:`run_upstream_bundle`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest

UPSTREAM_REQUIREMENTS = ('pacifica-uploader==0.3.1', 'pacifica-downloader==0.4.1')
REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_DIR = REPO_ROOT / '.venv-upstream'
_PROBE = 'import pacifica.uploader.bundler, pacifica.downloader; print(pacifica.uploader.bundler.__file__)'


def _venv_python(venv: Path) -> Path:
    return venv / ('Scripts/python.exe' if os.name == 'nt' else 'bin/python')


def _works(python: str) -> bool:
    try:
        result = subprocess.run([python, '-c', _PROBE], capture_output=True, text=True, timeout=120,
                                cwd=str(Path(python).parent))
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _create_venv() -> str:
    python = str(_venv_python(VENV_DIR))
    if not Path(python).exists():
        subprocess.run([sys.executable, '-m', 'venv', str(VENV_DIR)], check=True, timeout=300)
    subprocess.run([python, '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check',
                    *UPSTREAM_REQUIREMENTS], check=True, timeout=900)
    return python


def upstream_python() -> str:
    """The interpreter that runs upstream: PACIFICA_UPSTREAM_PYTHON, or the cached .venv-upstream."""
    configured = os.environ.get('PACIFICA_UPSTREAM_PYTHON')
    if configured:
        if not _works(configured):
            raise RuntimeError('PACIFICA_UPSTREAM_PYTHON={} cannot import pacifica.uploader 0.3.1 and '
                               'pacifica.downloader'.format(configured))
        return configured
    python = str(_venv_python(VENV_DIR))
    if Path(python).exists() and _works(python):
        return python
    python = _create_venv()
    if not _works(python):
        raise RuntimeError('{} was created but cannot import the upstream packages'.format(VENV_DIR))
    return python


@pytest.fixture(scope='session')
def upstream() -> str:
    """Path of a Python interpreter with pacifica-uploader 0.3.1 and pacifica-downloader 0.4.1."""
    return upstream_python()


# Runs under the upstream interpreter: bundle the files described in a JSON spec with 0.3.1's Bundler.
_BUNDLE_SCRIPT = textwrap.dedent('''
    import io, json, sys
    from pacifica.uploader.bundler import Bundler
    from pacifica.uploader.metadata import MetaData, MetaObj

    spec = json.load(open(sys.argv[1], encoding='utf-8'))
    md = MetaData([MetaObj(**item) for item in spec['metadata']])
    file_data = []
    for entry in spec['files']:
        entry = dict(entry)
        path = entry.pop('path')
        text = entry.pop('text', False)
        entry['fileobj'] = open(path, 'r', encoding='utf-8', newline='') if text else open(path, 'rb')
        file_data.append(entry)
    kwargs = {'hashfunc': spec['hashfunc']} if spec.get('hashfunc') else {}
    with open(spec['output'], 'wb') as out:
        Bundler(md, file_data, **kwargs).stream(out)
''')


def run_upstream_bundle(python: str, workdir: Path, metadata: List[Dict[str, Any]], files: List[Dict[str, Any]],
                        hashfunc: str = '') -> bytes:
    """Bundle with upstream 0.3.1 and return the tar bytes.

    ``metadata`` holds MetaObj keyword dicts; each of ``files`` has ``path``,
    ``name``, ``size``, ``mtime``, optional extra TarInfo keys and
    ``text: True`` to pass the file opened in text mode.
    """
    spec_path = workdir / 'upstream-spec.json'
    output = workdir / 'upstream-bundle.tar'
    script = workdir / 'upstream_bundle.py'
    script.write_text(_BUNDLE_SCRIPT, encoding='utf-8')
    spec = {'metadata': metadata, 'files': files, 'hashfunc': hashfunc, 'output': str(output)}
    spec_path.write_text(json.dumps(spec), encoding='utf-8')
    # Run outside the repository so that this project's pacifica package cannot shadow upstream's.
    result = subprocess.run([python, str(script), str(spec_path)], capture_output=True, text=True, timeout=600,
                            cwd=str(workdir), env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'})
    if result.returncode:
        raise AssertionError('upstream bundler failed:\n' + result.stderr[-4000:])
    return output.read_bytes()
