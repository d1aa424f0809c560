"""A real local Dask cluster for the tests: ``dask scheduler`` and ``dask worker`` as processes of their own.

Both are started through their own command line (``python -m dask scheduler``,
``python -m dask worker``) with this interpreter, on loopback and a free
port the scheduler picks itself (written to its scheduler file), with this
checkout first on ``PYTHONPATH`` so the workers import the code under test.
Each process leads a session of its own: :meth:`LocalDaskCluster.close`
stops the whole group, and kills it when it does not stop in time::

    with LocalDaskCluster(tmp_path, workers=2) as cluster:
        client = distributed.Client(cluster.address)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import List, Optional, Type

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Seconds the cluster may take to come up before the test fails.
START_TIMEOUT = 90.0


class LocalDaskCluster:
    """A scheduler and ``workers`` single-threaded worker processes, until :meth:`close`."""

    def __init__(self, folder: Path, workers: int = 2, threads: int = 1) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheduler_file = self.folder / 'scheduler.json'
        self.processes: List[subprocess.Popen] = []
        self.address = ''
        self.workers = workers
        try:
            self._start('scheduler', '--host', '127.0.0.1', '--port', '0', '--no-dashboard',
                        '--scheduler-file', str(self.scheduler_file))
            self.address = self._wait_for_address()
            for index in range(workers):
                self._start('worker', self.address, '--host', '127.0.0.1', '--nthreads', str(threads),
                            '--no-nanny', '--no-dashboard', '--name', 'worker-{}'.format(index),
                            '--local-directory', str(self.folder / 'worker-{}'.format(index)))
        except BaseException:
            self.close()
            raise

    def _start(self, role: str, *args: str) -> None:
        environ = {key: value for key, value in os.environ.items()
                   if not key.startswith(('INGEST_', 'POLICY_', 'CARTD_', 'DASK_'))}
        environ['PYTHONPATH'] = ROOT + os.pathsep + environ.get('PYTHONPATH', '')
        log = open(self.folder / '{}-{}.log'.format(role, len(self.processes)), 'wb')
        with log:
            self.processes.append(subprocess.Popen([sys.executable, '-m', 'dask', role, *args], cwd=str(self.folder),
                                                   env=environ, stdout=log, stderr=subprocess.STDOUT,
                                                   start_new_session=True))

    def _wait_for_address(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.processes[0].poll() is not None:
                raise RuntimeError('dask scheduler exited early: {}'.format(self.log('scheduler')))
            try:
                return str(json.loads(self.scheduler_file.read_text())['address'])
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        raise TimeoutError('dask scheduler did not write {} in {:g} s'.format(self.scheduler_file, START_TIMEOUT))

    def log(self, role: str) -> str:
        """The output of the processes of ``role`` (``scheduler`` or ``worker``), for failure messages."""
        return '\n'.join(path.read_text(errors='replace') for path in sorted(self.folder.glob(role + '-*.log')))

    def close(self, grace: float = 10.0) -> None:
        """Stop every process (workers first), killing what does not stop within ``grace`` seconds."""
        for process in reversed(self.processes):
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in reversed(self.processes):
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait(5)
        self.processes.clear()

    def __enter__(self) -> 'LocalDaskCluster':
        return self

    def wait_for_workers(self) -> None:
        """Return once every worker has joined the scheduler; fail the test with their log if they do not."""
        import distributed
        import pytest
        with distributed.Client(self.address, timeout=60) as client:
            try:
                client.wait_for_workers(self.workers, timeout=90)
            except Exception:  # noqa: BLE001 - show why the cluster did not come up
                pytest.fail('the Dask workers did not join: {}'.format(self.log('worker')))

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        self.close()


def _signal(process: subprocess.Popen, number: int) -> None:
    """Signal the process's whole session (its own children too), if it still runs."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, number)
        except ProcessLookupError:
            pass
