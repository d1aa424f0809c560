"""pacifica-upload and pacifica-download against the real services: errors that point to the fix, -v as it happens."""
from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from pacifica.downloader import cli as download_cli
from pacifica.uploader import cli as upload_cli

from .conftest import INSTRUMENT, PROJECT, UPLOADER_NETWORK_ID, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

META = ['--meta', 'Transactions.project={}'.format(PROJECT), '--meta', 'Transactions.instrument={}'.format(INSTRUMENT)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / 'sample').mkdir()
    (tmp_path / 'sample' / 'notes.txt').write_text('written by the command tests\n')
    monkeypatch.chdir(tmp_path)
    return 'sample'


def test_metadata_without_a_submitter_says_to_pass_user(stack: Stack, sample: str,
                                                        capsys: pytest.CaptureFixture) -> None:
    assert upload_cli.main([*META, sample]) == 4
    err = capsys.readouterr().err
    assert 'Invalid values for submitter' in err
    assert 'pass --user ID|NETWORK_ID or --meta Transactions.submitter=ID' in err


def test_an_unreachable_ingest_url_names_the_refusal_and_the_flag(stack: Stack, sample: str,
                                                                   capsys: pytest.CaptureFixture) -> None:
    ingest = 'http://127.0.0.1:{}'.format(_closed_port())
    code = upload_cli.main(['--ingest-url', ingest, '--retries', '1', '--user', UPLOADER_NETWORK_ID, *META, sample])
    err = capsys.readouterr().err
    assert code == 3
    assert 'POST {}/upload failed: connection refused'.format(ingest) in err
    assert 'attempt 1 failed, trying again' in err  # shown as it happens, without -v
    assert "the ingest server's URL comes from --ingest-url, else the environment variables INGEST_" in err


def test_an_unreachable_cart_url_names_the_refusal_and_the_flag(stack: Stack, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    cart = 'http://127.0.0.1:{}'.format(_closed_port())
    event = tmp_path / 'event.json'
    record = {'destinationTable': 'Files', '_id': 1, 'name': 'a.txt', 'subdir': '', 'size': 2, 'hashtype': 'sha1',
              'hashsum': '3f786850e387550fdab836ed7e6dc881de23001b'}
    event.write_text(json.dumps({'data': [record]}))
    code = download_cli.main(['--cloudevent', str(event), '--destination', str(tmp_path / 'down'), '--cart-url', cart,
                              '--retries', '0'])
    err = capsys.readouterr().err
    assert code == 3
    assert 'POST {}/'.format(cart) in err and 'connection refused' in err
    assert "the cart server's URL comes from --cart-url, else the environment variables CARTD_CART_API_URL" in err


def test_verbose_upload_shows_requests_polls_and_agreeing_rates(stack: Stack, sample: str,
                                                                capsys: pytest.CaptureFixture) -> None:
    code = upload_cli.main(['-v', '--progress', 'lines', '--user', UPLOADER_NETWORK_ID, *META, '--wait', sample])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert re.search(r'POST http://\S+/upload -> 200', err) and re.search(r'GET http://\S+/get_state -> 200', err)
    assert re.search(r'Ingest job \d+ has not finished; next poll in \d\.\d s', err)
    assert 'state: OK' in out
    assert re.search(r'verified: transaction \d+ holds the \d+ file\(s\) sent', out)  # read from metadata
    final = [line for line in err.splitlines() if re.match(r'upload: .* in \d+:\d\d \(', line)]
    assert len(final) == 1, err
