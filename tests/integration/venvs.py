"""Virtual environments for the consumer and coexistence tests, built on demand and cached in .stack/.

Third-party packages are installed once per change of what is asked for (a
stamp file holds the hash); this project is reinstalled from the working tree
at every test session, so the tests always run today's code.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / '.stack' / 'venvs'  # kept by `scripts/pacifica-stack reset`
STACK_PINS = REPO / 'scripts' / 'stack'


def python(venv: Path) -> str:
    return str(venv / ('Scripts' if os.name == 'nt' else 'bin') / 'python')


def pip(venv: Path, *args: str) -> None:
    """Run pip in venv; on failure raise with pip's own output."""
    proc = subprocess.run([python(venv), '-m', 'pip', 'install', '-q', *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError('pip install {} failed in {}:\n{}{}'.format(' '.join(args), venv, proc.stdout,
                                                                       proc.stderr[-4000:]))


def project_digest() -> str:
    """Hash of what goes into this project's wheel (for venvs where it must be installed first)."""
    digest = hashlib.sha256()
    for path in sorted(REPO.glob('pacifica/**/*.py')) + [REPO / 'setup.cfg', REPO / 'setup.py']:
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached_venv(name: str, steps: Sequence[Sequence[str]], extra_key: str = '') -> Path:
    """A venv under .stack/ built by running each pip argument list in `steps` in order, once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    venv = CACHE / name
    stamp = venv / '.steps-sha256'
    key = hashlib.sha256(repr((list(map(list, steps)), extra_key, sys.version)).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == key and Path(python(venv)).exists():
        return venv
    if venv.exists():
        subprocess.run(['rm', '-rf', str(venv)], check=True)
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    for step in steps:
        pip(venv, *step)
    stamp.write_text(key)
    return venv


def install_project(venv: Path) -> None:
    """Install the working tree's code (not its dependencies, which the venv already has)."""
    pip(venv, '--no-deps', '--force-reinstall', str(REPO))


def service_requirements() -> List[str]:
    return ['-r', str(STACK_PINS / 'requirements.txt'), '-c', str(STACK_PINS / 'constraints.txt')]


def run_python(venv: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([python(venv), '-c', code], capture_output=True, text=True, check=False,
                          cwd=str(CACHE))
