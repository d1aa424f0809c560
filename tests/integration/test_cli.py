"""pacifica-cli 0.5.2, the main existing consumer, runs unchanged on this project against the real stack.

The CLI comes from the package registry with ``--no-deps``; its other
requirements are installed beside it, and this project stands in for
pacifica-uploader and pacifica-downloader (cached venv: .stack/cli-venv).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from pacifica.uploader import Uploader

from . import venvs
from .conftest import TREE_FILES, UPLOADER_NETWORK_ID, Stack, files_by_path, sha1, tree_on_disk, wait_for_transaction

# Building the cached venv the first time (pip from the registry) counts against the test timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CLI_TIMEOUT = 180

#: The CLI's upload metadata configuration: everything is looked up through policy (the CLI expects
#: query results on every item, so there is no fixed key/value item here).
UPLOADER_CONFIG = [
    {'destinationTable': 'Transactions.submitter', 'metaID': 'logon', 'displayTitle': 'Logged on as',
     'displayType': 'logged_on', 'sourceTable': 'users', 'queryDependency': {'_id': 'logon'},
     'queryFields': ['first_name', 'last_name', '_id'], 'valueField': '_id',
     'displayFormat': '{_id} {first_name} {last_name}', 'value': ''},
    {'destinationTable': 'Transactions.project', 'metaID': 'project', 'displayTitle': 'Project',
     'displayType': 'select', 'sourceTable': 'projects', 'queryDependency': {},
     'queryFields': ['_id', 'title'], 'valueField': '_id', 'displayFormat': '{_id} {title}', 'value': ''},
    {'destinationTable': 'Transactions.instrument', 'metaID': 'instrument', 'displayTitle': 'Instrument',
     'displayType': 'select', 'sourceTable': 'instruments', 'queryDependency': {'project_id': 'project'},
     'queryFields': ['_id', 'name_short'], 'valueField': '_id', 'displayFormat': '{_id} {name_short}', 'value': ''},
]
SELECTION = ['--logon', UPLOADER_NETWORK_ID, '--project', 'stk1001', '--instrument', '3101']


@pytest.fixture(scope='session')
def cli_venv() -> Path:
    """The CLI on this project; PACIFICA_IT_CLI_VENV names another venv to run the same tests against
    (for example one with the upstream pacifica-uploader and pacifica-downloader, to compare)."""
    if os.environ.get('PACIFICA_IT_CLI_VENV'):
        return Path(os.environ['PACIFICA_IT_CLI_VENV'])
    venv = venvs.cached_venv('cli-venv', [
        ['requests', 'urllib3', 'jsonschema', 'pager', 'pacifica-namespace'],
        ['--no-deps', 'pacifica-cli==0.5.2'],
    ])
    venvs.install_project(venv)
    return venv


class Cli:
    """Runs pacifica-cli with a private HOME, configured for the stack."""

    def __init__(self, venv: Path, home: Path, stack: Stack) -> None:
        self.venv = venv
        self.home = home
        self.workdir = home.parent
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(('INGEST_', 'POLICY_', 'CARTD_', 'UPLOAD', 'DOWNLOAD'))}
        self.env.update({
            'HOME': str(home), 'PYTHONIOENCODING': 'utf-8',
            # defaults that `configure` offers (and keeps when the answer is empty)
            'UPLOAD_URL': stack.ingest + '/upload', 'UPLOAD_STATUS_URL': stack.ingest + '/get_state',
            'UPLOAD_POLICY_URL': stack.policy + '/uploader', 'UPLOAD_VALIDATION_URL': stack.policy + '/ingest',
            'DOWNLOAD_URL': stack.cartd, 'DOWNLOAD_POLICY_URL': stack.policy + '/status/transactions/by_id',
        })

    def run(self, *args: str, stdin: str = '', cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.venv / 'bin' / 'pacifica-cli'), *args], input=stdin, capture_output=True,
                              text=True, env=self.env, cwd=str(cwd or self.home), timeout=CLI_TIMEOUT, check=False)
        assert proc.returncode == 0, 'pacifica-cli {} failed ({}):\n{}\n{}'.format(
            ' '.join(args), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
        return proc

    def upload(self, *args: str) -> subprocess.CompletedProcess:
        """Upload as users do: from the directory that holds the data, naming it relatively."""
        return self.run('upload', *SELECTION, *args, cwd=self.workdir)


@pytest.fixture
def cli(cli_venv: Path, tmp_path: Path, stack: Stack) -> Cli:
    home = tmp_path / 'home'
    (home / '.pacifica_cli').mkdir(parents=True)
    (home / '.pacifica_cli' / 'uploader.json').write_text(json.dumps(UPLOADER_CONFIG), encoding='utf-8')
    runner = Cli(cli_venv, home, stack)
    runner.run('configure', stdin='\n' * 12)
    return runner


def job_id_of(output: str) -> int:
    found = re.search(r'(?:Waiting job to complete|Not Waiting Job ID) \((\d+)\)', output)
    assert found, 'no job id in the CLI output:\n' + output
    return int(found.group(1))


def final_status(output: str) -> Dict[str, Any]:
    return json.loads(output[output.index('{'):])


def check_uploaded(stack: Stack, job_id: int, expected: Dict[str, bytes]) -> Dict[str, Any]:
    transaction = wait_for_transaction(stack, job_id)
    by_name = {Path(path).name: record for path, record in files_by_path(transaction).items()}
    assert sorted(by_name) == sorted(Path(name).name for name in expected)
    for name, data in expected.items():
        assert by_name[Path(name).name]['hashsum'] == sha1(data), name
    return transaction


def test_configure_writes_the_endpoints(cli: Cli, stack: Stack) -> None:
    written = (cli.home / '.pacifica_cli' / 'config.ini').read_text()
    assert 'upload_url = {}/upload'.format(stack.ingest) in written
    assert 'download_url = {}'.format(stack.cartd) in written


def test_upload_one_file(cli: Cli, stack: Stack, upload_tree: Path) -> None:
    proc = cli.upload('upload-tree/résumé.txt')
    assert final_status(proc.stdout)['state'] == 'OK'
    check_uploaded(stack, job_id_of(proc.stdout), {'résumé.txt': TREE_FILES['résumé.txt']})


def test_upload_a_directory(cli: Cli, stack: Stack, upload_tree: Path) -> None:
    proc = cli.upload('upload-tree')
    assert final_status(proc.stdout)['state'] == 'OK'
    check_uploaded(stack, job_id_of(proc.stdout), TREE_FILES)


def test_local_save_then_local_retry(cli: Cli, stack: Stack, upload_tree: Path, tmp_path: Path) -> None:
    saved = tmp_path / 'bundle.tar'
    first = cli.upload('--local-save', str(saved), 'upload-tree')
    assert saved.stat().st_size > 0
    check_uploaded(stack, job_id_of(first.stdout), TREE_FILES)
    again = cli.upload('--local-retry', str(saved))
    assert final_status(again.stdout)['state'] == 'OK'
    assert job_id_of(again.stdout) != job_id_of(first.stdout)
    check_uploaded(stack, job_id_of(again.stdout), TREE_FILES)


def test_tar_in_tar(cli: Cli, stack: Stack, upload_tree: Path) -> None:
    proc = cli.upload('--tar-in-tar', 'upload-tree')
    assert final_status(proc.stdout)['state'] == 'OK'
    transaction = wait_for_transaction(stack, job_id_of(proc.stdout))
    assert len(transaction['files']) == 1  # the inner tar is the one file of the transaction
    only = next(iter(transaction['files'].values()))
    assert only['name'].endswith('.tar')


def test_nowait_returns_before_the_job_ends(cli: Cli, stack: Stack, upload_tree: Path) -> None:
    proc = cli.upload('--nowait', 'upload-tree')
    job_id = job_id_of(proc.stdout)
    assert 'Not Waiting Job ID' in proc.stdout
    assert Uploader().wait(job_id, timeout=90, interval=0.2)['state'] == 'OK'
    check_uploaded(stack, job_id, TREE_FILES)


def test_dry_run_uploads_nothing(cli: Cli, upload_tree: Path) -> None:
    proc = cli.upload('--dry-run', 'upload-tree')
    assert 'Waiting job' not in proc.stdout and 'Job ID' not in proc.stdout
    assert 'Setting project to stk1001' in proc.stdout


def uploaded_transaction(cli: Cli, stack: Stack, upload_tree: Path) -> Dict[str, Any]:
    proc = cli.upload('upload-tree')
    return check_uploaded(stack, job_id_of(proc.stdout), TREE_FILES)


def test_download_by_transaction_id(cli: Cli, stack: Stack, upload_tree: Path, tmp_path: Path) -> None:
    transaction = uploaded_transaction(cli, stack, upload_tree)
    target = tmp_path / 'by-id'
    target.mkdir()
    cli.run('download', '--destination', str(target), '--transaction-id', str(transaction['_id']))
    assert {Path(k).name: v for k, v in tree_on_disk(target / 'data').items()} == {
        Path(k).name: v for k, v in TREE_FILES.items()}


def test_download_by_cloud_event(cli: Cli, stack: Stack, upload_tree: Path, tmp_path: Path) -> None:
    from .conftest import cloud_event_for
    transaction = uploaded_transaction(cli, stack, upload_tree)
    event_file = tmp_path / 'event.json'
    event_file.write_text(json.dumps(cloud_event_for(transaction)), encoding='utf-8')
    target = tmp_path / 'by-event'
    target.mkdir()
    cli.run('download', '--destination', str(target), '--cloudevent', str(event_file))
    assert {Path(k).name: v for k, v in tree_on_disk(target / 'data').items()} == {
        Path(k).name: v for k, v in TREE_FILES.items()}


