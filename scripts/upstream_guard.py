"""pytest plugin: refuse to run the upstream suites unless they import THIS project.

scripts/upstream-suites runs the test folders of the pacifica-uploader and
pacifica-downloader sdists. Passing them proves nothing if they imported the
upstream packages themselves: from an installed pacifica-uploader, or from a
`pacifica/` folder next to the tests. Loaded with `-p upstream_guard`, this
plugin checks, in the process that runs the tests, before collection and
again after it, that

- neither upstream distribution is installed;
- `pacifica.uploader` and `pacifica.downloader` are files that the
  `pacifica-transfer` distribution installed, from the checkout named by
  PACIFICA_TRANSFER_SOURCE, and (unless installed editable) identical to
  that checkout's files.

Only the standard library and pytest are used.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import urllib.parse
import urllib.request
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional

import pytest

SOURCE_VARIABLE = 'PACIFICA_TRANSFER_SOURCE'
OUR_DISTRIBUTION = 'pacifica-transfer'
UPSTREAM_DISTRIBUTIONS = ('pacifica-uploader', 'pacifica-downloader')
GUARDED_PACKAGES = ('pacifica.uploader', 'pacifica.downloader')


class ForeignImportError(Exception):
    """The suites would test something other than this checkout; the message says what."""


def _installed_from(dist: metadata.Distribution) -> Dict[str, Any]:
    """The PEP 610 record of where `dist` was installed from ({} when pip wrote none)."""
    text = dist.read_text('direct_url.json')
    return json.loads(text) if text else {}


def _url_path(url: str) -> Optional[Path]:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != 'file':
        return None
    return Path(urllib.request.url2pathname(parsed.path)).resolve()


def _differing_files(package_dir: Path, source_dir: Path) -> List[str]:
    """Python files of the installed package that are missing from the checkout or differ from it."""
    differing = []
    for installed in sorted(package_dir.rglob('*.py')):
        checkout = source_dir / installed.relative_to(package_dir)
        if not checkout.is_file() or checkout.read_bytes() != installed.read_bytes():
            differing.append(str(installed.relative_to(package_dir)))
    return differing


def check_package(module: ModuleType, source: Path) -> None:
    """Raise ForeignImportError unless `module` is this checkout's package, as pacifica-transfer installed it."""
    where = Path(module.__file__ or '').resolve()
    try:
        ours = metadata.distribution(OUR_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ForeignImportError(f'{OUR_DISTRIBUTION} is not installed, yet {module.__name__} imports from '
                                 f'{where}') from None
    origin = _installed_from(ours)
    origin_path = _url_path(str(origin.get('url', '')))
    if origin_path != source:
        raise ForeignImportError(f'{OUR_DISTRIBUTION} was installed from {origin.get("url") or "an index"}, '
                                 f'not from this checkout {source}')
    relative = Path(*module.__name__.split('.'))
    if (origin.get('dir_info') or {}).get('editable'):
        if where.parent != source / relative:
            raise ForeignImportError(f'{module.__name__} imports from {where}, not from the editable '
                                     f'checkout {source / relative}')
        return
    installed = {Path(str(ours.locate_file(name))).resolve() for name in ours.files or ()}
    if where not in installed:
        raise ForeignImportError(f'{module.__name__} imports from {where}, a file that {OUR_DISTRIBUTION} '
                                 'did not install')
    differing = _differing_files(where.parent, source / relative)
    if differing:
        raise ForeignImportError(f'{module.__name__} installed at {where.parent} differs from the checkout '
                                 f'{source / relative} in: {", ".join(differing)} (reinstall it)')


def check_environment(source: Path) -> Dict[str, ModuleType]:
    """Check both packages and the absence of upstream; return the verified modules by name."""
    for name in UPSTREAM_DISTRIBUTIONS:
        try:
            found = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        raise ForeignImportError(f'{name} {found.version} is installed in this environment '
                                 f'({found.locate_file("")}); the suites must not see it')
    verified = {}
    for name in GUARDED_PACKAGES:
        module = importlib.import_module(name)
        check_package(module, source)
        verified[name] = module
    return verified


def _source_from_environment() -> Path:
    value = os.environ.get(SOURCE_VARIABLE)
    if not value:
        raise ForeignImportError(f'{SOURCE_VARIABLE} must name the checkout the suites are meant to test')
    return Path(value).resolve()


_verified: Dict[str, ModuleType] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Before any test module is imported: the packages that imports will get are ours."""
    try:
        _verified.update(check_environment(_source_from_environment()))
    except ForeignImportError as exc:
        raise pytest.UsageError(f'upstream_guard: refusing to run: {exc}') from None


def pytest_report_header(config: pytest.Config) -> List[str]:
    """Say in the run's header which files are under test."""
    return [f'upstream_guard: {name} is {module.__file__}' for name, module in _verified.items()]


def pytest_collection_finish(session: pytest.Session) -> None:
    """After collection: the test modules imported the very modules that were checked."""
    for name, module in _verified.items():
        if sys.modules.get(name) is not module:
            pytest.exit(f'upstream_guard: refusing to run: {name} was replaced during collection by '
                        f'{getattr(sys.modules.get(name), "__file__", None)}', returncode=4)
