"""The machinery both commands share: progress display, exit codes, error text, option parsing."""
from __future__ import annotations

import io
import logging
import re
from typing import List

import pytest

from pacifica._client import cli, progress
from pacifica._client.exceptions import (
    ArchiveError, BundleError, CartFailedError, CartTimeoutError, ConfigurationError, HTTPStatusError,
    IngestJobFailedError, InvalidMetadataError, InvalidResponseError, JobTimeoutError, PolicyRejectedError,
    RecordError, RequestTimeout, ServerConnectionError, UnsupportedHashError, UploadRejectedError,
    VerificationError,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_progress(mode: str, total=None, interval: float = 5.0):
    clock = FakeClock()
    out = io.StringIO()
    return progress.Progress('upload', out, mode, total, line_interval=interval, clock=clock), clock, out


def test_lines_mode_reports_percent_rate_and_eta_at_most_once_per_interval() -> None:
    progress, clock, out = make_progress('lines', total=100 * 1024 * 1024)
    clock.now += 1
    progress.update(10 * 1024 * 1024)  # first update is always shown
    clock.now += 1
    progress.update(20 * 1024 * 1024)  # within the interval: throttled
    clock.now += 5
    progress.update(50 * 1024 * 1024)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0] == 'upload: 10% 10.0 MiB of 100.0 MiB, 10.0 MiB/s, ETA 0:09'
    assert lines[1].startswith('upload: 50% 50.0 MiB of 100.0 MiB, ')
    assert 'MiB/s' in lines[1] and 'ETA' in lines[1]
    assert '\r' not in out.getvalue()


def test_close_prints_the_totals_and_ignores_later_updates() -> None:
    progress, clock, out = make_progress('lines', total=2048)
    clock.now += 2
    progress.update(2048)
    progress.close()
    progress.update(4096)
    progress.close()
    last = out.getvalue().splitlines()[-1]
    assert last == 'upload: 2.0 KiB in 0:02 (1.0 KiB/s)'
    assert out.getvalue().count('in 0:02') == 1


def _rates(text: str):
    return re.findall(r'(\d+\.\d \w+/s)', text)


def test_the_running_rate_and_the_final_rate_agree_and_leave_out_the_waits() -> None:
    """The cart takes 10 s to stage, then 3 MiB move at 1 MiB/s, then the server takes 5 s to answer."""
    progress, clock, out = make_progress('lines', interval=0)
    clock.now += 10
    progress.update(0)  # the data begins to flow
    for mib in (1, 2, 3):
        clock.now += 1
        progress.update(mib * 1024 * 1024)
    clock.now += 5
    progress.close()
    *running, final = out.getvalue().splitlines()
    assert _rates(running[-1]) == ['1.0 MiB/s'] and _rates(final) == ['1.0 MiB/s'], out.getvalue()
    assert final == 'upload: 3.0 MiB in 0:03 (1.0 MiB/s), 0:18 in all'
    assert not [line for line in running if line.startswith('upload: 0 B')]  # the start itself shows nothing


def test_a_failed_transfer_never_reads_as_complete() -> None:
    progress, clock, out = make_progress('lines', total=1000)
    clock.now += 1
    progress.update(400)
    progress.close(completed=False)
    assert out.getvalue().splitlines()[-1] == 'upload: failed, 400 B of 1000 B sent (40%)'


@pytest.mark.parametrize('label, total, done, last', [
    ('upload', 300 * 1024, 0, 'upload: failed, 0 B of 300.0 KiB sent (0%)'),
    ('upload', 1000, 999, 'upload: failed, 999 B of 1000 B sent (99%)'),  # short of the end: never 100 %
    ('save', 1000, 1000, 'save: failed, 1000 B of 1000 B written (100%)'),
    ('download', None, 3 * 1024 * 1024, 'download: failed, 3.0 MiB received'),
])
def test_the_last_line_of_a_failed_transfer_says_it_failed_and_how_far_it_got(label, total, done, last) -> None:
    out = io.StringIO()
    shown = progress.Progress(label, out, 'lines', total, line_interval=0, clock=FakeClock())
    shown.update(done)
    shown.close(completed=False)
    assert out.getvalue().splitlines()[-1] == last


def test_unknown_total_shows_bytes_and_rate_only() -> None:
    progress, clock, out = make_progress('lines')
    clock.now += 2
    progress.update(4096)
    assert out.getvalue() == 'upload: 4.0 KiB, 2.0 KiB/s\n'


def test_bar_mode_redraws_one_line_with_a_bar_then_ends_it() -> None:
    progress, clock, out = make_progress('bar', total=1000)
    clock.now += 1
    progress.update(500)
    clock.now += 1
    progress.update(1000)
    text = out.getvalue()
    assert text.startswith('\rupload: 50% ')
    assert '[' in text and '#' in text and '.]' in text  # half-filled bar first
    assert '\n' not in text
    progress.close()
    assert out.getvalue().endswith('\n')
    assert 'upload: 1000 B in 0:02' in out.getvalue().splitlines()[-1]


def test_bar_mode_throttles_redraws() -> None:
    progress, clock, out = make_progress('bar', total=10_000)
    for done in range(0, 10_000, 100):
        clock.now += 0.001
        progress.update(done)
    assert out.getvalue().count('\r') == 1


def test_off_mode_prints_nothing() -> None:
    progress, clock, out = make_progress('off', total=10)
    clock.now += 1
    progress.update(5)
    progress.close()
    assert out.getvalue() == ''


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ConfigurationError, match='progress mode'):
        progress.Progress('x', io.StringIO(), 'fancy')


@pytest.mark.parametrize('count, text', [(0, '0 B'), (1023, '1023 B'), (1536, '1.5 KiB'),
                                         (5 * 1024 ** 3, '5.0 GiB'), (3 * 1024 ** 6, '3072.0 PiB')])
def test_human_bytes(count: int, text: str) -> None:
    assert progress.human_bytes(count) == text


@pytest.mark.parametrize('seconds, text', [(0, '0:00'), (75, '1:15'), (3725, '1:02:05')])
def test_human_duration(seconds: float, text: str) -> None:
    assert progress.human_duration(seconds) == text


@pytest.mark.parametrize('error, code', [
    (ConfigurationError('bad url'), cli.EXIT_USAGE),
    (UnsupportedHashError('md6'), cli.EXIT_USAGE),
    (InvalidMetadataError('incomplete'), cli.EXIT_USAGE),
    (ServerConnectionError('refused'), cli.EXIT_SERVER),
    (RequestTimeout('slow'), cli.EXIT_SERVER),
    (HTTPStatusError('500', 500), cli.EXIT_SERVER),
    (InvalidResponseError('not json'), cli.EXIT_SERVER),
    (UploadRejectedError('no job id'), cli.EXIT_SERVER),
    (CartFailedError('cart error', 500), cli.EXIT_SERVER),
    (CartTimeoutError('cart slow'), cli.EXIT_SERVER),
    (PolicyRejectedError('412'), cli.EXIT_FAILED),
    (IngestJobFailedError('failed', 5), cli.EXIT_FAILED),
    (JobTimeoutError('late', 5), cli.EXIT_FAILED),
    (RecordError('no files'), cli.EXIT_FAILED),
    (ArchiveError('truncated'), cli.EXIT_FAILED),
    (VerificationError([('a', 'x', 'y')]), cli.EXIT_FAILED),
    (BundleError('changed'), cli.EXIT_LOCAL),
    (OSError('disk full'), cli.EXIT_LOCAL),
    (RuntimeError('bug'), cli.EXIT_LOCAL),
])
def test_each_error_kind_has_its_exit_code(error: BaseException, code: int) -> None:
    assert cli.exit_code_for(error) == code


def test_error_text_hides_credentials_in_urls() -> None:
    text = cli.error_text(OSError('cannot open http://alice:s3cret@host:8066/upload now'))
    assert 's3cret' not in text and 'alice' not in text
    assert text == 'OSError: cannot open http://***@host:8066/upload now'
    assert cli.error_text(ConfigurationError('plain')) == 'plain'


def _demo_parser() -> cli.ArgumentParser:
    parser = cli.new_parser('demo', 'A demo command.')
    parser.add_argument('--count', type=int, required=True)
    parser.add_argument('--wait', type=cli.positive_seconds)
    cli.add_server_options(parser, ('cart_url', 'policy_url'))
    return parser


def _failing(error: BaseException):
    def command(args, console):
        raise error
    return command


def test_run_reports_usage_errors_with_exit_code_2(capsys: pytest.CaptureFixture) -> None:
    assert cli.run(_demo_parser(), lambda a, c: 0, ['--count', 'many']) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith('usage: demo')
    assert "demo: error: argument --count: invalid int value: 'many'" in err


@pytest.mark.parametrize('argv, message', [
    (['--count', '1', '--wait', '-3'], "'-3' is not a positive number of seconds"),
    (['--count', '1', '--wait', 'inf'], "'inf' is not a positive number of seconds"),
    (['--count', '1', '--cart-url', 'ftp://host'], 'is not an absolute http:// or https:// URL'),
])
def test_option_types_refuse_bad_values(argv: List[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert cli.run(_demo_parser(), lambda a, c: 0, argv) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_server_urls_lose_their_trailing_slash() -> None:
    args = _demo_parser().parse_args(['--count', '1', '--cart-url', 'http://h:8081/', '--policy-url', 'https://p'])
    assert (args.cart_url, args.policy_url) == ('http://h:8081', 'https://p')


def test_help_documents_exit_codes_and_environment(capsys: pytest.CaptureFixture) -> None:
    assert cli.run(_demo_parser(), lambda a, c: 0, ['--help']) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert 'exit codes:' in out
    for code in ('0  success', '2  usage error', '3  server error', '4  refused'):
        assert code in out
    assert 'CARTD_CART_API_URL' in out and 'POLICY_PORT' in out


def test_version_flag(capsys: pytest.CaptureFixture) -> None:
    from pacifica._client.version import __version__

    assert cli.run(_demo_parser(), lambda a, c: 0, ['--version']) == cli.EXIT_OK
    assert capsys.readouterr().out.strip() == 'demo {}'.format(__version__)


def test_run_turns_failures_into_one_line_and_the_right_code(capsys: pytest.CaptureFixture) -> None:
    code = cli.run(_demo_parser(), _failing(IngestJobFailedError('ingest job 7 failed: bad hash', 7)),
                   ['--count', '1'])
    assert code == cli.EXIT_FAILED
    assert capsys.readouterr().err == 'demo: error: ingest job 7 failed: bad hash\n'


def test_run_maps_ctrl_c_to_130(capsys: pytest.CaptureFixture) -> None:
    assert cli.run(_demo_parser(), _failing(KeyboardInterrupt()), ['--count', '1']) == cli.EXIT_INTERRUPTED
    assert 'demo: interrupted' in capsys.readouterr().err


def test_verbose_logs_only_while_the_command_runs(capsys: pytest.CaptureFixture) -> None:
    logger = logging.getLogger('pacifica')
    handlers_before, level_before = list(logger.handlers), logger.level

    def command(args, console):
        logging.getLogger('pacifica.test').debug('visible detail')
        return 0

    assert cli.run(_demo_parser(), command, ['--count', '1', '-v']) == 0
    assert 'visible detail' in capsys.readouterr().err
    assert logger.handlers == handlers_before and logger.level == level_before


def test_console_picks_lines_off_a_terminal_and_off_when_quiet() -> None:
    args = _demo_parser().parse_args(['--count', '1'])
    assert cli.Console(args, io.StringIO(), io.StringIO()).progress_mode == 'lines'

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert cli.Console(args, io.StringIO(), Terminal()).progress_mode == 'bar'
    quiet = _demo_parser().parse_args(['--count', '1', '-q', '--progress', 'bar'])
    console = cli.Console(quiet, io.StringIO(), err := io.StringIO())
    assert console.progress_mode == 'off'
    console.note('hidden')
    assert err.getvalue() == ''


def test_retries_option_feeds_the_shared_config(capsys: pytest.CaptureFixture) -> None:
    args = _demo_parser().parse_args(['--count', '1', '--retries', '0'])
    assert cli.client_config(args).retries == 0
    assert cli.client_config(_demo_parser().parse_args(['--count', '1'])).retries == 5
    assert cli.run(_demo_parser(), lambda a, c: 0, ['--count', '1', '--retries', '-1']) == cli.EXIT_USAGE
    assert "'-1' is not a whole number" in capsys.readouterr().err
