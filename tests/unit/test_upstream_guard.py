"""scripts/upstream_guard.py: the upstream suites run only against this checkout.

Each case runs pytest in a child process, with the guard loaded the way
scripts/upstream-suites loads it, on a one-test suite that records whether
it ran; the refusals must stop the run before that test. The child sees a
made-up environment (`python -S`, so no site-packages but pytest's own): a
checkout, pacifica-transfer installed from it (a dist-info with RECORD and
PEP 610 direct_url.json, as pip writes them), and whatever the case adds.
So the cases do not depend on how the running environment installed the
project.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / 'scripts'
PYTEST_SITE = Path(pytest.__file__).resolve().parents[1]
PACKAGES = ('uploader', 'downloader')
SUITE_TEST = 'import os\n\n\ndef test_ran():\n    open(os.environ["GUARD_TEST_MARKER"], "w").close()\n'
UPSTREAM_NAMESPACE = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


def _checkout(root: Path) -> Path:
    """A checkout with pacifica/uploader and pacifica/downloader (pacifica is a namespace package)."""
    source = root / 'checkout'
    for name in PACKAGES:
        (source / 'pacifica' / name).mkdir(parents=True)
        (source / 'pacifica' / name / '__init__.py').write_text(f'"""pacifica-transfer\'s {name}"""\n')
    return source


def _install(site: Path, source: Path, editable: bool = False) -> None:
    """What `pip install [-e] <source>` leaves in site-packages, reduced to what the guard reads."""
    info = site / 'pacifica_transfer-0.1.0.dist-info'
    info.mkdir(parents=True)
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: pacifica-transfer\nVersion: 0.1.0\n')
    (info / 'direct_url.json').write_text(json.dumps({'url': source.resolve().as_uri(),
                                                      'dir_info': {'editable': True} if editable else {}}))
    installed = [f'{info.name}/{name},,' for name in ('METADATA', 'direct_url.json', 'RECORD')]
    if not editable:
        shutil.copytree(source / 'pacifica', site / 'pacifica')
        installed += [f'pacifica/{name}/__init__.py,,' for name in PACKAGES]
    (info / 'RECORD').write_text('\n'.join(installed) + '\n')


def _upstream_package(folder: Path) -> None:
    """The layout of the sdists: pacifica/ beside tests/, with the packages' own code."""
    (folder / 'pacifica').mkdir(parents=True)
    (folder / 'pacifica' / '__init__.py').write_text(UPSTREAM_NAMESPACE)
    for name in PACKAGES:
        (folder / 'pacifica' / name).mkdir()
        (folder / 'pacifica' / name / '__init__.py').write_text('"""upstream"""\n')


def _run_guarded(root: Path, sys_path: List[Path], source: Path, prelude: str = '') -> subprocess.CompletedProcess:
    """Run root/tests with the guard, as the runner does, with only `sys_path` (then pytest) importable."""
    tests = root / 'tests'
    tests.mkdir()
    (tests / 'module_test.py').write_text(prelude + SUITE_TEST)
    env = {key: value for key, value in os.environ.items() if key not in ('PYTHONPATH', 'PYTHONHOME')}
    env.update(PYTHONPATH=os.pathsep.join(str(path) for path in [*sys_path, SCRIPTS, PYTEST_SITE]),
               PACIFICA_TRANSFER_SOURCE=str(source), GUARD_TEST_MARKER=str(root / 'ran'),
               PYTEST_DISABLE_PLUGIN_AUTOLOAD='1')  # only the guard: hypothesis alone takes seconds to load
    return subprocess.run(
        [sys.executable, '-S', '-m', 'pytest', '-p', 'upstream_guard', '-p', 'no:cacheprovider',
         '--rootdir', str(tests), '--basetemp', str(root / 'basetemp'), 'module_test.py'],
        cwd=str(tests), env=env, capture_output=True, text=True, timeout=120)


def _assert_refused(proc: subprocess.CompletedProcess, root: Path, reason: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert f'upstream_guard: refusing to run: {reason}' in proc.stderr
    assert not (root / 'ran').exists()


def test_the_checkout_as_installed_is_accepted(tmp_path: Path) -> None:
    source = _checkout(tmp_path)
    _install(tmp_path / 'site', source)

    proc = _run_guarded(tmp_path, [tmp_path / 'site'], source)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'upstream_guard: pacifica.uploader is {}'.format(
        tmp_path / 'site' / 'pacifica' / 'uploader' / '__init__.py') in proc.stdout
    assert (tmp_path / 'ran').exists()


def test_an_editable_install_of_the_checkout_is_accepted(tmp_path: Path) -> None:
    source = _checkout(tmp_path)
    _install(tmp_path / 'site', source, editable=True)

    proc = _run_guarded(tmp_path, [tmp_path / 'site', source], source)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'upstream_guard: pacifica.downloader is {}'.format(
        source / 'pacifica' / 'downloader' / '__init__.py') in proc.stdout
    assert (tmp_path / 'ran').exists()


def test_upstream_pacifica_folder_first_on_the_path_is_refused(tmp_path: Path) -> None:
    source = _checkout(tmp_path)
    _install(tmp_path / 'site', source)
    _upstream_package(tmp_path / 'sdist')

    proc = _run_guarded(tmp_path, [tmp_path / 'sdist', tmp_path / 'site'], source)

    _assert_refused(proc, tmp_path, 'pacifica.uploader imports from {}, a file that pacifica-transfer did not '
                    'install'.format(tmp_path / 'sdist' / 'pacifica' / 'uploader' / '__init__.py'))


def test_upstream_pacifica_folder_beside_an_editable_install_is_refused(tmp_path: Path) -> None:
    source = _checkout(tmp_path)
    _install(tmp_path / 'site', source, editable=True)
    _upstream_package(tmp_path / 'sdist')

    proc = _run_guarded(tmp_path, [tmp_path / 'sdist', tmp_path / 'site', source], source)

    _assert_refused(proc, tmp_path, 'pacifica.uploader imports from {}, not from the editable checkout'.format(
        tmp_path / 'sdist' / 'pacifica' / 'uploader' / '__init__.py'))


def test_installed_upstream_distribution_is_refused(tmp_path: Path) -> None:
    source = _checkout(tmp_path)
    _install(tmp_path / 'site', source)
    info = tmp_path / 'site' / 'pacifica_downloader-0.4.1.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: pacifica-downloader\nVersion: 0.4.1\n')

    proc = _run_guarded(tmp_path, [tmp_path / 'site'], source)

    _assert_refused(proc, tmp_path, 'pacifica-downloader 0.4.1 is installed in this environment')


def test_an_install_that_differs_from_the_checkout_is_refused(tmp_path: Path) -> None:
    source = _checkout(tmp_path)
    _install(tmp_path / 'site', source)
    (source / 'pacifica' / 'uploader' / '__init__.py').write_text('"""changed since it was installed"""\n')

    proc = _run_guarded(tmp_path, [tmp_path / 'site'], source)

    _assert_refused(proc, tmp_path, 'pacifica.uploader installed at {} differs from the checkout {} in: '
                    '__init__.py'.format(tmp_path / 'site' / 'pacifica' / 'uploader',
                                         source / 'pacifica' / 'uploader'))


def test_an_install_from_another_checkout_is_refused(tmp_path: Path) -> None:
    source = _checkout(tmp_path)
    _install(tmp_path / 'site', source)
    other = tmp_path / 'other'
    other.mkdir()

    proc = _run_guarded(tmp_path, [tmp_path / 'site'], other)

    _assert_refused(proc, tmp_path, 'pacifica-transfer was installed from {}, not from this checkout {}'.format(
        source.resolve().as_uri(), other.resolve()))


def test_a_package_swapped_while_the_tests_are_imported_is_refused(tmp_path: Path) -> None:
    source = _checkout(tmp_path)
    _install(tmp_path / 'site', source)
    swap = "import sys, types\nsys.modules['pacifica.uploader'] = types.ModuleType('pacifica.uploader')\n"

    proc = _run_guarded(tmp_path, [tmp_path / 'site'], source, prelude=swap)

    assert proc.returncode != 0, proc.stdout
    assert 'upstream_guard: refusing to run: pacifica.uploader was replaced during collection' in proc.stdout
    assert not (tmp_path / 'ran').exists()
