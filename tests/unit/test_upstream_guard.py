"""scripts/upstream_guard.py: the upstream suites run only against this checkout.

Each case runs pytest in a child process, with the guard loaded the way
scripts/upstream-suites loads it, on a one-test suite that records whether
it ran. The refusals must stop the run before that test.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]
SUITE_TEST = 'import os\n\n\ndef test_ran():\n    open(os.environ["GUARD_TEST_MARKER"], "w").close()\n'
UPSTREAM_NAMESPACE = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


def _run_guarded(root: Path, extra_path: Optional[Path] = None, source: Path = REPO) -> subprocess.CompletedProcess:
    """Run root/tests with the guard, as the runner does; extra_path goes first on sys.path."""
    tests = root / 'tests'
    tests.mkdir(exist_ok=True)
    (tests / 'module_test.py').write_text(SUITE_TEST)
    env = {key: value for key, value in os.environ.items() if key not in ('PYTHONPATH', 'PYTHONHOME')}
    path = [str(REPO / 'scripts')] + ([str(extra_path)] if extra_path else [])
    env.update(PYTHONPATH=os.pathsep.join(path), PACIFICA_TRANSFER_SOURCE=str(source),
               GUARD_TEST_MARKER=str(root / 'ran'))
    return subprocess.run(
        [sys.executable, '-m', 'pytest', '-p', 'upstream_guard', '-p', 'no:cacheprovider', '--rootdir', str(tests),
         '--basetemp', str(root / 'basetemp'), '-o', 'addopts=', 'module_test.py'],
        cwd=str(tests), env=env, capture_output=True, text=True, timeout=120)


def _fake_upstream_package(folder: Path) -> None:
    """The layout of the sdists: pacifica/ beside tests/, with the packages' own code."""
    (folder / 'pacifica').mkdir()
    (folder / 'pacifica' / '__init__.py').write_text(UPSTREAM_NAMESPACE)
    for name in ('uploader', 'downloader'):
        (folder / 'pacifica' / name).mkdir()
        (folder / 'pacifica' / name / '__init__.py').write_text('"""upstream"""\n')


def test_this_checkout_is_accepted(tmp_path: Path) -> None:
    proc = _run_guarded(tmp_path)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'upstream_guard: pacifica.uploader is {REPO / "pacifica" / "uploader" / "__init__.py"}' in proc.stdout
    assert (tmp_path / 'ran').exists()


def test_upstream_pacifica_folder_beside_the_tests_is_refused(tmp_path: Path) -> None:
    _fake_upstream_package(tmp_path)

    proc = _run_guarded(tmp_path, extra_path=tmp_path)

    assert proc.returncode != 0
    assert 'upstream_guard: refusing to run: pacifica.uploader imports from {}'.format(
        tmp_path / 'pacifica' / 'uploader' / '__init__.py') in proc.stderr
    assert not (tmp_path / 'ran').exists()


def test_installed_upstream_distribution_is_refused(tmp_path: Path) -> None:
    site = tmp_path / 'site'
    info = site / 'pacifica_downloader-0.4.1.dist-info'
    info.mkdir(parents=True)
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: pacifica-downloader\nVersion: 0.4.1\n')

    proc = _run_guarded(tmp_path, extra_path=site)

    assert proc.returncode != 0
    assert 'refusing to run: pacifica-downloader 0.4.1 is installed in this environment' in proc.stderr
    assert not (tmp_path / 'ran').exists()


def test_another_checkout_is_refused(tmp_path: Path) -> None:
    proc = _run_guarded(tmp_path, source=tmp_path)

    assert proc.returncode != 0
    assert f'refusing to run: pacifica-transfer was installed from file://{REPO}, not from this checkout ' \
           f'{tmp_path.resolve()}' in proc.stderr
    assert not (tmp_path / 'ran').exists()
