"""pacifica-download, in-process (main([...])) and as ``python -m pacifica.downloader``."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from pacifica._client.progress import human_bytes
from pacifica.downloader import cli
from tests.helpers.server import Reply
from tests.helpers.commands import SAMPLE_FILES, FakeCart, closed_port, run_module


def _written(root: Path) -> dict:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob('*') if path.is_file()}


def test_transaction_download_is_verified_and_summarised(tmp_path: Path, cart: FakeCart,
                                                         capsys: pytest.CaptureFixture) -> None:
    code = cli.main(['--transaction-id', '67', '--destination', str(tmp_path / 'out'), *cart.flags(), '-v'])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert _written(tmp_path / 'out') == {'data/' + path: data for path, data in SAMPLE_FILES.items()}
    assert 'transaction: 67' in out
    assert 'files: 3 (' in out and 'verified' in out
    assert 'written to: {}'.format(os.path.join(str(tmp_path / 'out'), 'data')) in out
    assert '  data/sub/数据.bin' in out
    assert cart.server.count('GET', '/status/transactions/by_id/67') == 1


def test_cloudevent_download(tmp_path: Path, cart: FakeCart, capsys: pytest.CaptureFixture) -> None:
    event = tmp_path / 'event.json'
    event.write_text(json.dumps(cart.cloudevent()), encoding='utf-8')
    code = cli.main(['--cloudevent', str(event), '--destination', str(tmp_path / 'out'), *cart.flags()])
    assert code == 0, capsys.readouterr().err
    assert _written(tmp_path / 'out') == {'data/' + path: data for path, data in SAMPLE_FILES.items()}
    assert cart.server.count('GET', '/status/transactions/by_id/67') == 0


def test_a_hash_mismatch_exits_4_and_leaves_nothing_under_a_final_name(tmp_path: Path, cart: FakeCart,
                                                                       capsys: pytest.CaptureFixture) -> None:
    cart.served['résumé.txt'] = b'tampered\n'
    code = cli.main(['--transaction-id', '67', '--destination', str(tmp_path / 'out'), *cart.flags()])
    out, err = capsys.readouterr()
    assert code == 4
    assert 'résumé.txt' in err and 'verification' in err
    assert 'files:' not in out
    assert not (tmp_path / 'out' / 'data' / 'résumé.txt').exists()


def test_an_unknown_transaction_is_a_usage_error(tmp_path: Path, cart: FakeCart,
                                                 capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--transaction-id', '68', '--destination', str(tmp_path / 'out'), *cart.flags()]) == 2
    err = capsys.readouterr().err
    assert 'knows no transaction 68: No Transaction with an ID of 68 was found' in err
    assert not os.path.exists(str(tmp_path / 'out'))


def test_a_failed_cart_is_a_server_error(tmp_path: Path, cart: FakeCart, capsys: pytest.CaptureFixture) -> None:
    cart.server.route('HEAD', '*', Reply(500, b'', {'X-Pacifica-Status': 'error',
                                                    'X-Pacifica-Message': 'archive unreachable'}))
    assert cli.main(['--transaction-id', '67', '--destination', str(tmp_path), *cart.flags()]) == 3
    assert 'archive unreachable' in capsys.readouterr().err


def test_unreachable_servers_exit_3_without_credentials(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = 'http://carol:pa55word@127.0.0.1:{}'.format(closed_port())
    assert cli.main(['--transaction-id', '5', '--destination', str(tmp_path), '--policy-url', url,
                     '--cart-url', url, '--retries', '0']) == 3
    out, err = capsys.readouterr()
    assert 'pa55word' not in out + err and 'carol' not in out + err


def test_environment_variables_locate_the_servers(tmp_path: Path, cart: FakeCart, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv('POLICY_PORT', str(cart.server.port))
    monkeypatch.setenv('CARTD_PORT', str(cart.server.port))
    assert cli.main(['--transaction-id', '67', '--destination', str(tmp_path)]) == 0, capsys.readouterr().err
    assert len(_written(tmp_path)) == 3


@pytest.mark.parametrize('argv, message', [
    ([], 'one of the arguments --transaction-id --cloudevent --manifest --dataset is required'),
    (['--transaction-id', '0'], "'0' is not a transaction id"),
    (['--transaction-id', '1', '--cloudevent', 'e.json'], 'not allowed with argument'),
    (['--cloudevent', 'missing.json'], 'cannot read --cloudevent missing.json'),
])
def test_usage_errors(tmp_path: Path, argv, message, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main([*argv, '--destination', 'out']) == 2
    assert message in capsys.readouterr().err


def test_a_file_that_is_not_a_cloud_event_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / 'e.json').write_text('{"data": {}}', encoding='utf-8')
    assert cli.main(['--cloudevent', str(tmp_path / 'e.json'), '--destination', str(tmp_path)]) == 2
    assert 'is not a cloud event' in capsys.readouterr().err
    (tmp_path / 'e.json').write_text('{', encoding='utf-8')
    assert cli.main(['--cloudevent', str(tmp_path / 'e.json'), '--destination', str(tmp_path)]) == 2
    assert 'is not JSON' in capsys.readouterr().err


def test_help_lists_every_option(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--help']) == 0
    out = capsys.readouterr().out
    for option in ('--transaction-id', '--cloudevent', '--destination', '--cart-url', '--policy-url', '--timeout',
                   'exit codes:', 'CARTD_CART_API_URL'):
        assert option in out


def test_help_speaks_of_downloads_only(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--help']) == 0
    codes = capsys.readouterr().out.split('exit codes:', 1)[1]
    for code in ('0  success', '2  usage error', '3  server error', '4  not verified'):
        assert code in codes
    for upload_word in ('metadata', 'ingest', 'rejected', 'refused'):
        assert upload_word not in codes


def _garbage(cart: FakeCart) -> None:
    """Nothing of the cart verifies: the files are garbage of the right size, the empty one is missing."""
    cart.served = {path: b'x' * len(data) for path, data in cart.served.items() if data}


@pytest.mark.parametrize('break_it, code, message', [
    (lambda cart: cart.server.route('HEAD', '*', Reply(500, b'', {'X-Pacifica-Status': 'error',
                                                                  'X-Pacifica-Message': 'archive unreachable'})),
     3, 'archive unreachable'),
    (_garbage, 4, '3 file(s) failed verification'),
])
def test_a_failed_download_removes_the_folders_it_made_and_says_what_failed(
        tmp_path: Path, cart: FakeCart, capsys: pytest.CaptureFixture, break_it, code, message) -> None:
    break_it(cart)
    destination = tmp_path / 'new' / 'out'
    assert cli.main(['--transaction-id', '67', '--destination', str(destination), *cart.flags(),
                     '--progress', 'lines']) == code
    out, err = capsys.readouterr()
    assert os.listdir(str(tmp_path)) == []
    assert re.search('^pacifica-download: error: .*' + re.escape(message), err, re.MULTILINE)
    assert 'stopped after 0 B' not in err and 'files:' not in out


@pytest.mark.parametrize('parallel', [[], ['--workers', '2']])
def test_a_download_that_fails_after_its_bytes_came_ends_its_progress_saying_so(
        tmp_path: Path, cart: FakeCart, capsys: pytest.CaptureFixture, parallel) -> None:
    _garbage(cart)
    assert cli.main(['--transaction-id', '67', '--destination', str(tmp_path / 'out'), *cart.flags(),
                     '--progress', 'lines', *parallel]) == 4
    err = capsys.readouterr().err
    size = human_bytes(sum(len(data) for data in SAMPLE_FILES.values()))
    last = [line for line in err.splitlines() if line.startswith('download: ')][-1]
    assert last == 'download: failed, {0} of {0} received (100%)'.format(size), err


def test_the_final_rate_is_over_the_whole_stream_not_from_its_last_callback(
        tmp_path: Path, cart: FakeCart, capsys: pytest.CaptureFixture) -> None:
    """The cart's tar comes in two pieces 0.3 s apart: the rate is below its size over 0.15 s.

    The display used to start at the first callback with bytes, which for a
    cart shorter than the callback interval is its last: a 4 MiB cart read
    "462.0 GiB/s".
    """
    whole_cart = cart._get

    def in_two_pieces(req):
        reply = whole_cart(req)
        if not isinstance(reply, Reply):
            return reply
        body = b''.join(reply.body)

        def pieces():
            yield body[:len(body) // 2]
            time.sleep(0.3)
            yield body[len(body) // 2:]
        return Reply(200, pieces())

    cart.server.route('GET', '*', in_two_pieces)
    assert cli.main(['--transaction-id', '67', '--destination', str(tmp_path / 'out'), *cart.flags(),
                     '--progress', 'lines']) == 0
    last = [line for line in capsys.readouterr().err.splitlines() if line.startswith('download: ')][-1]
    size = sum(len(data) for data in SAMPLE_FILES.values())
    found = re.fullmatch(r'download: (.+) in 0:00 \((\d+(?:\.\d)?) (B|KiB|MiB|GiB)/s\)', last)
    assert found and found.group(1) == human_bytes(size), last
    rate = float(found.group(2)) * 1024 ** ('B', 'KiB', 'MiB', 'GiB').index(found.group(3))
    assert rate <= size / 0.15, last  # half the pause: the download starts reading a moment after it


def test_a_failed_download_keeps_a_destination_that_existed(tmp_path: Path, cart: FakeCart,
                                                           capsys: pytest.CaptureFixture) -> None:
    _garbage(cart)
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'full').mkdir()
    (tmp_path / 'full' / 'notes.txt').write_bytes(b'mine')
    for destination in ('empty', 'full'):
        assert cli.main(['--transaction-id', '67', '--destination', str(tmp_path / destination), *cart.flags()]) == 4
    assert _written(tmp_path) == {'full/notes.txt': b'mine'}
    assert sorted(os.listdir(str(tmp_path))) == ['empty', 'full'] and os.listdir(str(tmp_path / 'empty')) == []


def test_files_get_the_modification_time_of_the_record(tmp_path: Path, cart: FakeCart,
                                                      capsys: pytest.CaptureFixture) -> None:
    cart.transinfo['files']['100']['mtime'] = '2019-03-04T05:06:07'  # résumé.txt; the others record none
    assert cli.main(['--transaction-id', '67', '--destination', str(tmp_path), *cart.flags()]) == 0
    assert (tmp_path / 'data' / 'résumé.txt').stat().st_mtime == 1551675967
    assert (tmp_path / 'data' / 'sub' / 'empty.dat').stat().st_mtime == 1545127200  # the cart's tar member


def test_python_dash_m_runs_the_command(tmp_path: Path, cart: FakeCart) -> None:
    done = run_module('pacifica.downloader', ['--transaction-id', '67', '--destination', 'out', *cart.flags()],
                      str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert 'files: 3' in done.stdout
    assert 'download: ' in done.stderr
    assert _written(tmp_path / 'out') == {'data/' + path: data for path, data in SAMPLE_FILES.items()}
