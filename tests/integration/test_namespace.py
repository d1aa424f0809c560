"""pacifica.uploader and pacifica.downloader import next to the service packages and pacifica-namespace.

Several of those distributions ship an old-style ``pacifica/__init__.py``
(pkg_resources/pkgutil); this project ships none. Both install orders are
checked, each in a virtual environment of its own (cached under .stack/).
"""
from __future__ import annotations

import pytest

from . import venvs

# Building the cached venv the first time (pip from the registry) counts against the test timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

IMPORTS = '''
import pacifica.uploader, pacifica.downloader
from pacifica.uploader import Uploader
from pacifica.uploader.metadata import MetaUpdate, MetaObj
from pacifica.uploader.metadata.policyquery import PolicyQuery
from pacifica.downloader import Downloader
from pacifica.downloader.cartapi import CartAPI
import pacifica.metadata, pacifica.policy, pacifica.ingest, pacifica.cartd
import pacifica.uniqueid, pacifica.archiveinterface, pacifica.notifications
import pacifica.policy.config, pacifica.ingest.config, pacifica.cartd.config
print('ok')
'''


def check_imports(venv) -> None:
    proc = venvs.run_python(venv, IMPORTS)
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr[-3000:]


def test_project_installed_after_the_service_packages() -> None:
    venv = venvs.cached_venv('ns-services-first', [venvs.service_requirements() + ['pacifica-namespace']])
    venvs.install_project(venv)
    check_imports(venv)


def test_service_packages_installed_after_the_project() -> None:
    venv = venvs.cached_venv('ns-project-first', [
        [str(venvs.REPO)],
        venvs.service_requirements() + ['pacifica-namespace'],
    ], extra_key=venvs.project_digest())
    check_imports(venv)
