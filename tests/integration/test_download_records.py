"""fetch_transaction, recorded modification times and pacifica-download, through the real services."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict

import pytest

from pacifica.downloader import Downloader, UnknownTransactionError, cli, fetch_transaction
from pacifica.uploader import Uploader

from .conftest import TREE_FILES, Stack, make_tree, tree_on_disk, upload_directory, wait_for_transaction

pytestmark = pytest.mark.integration

JOB_DEADLINE = 90.0
#: A modification time per uploaded file, whole seconds apart from any download time.
MTIMES = {relative: 1262304000 + 86400 * index for index, relative in enumerate(sorted(TREE_FILES))}


@pytest.fixture(scope='module')
def uploaded(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """TREE_FILES uploaded with known modification times: the job id and policy's record of it."""
    root = make_tree(tmp_path_factory.mktemp('mtimes') / 'tree')
    for relative, mtime in MTIMES.items():
        os.utime(str(root / relative), (mtime, mtime))
    job_id = upload_directory(root)
    Uploader().wait(job_id, timeout=JOB_DEADLINE, interval=0.2)
    return {'job_id': job_id, 'record': wait_for_transaction(stack, job_id)}


def _mtimes(root: Path) -> Dict[str, float]:
    return {path.relative_to(root).as_posix(): path.stat().st_mtime for path in root.rglob('*') if path.is_file()}


def test_fetch_transaction_returns_policys_record(stack: Stack, uploaded: Dict[str, Any]) -> None:
    record = fetch_transaction(uploaded['job_id'])  # POLICY_* from the stack's environment
    assert record == stack.transaction(uploaded['job_id'])
    assert len(record['files']) == len(TREE_FILES)


def test_fetch_transaction_of_an_unknown_id(stack: Stack) -> None:
    """Policy answers 200 with an error document; that is an unknown transaction, not a record."""
    with pytest.raises(UnknownTransactionError) as caught:
        fetch_transaction(424242, policy_url=stack.policy)
    assert caught.value.transaction_id == 424242
    assert 'No Transaction with an ID of 424242' in str(caught.value)


def test_downloaded_files_get_their_recorded_mtimes(uploaded: Dict[str, Any], tmp_path: Path) -> None:
    Downloader().transactioninfo(str(tmp_path), fetch_transaction(uploaded['job_id']))
    assert tree_on_disk(tmp_path / 'data') == TREE_FILES
    assert _mtimes(tmp_path / 'data') == MTIMES


def test_pacifica_download_restores_the_mtimes(uploaded: Dict[str, Any], tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    code = cli.main(['--transaction-id', str(uploaded['job_id']), '--destination', str(tmp_path / 'copy')])
    assert code == 0, capsys.readouterr().err
    assert tree_on_disk(tmp_path / 'copy' / 'data') == TREE_FILES
    assert _mtimes(tmp_path / 'copy' / 'data') == MTIMES


def test_pacifica_download_of_an_unknown_transaction_makes_no_folder(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--transaction-id', '424242', '--destination', str(tmp_path / 'copy')]) == 2
    assert 'knows no transaction 424242' in capsys.readouterr().err
    assert os.listdir(str(tmp_path)) == []


def test_a_failed_pacifica_download_removes_its_folders_and_says_why(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    """Fixture transaction 901 lists file 903, which the archive lacks: cartd fails the cart."""
    code = cli.main(['--transaction-id', '901', '--destination', str(tmp_path / 'new' / 'copy'),
                     '--progress', 'lines', '--timeout', '60'])
    err = capsys.readouterr().err
    assert code == 3, err
    assert re.search(r'^pacifica-download: error: cart .* failed', err, re.MULTILINE), err
    assert 'stopped after' not in err
    assert os.listdir(str(tmp_path)) == []
