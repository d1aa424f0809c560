"""scripts/quickstart and scripts/pacifica-stack beside another Pacifica: a listener on every default port.

The listeners (tests/scripts/trapnet.py) stand for somebody else's
deployment. The scripts must start their own services on other ports, use
only those, and stop only what they started; not one connection may reach a
listener. Everything runs with a stack home of its own, in a private network
namespace when the process may create one (root, CAP_SYS_ADMIN), so a stack
running on this machine is neither seen nor touched; otherwise in the
machine's network, with listeners on the default ports that are free.
It reuses the service virtualenv (.stack/venv) and the project's .venv, and
takes a minute or two.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

#: The report is made once, by whichever test runs first: it starts and stops two stacks.
pytestmark = pytest.mark.timeout(1800)

REPO = Path(__file__).resolve().parents[2]
STACK = str(REPO / 'scripts' / 'pacifica-stack')
QUICKSTART = str(REPO / 'scripts' / 'quickstart')
TRAPNET = str(Path(__file__).with_name('trapnet.py'))

#: metadata, policy, ingest, archive interface, unique id, cartd, notifications, PostgreSQL, redis
DEFAULT_PORTS = [8121, 8181, 8066, 8080, 8051, 8081, 8070, 5432, 6379]
CAP_SYS_ADMIN = 21
#: A free port asked for with PACIFICA_STACK_PORT_CARTD.
ASKED_CARTD_PORT = 18081
#: Endpoint settings of a shell that points at the other deployment: the scripts must ignore them.
FOREIGN_ENDPOINTS = {
    'INGEST_UPLOAD_URL': 'http://127.0.0.1:8066/upload', 'INGEST_STATUS_URL': 'http://127.0.0.1:8066/get_state',
    'POLICY_PORT': '8181', 'CARTD_CART_API_URL': 'http://127.0.0.1:8081',
}


def step(name: str, *argv: str, **env: str) -> Dict[str, Any]:
    return {'name': name, 'argv': list(argv), 'env': env}


def exports(text: str) -> Dict[str, str]:
    return dict(re.findall(r'^export (\w+)=(\S*)$', text, flags=re.MULTILINE))


def output(result: Dict[str, Any]) -> str:
    return f"exit {result['rc']}\n--- stdout\n{result['stdout']}\n--- stderr\n{result['stderr']}"


@pytest.fixture(scope='module')
def report(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """Run the scripts once among the listeners; every test reads the same report."""
    if not Path(REPO / '.venv' / 'bin' / 'pacifica-upload').exists():
        pytest.fail('the project .venv is missing: run scripts/run-tests (or scripts/quickstart) once first')
    # The namespace has no network: install what the stack needs beforehand (a no-op once done).
    subprocess.run([sys.executable, STACK, 'install'], check=True)
    work = tmp_path_factory.mktemp('stack-ports')
    common = {'PACIFICA_STACK_HOME': str(work / 'stack'), 'QUICKSTART_DIR': str(work / 'quickstart'),
              **FOREIGN_ENDPOINTS}
    plan = {
        'ports': DEFAULT_PORTS,
        'steps': [
            step('quickstart, ingest port asked for and taken', QUICKSTART,
                 PACIFICA_STACK_PORT_INGEST='8066', **common),
            step('quickstart', QUICKSTART, **common),
            step('up', STACK, 'up', PACIFICA_STACK_PORT_CARTD=str(ASKED_CARTD_PORT), **common),
            step('up again', STACK, 'up', **common),
            step('env', STACK, 'env', **common),
            step('status', STACK, 'status', **common),
            step('run', STACK, 'run', 'env', INGEST_PROTO='https', **common),
            step('down', STACK, 'down', **common),
            step('status after down', STACK, 'status', **common),
            step('env after down', STACK, 'env', **common),
        ],
        'cleanup': [step('reset', STACK, 'reset', **common)],
    }
    proc = subprocess.run([sys.executable, TRAPNET], input=json.dumps(plan), capture_output=True, text=True,
                          timeout=1500, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def may_unshare_the_network() -> bool:
    """CAP_SYS_ADMIN in the effective set: what unshare(CLONE_NEWNET) needs."""
    status = Path('/proc/self/status').read_text()
    effective = int(re.search(r'^CapEff:\s*([0-9a-f]+)$', status, flags=re.MULTILINE).group(1), 16)
    return bool(effective & (1 << CAP_SYS_ADMIN))


def test_no_connection_reaches_another_deployment(report: Dict[str, Any]) -> None:
    if may_unshare_the_network():  # then the scripts ran in a network of their own, every default port a trap
        assert report['private_network']
        assert {int(port) for port in report['trapped']} == set(DEFAULT_PORTS)
    assert report['connections'] == []


def test_quickstart_runs_beside_another_deployment(report: Dict[str, Any]) -> None:
    result = report['steps']['quickstart']
    assert result['rc'] == 0, output(result)
    assert 'quickstart: OK' in result['stdout'], output(result)


def test_quickstart_stops_when_the_stack_cannot_start(report: Dict[str, Any]) -> None:
    result = report['steps']['quickstart, ingest port asked for and taken']
    assert result['rc'] != 0, output(result)
    assert 'PACIFICA_STACK_PORT_INGEST=8066' in result['stderr'], output(result)
    assert 'quickstart: FAILED: scripts/pacifica-stack up' in result['stderr'], output(result)
    assert 'uploading' not in result['stderr'], output(result)


def test_up_moves_every_service_off_a_taken_port(report: Dict[str, Any]) -> None:
    up, again, env = (report['steps'][name] for name in ('up', 'up again', 'env'))
    for result in (up, again, env):
        assert result['rc'] == 0, output(result)
    endpoints = exports(up['stdout'])
    assert exports(again['stdout']) == endpoints == exports(env['stdout'])
    ports = {name: int(endpoints[name]) for name in ('INGEST_PORT', 'POLICY_PORT', 'CARTD_PORT')}
    ports.update({name: int(endpoints[name].rsplit(':', 1)[1]) for name in endpoints if name.endswith('_URL')
                  and name.startswith('PACIFICA_')})
    assert ports['CARTD_PORT'] == ASKED_CARTD_PORT
    if report['private_network']:
        assert not set(ports.values()) & set(DEFAULT_PORTS), ports
    status = report['steps']['status']
    assert status['rc'] == 0, output(status)
    for port in ports.values():
        assert f':{port} ' in status['stdout'], output(status)
    moved = re.search(r'postgresql +up +127\.0\.0\.1:(\d+) .*\nredis +up +127\.0\.0\.1:(\d+) ', status['stdout'])
    assert moved, output(status)
    if report['private_network']:
        assert not {int(moved.group(1)), int(moved.group(2))} & set(DEFAULT_PORTS), output(status)


def test_run_gives_a_command_the_stack_endpoints_only(report: Dict[str, Any]) -> None:
    result = report['steps']['run']
    assert result['rc'] == 0, output(result)
    seen = dict(line.split('=', 1) for line in result['stdout'].splitlines() if '=' in line)
    expected = exports(report['steps']['env']['stdout'])
    assert {name: seen.get(name) for name in expected} == expected
    assert 'INGEST_PROTO' not in seen


def test_down_stops_everything_up_started(report: Dict[str, Any]) -> None:
    down = report['steps']['down']
    assert down['rc'] == 0, output(down)
    after: List[Dict[str, Any]] = [report['steps'][name] for name in ('status after down', 'env after down')]
    assert all(result['rc'] == 1 for result in after), '\n'.join(output(result) for result in after)
    assert 'is not running' in after[1]['stderr'], output(after[1])
    assert after[1]['stdout'] == ''
    if report['private_network']:
        assert report['listening_after_steps'] == []
    assert report['steps']['reset']['rc'] == 0, output(report['steps']['reset'])

