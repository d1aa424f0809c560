"""The unit suite's socket guard (tests/unit/conftest.py) fails every way a test can reach a socket."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.unit.conftest import GUARDED, SocketInUnitTest

REPO = Path(__file__).resolve().parents[2]

#: Each test's name says what the guard must make of it.
SAMPLE = textwrap.dedent('''
    import socket
    import threading

    import pytest
    import requests


    @pytest.fixture(scope='module')
    def listening():
        sock = socket.socket()
        sock.bind(('127.0.0.1', 0))
        yield sock
        sock.close()


    def test_passes_without_sockets(tmp_path):
        (tmp_path / 'a').write_bytes(b'x')
        left, right = socket.socketpair()  # no address: not a network
        left.close(), right.close()


    def test_fails_binding():
        socket.socket().bind(('127.0.0.1', 0))


    def test_fails_connecting_even_when_the_error_is_swallowed():
        try:
            requests.get('http://127.0.0.1:9/', timeout=1)
        except Exception:
            pass


    def test_fails_when_a_thread_connects():
        def connect():
            try:
                socket.create_connection(('127.0.0.1', 9), timeout=1)
            except Exception:
                pass
        worker = threading.Thread(target=connect)
        worker.start()
        worker.join()


    def test_fails_connect_ex():
        socket.socket().connect_ex(('127.0.0.1', 9))


    def test_errors_for_a_module_scoped_server(listening):
        pass
''')


def test_the_guard_fails_each_test_that_binds_or_connects(tmp_path: Path) -> None:
    (tmp_path / 'test_sample.py').write_text(SAMPLE, encoding='utf-8')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    done = subprocess.run([sys.executable, '-m', 'pytest', '-p', 'tests.unit.conftest', '-p', 'no:cacheprovider',
                           '-q', '-rA', '--rootdir', str(tmp_path), 'test_sample.py'],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    outcomes = {}
    for outcome, name in re.findall(r'^(PASSED|FAILED|ERROR) test_sample\.py::(\w+)', done.stdout, re.M):
        outcomes.setdefault(name, set()).add(outcome)
    assert outcomes == {
        'test_passes_without_sockets': {'PASSED'},
        'test_fails_binding': {'FAILED'},
        'test_fails_connecting_even_when_the_error_is_swallowed': {'FAILED'},
        'test_fails_when_a_thread_connects': {'FAILED'},
        'test_fails_connect_ex': {'FAILED'},
        'test_errors_for_a_module_scoped_server': {'ERROR'},
    }, done.stdout + done.stderr
    assert 'tests with servers belong in tests/functional' in done.stdout


def test_the_guard_is_on_during_unit_tests_and_raises_its_own_error() -> None:
    for name in GUARDED:
        assert getattr(socket.socket, name).__qualname__.endswith('_refusal.<locals>.refused'), name
    assert issubclass(SocketInUnitTest, RuntimeError) and not issubclass(SocketInUnitTest, OSError)
