"""Each integration test sees every endpoint variable the stack exports, whatever the machine's default ports hold.

The suite-wide conftest clears INGEST_*, POLICY_* and CARTD_* for unit tests;
the integration conftest must put back all of them. One left out makes the
library fall back to its default port, which on a machine where other
Pacifica services already run is someone else's server.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import STACK_SCRIPT

pytestmark = pytest.mark.integration


def test_every_variable_the_stack_exports_is_set(stack) -> None:
    listed = subprocess.run([sys.executable, str(STACK_SCRIPT), 'env'], capture_output=True, text=True, check=True)
    exported = dict(line.replace('export ', '', 1).partition('=')[::2] for line in listed.stdout.splitlines())
    assert exported, 'pacifica-stack env printed nothing'
    unset = sorted(name for name in exported if name not in os.environ)
    assert unset == [], 'the integration conftest does not restore {}'.format(', '.join(unset))
