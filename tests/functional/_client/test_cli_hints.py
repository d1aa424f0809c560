"""The commands' errors point to the fix, and they show retries and requests as they happen."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pacifica.downloader import cli as download_cli
from pacifica.uploader import cli as upload_cli
from tests.helpers.server import Reply
from tests.helpers.commands import GOOD_META, FakeCart, FakeIngestPolicy, closed_port


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / 'sample').mkdir()
    (tmp_path / 'sample' / 'a.txt').write_bytes(b'alpha\n')
    monkeypatch.chdir(tmp_path)
    return 'sample'


def _error_of(err: str) -> str:
    """The ``error:`` line and the hint lines below it."""
    return err[err.index(': error: '):]


def test_an_unreachable_ingest_server_is_named_with_its_flag_and_variables(
        sample: str, services: FakeIngestPolicy, capsys: pytest.CaptureFixture) -> None:
    ingest = 'http://127.0.0.1:{}'.format(closed_port())
    code = upload_cli.main(['--ingest-url', ingest, '--policy-url', services.url, '--retries', '1', *GOOD_META,
                            sample])
    error = _error_of(capsys.readouterr().err)
    assert code == 3
    assert 'POST {}/upload failed: connection refused by 127.0.0.1'.format(ingest) in error
    assert re.search(r'\(2 attempts in \d+\.\d s\)', error)
    assert '--ingest-url' in error and 'INGEST_PORT' in error and 'http://127.0.0.1:8066' in error
    assert 'NewConnectionError' not in error and '_Watched' not in error


def test_an_unreachable_policy_server_is_named_with_its_flag_and_variables(
        sample: str, capsys: pytest.CaptureFixture) -> None:
    policy = 'http://127.0.0.1:{}'.format(closed_port())
    assert upload_cli.main(['--policy-url', policy, '--retries', '0', *GOOD_META, sample]) == 3
    error = _error_of(capsys.readouterr().err)
    assert 'POST {}/ingest failed: connection refused'.format(policy) in error
    assert '--policy-url' in error and 'POLICY_PORT' in error and '--ingest-url' not in error


def test_an_unresolvable_cart_server_is_named_with_its_flag_and_variables(
        tmp_path: Path, cart: FakeCart, capsys: pytest.CaptureFixture) -> None:
    code = download_cli.main(['--transaction-id', '67', '--destination', str(tmp_path / 'out'), '--policy-url',
                              cart.url, '--cart-url', 'http://pacifica-nowhere.invalid:8081', '--retries', '0'])
    error = _error_of(capsys.readouterr().err)
    assert code == 3
    assert "the host name 'pacifica-nowhere.invalid' could not be resolved" in error
    assert '--cart-url' in error and 'CARTD_CART_API_URL' in error


def test_an_unreachable_policy_server_of_the_downloader_is_named(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    policy = 'http://127.0.0.1:{}'.format(closed_port())
    assert download_cli.main(['--transaction-id', '67', '--destination', str(tmp_path / 'out'), '--policy-url',
                              policy, '--retries', '0']) == 3
    error = _error_of(capsys.readouterr().err)
    assert 'connection refused' in error and '--policy-url' in error and 'POLICY_ADDR' in error


def test_metadata_without_a_submitter_says_how_to_name_one(sample: str, services: FakeIngestPolicy,
                                                           capsys: pytest.CaptureFixture) -> None:
    services.validation = Reply.json({'status': '412 Precondition Failed', 'traceback': '',
                                      'message': 'Precondition Failed: Invalid values for submitter'}, status=412)
    code = upload_cli.main([*services.flags(), '--meta', 'Transactions.project=1234a', sample])
    error = _error_of(capsys.readouterr().err)
    assert code == 4
    assert 'Invalid values for submitter' in error
    assert '--user' in error and '--meta Transactions.submitter=' in error
    # Metadata that names a submitter was refused for something else: no such hint then.
    assert upload_cli.main([*services.flags(), *GOOD_META, sample]) == 4
    assert '--user' not in capsys.readouterr().err


def test_retries_are_shown_as_they_happen_unless_quiet(sample: str, capsys: pytest.CaptureFixture) -> None:
    policy = 'http://127.0.0.1:{}'.format(closed_port())
    upload_cli.main(['--policy-url', policy, '--retries', '2', *GOOD_META, sample])
    err = capsys.readouterr().err
    retries = [line for line in err.splitlines() if 'trying again' in line]
    assert len(retries) == 2 and all(line.startswith('pacifica-upload: POST ') for line in retries), err
    assert err.index('attempt 2 failed') < err.index(': error: ')
    upload_cli.main(['-q', '--policy-url', policy, '--retries', '2', *GOOD_META, sample])
    assert 'trying again' not in capsys.readouterr().err


def test_verbose_shows_each_request_poll_and_wait(sample: str, services: FakeIngestPolicy,
                                                 capsys: pytest.CaptureFixture) -> None:
    states = iter([{'state': 'OK', 'task': 'ingest files', 'task_percent': '50.0'}])
    final = services.final_state
    services.server.route('GET', '/get_state', lambda req: next(states, final))
    assert upload_cli.main(['-v', *services.flags(), *GOOD_META, '--wait', sample]) == 0
    err = capsys.readouterr().err
    for request in ('POST {}/ingest'.format(services.url), 'POST {}/upload'.format(services.url),
                    'GET {}/get_state'.format(services.url)):
        assert request in err and request + ' -> 200' in err
    assert 'Ingest job 1234: OK ingest files 50.0%' in err
    assert 'Ingest job 1234 has not finished; next poll in 1.0 s' in err
    assert err.index('next poll in') < err.index('Ingest job 1234: OK ingest metadata 100.0%')


def test_verbose_shows_each_cart_poll_and_wait(tmp_path: Path, cart: FakeCart, capsys: pytest.CaptureFixture) -> None:
    heads = iter([Reply(204, b'', {'X-Pacifica-Status': 'staging', 'X-Pacifica-Message': ''})])
    ready = Reply(204, b'', {'X-Pacifica-Status': 'ready', 'X-Pacifica-Message': ''})
    cart.server.route('HEAD', '*', lambda req: next(heads, ready))
    assert download_cli.main(['-v', '--transaction-id', '67', '--destination', str(tmp_path), *cart.flags()]) == 0
    err = capsys.readouterr().err
    assert re.search(r'cart http://127\.0\.0\.1:\d+/[-0-9a-f]+ is not ready; next poll in 1\.0 s', err), err
