"""Machinery shared by the ``pacifica-upload`` and ``pacifica-download`` commands.

Both commands parse options the same way, read server URLs from the same
flags and environment variables as the library, show progress the same way
and turn every failure into one short message and one exit code. Keeping
that here means the two commands cannot drift apart.

Exit codes (each command's ``--help`` lists those it uses, see :func:`exit_codes_help`):

- :data:`EXIT_OK` (0): done.
- :data:`EXIT_LOCAL` (1): a local file could not be read or written, or an
  unexpected error.
- :data:`EXIT_USAGE` (2): bad options or input (missing path, incomplete
  metadata, unusable URL or hash name).
- :data:`EXIT_SERVER` (3): a server could not be reached, timed out, or
  answered something unusable.
- :data:`EXIT_FAILED` (4): the data was refused or did not verify: policy
  rejected the metadata, the ingest job failed or did not finish in time,
  downloaded files did not match their hashes.
"""
from __future__ import annotations

import argparse
import decimal
import logging
import re
import sys
import textwrap
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, NoReturn, Optional, Sequence, TextIO, Tuple

from .config import DEFAULT_RETRIES, TransferConfig
from .endpoints import check_url
from .exceptions import ConfigurationError, PacificaError, RequestTimeout, ServerConnectionError
# The exit codes live with the exception categories that carry them; the commands' names for them:
from .exceptions import EXIT_FAILED as EXIT_FAILED
from .exceptions import EXIT_LOCAL as EXIT_LOCAL
from .exceptions import EXIT_OK as EXIT_OK
from .exceptions import EXIT_SERVER as EXIT_SERVER
from .exceptions import EXIT_USAGE as EXIT_USAGE
from .progress import PROGRESS_MODES, Progress
from .redact import redact, redact_url
from .rules import seconds
from .version import __version__

#: What a command returns after Ctrl-C (the shell convention 128 + SIGINT).
EXIT_INTERRUPTED = 130


def exit_codes_help(usage: str, failed: str) -> str:
    """A command's ``exit codes:`` table for ``--help``; ``usage`` and ``failed`` say what 2 and 4 mean for it.

    Codes 0, 1 and 3 mean the same for every command.
    """
    rows = (('0', 'success'), ('1', 'a local file could not be read or written, or an unexpected error'),
            ('2', 'usage error: ' + usage),
            ('3', 'server error: unreachable, timed out, unexpected HTTP status or reply'), ('4', failed))
    return 'exit codes:\n' + ''.join(textwrap.fill(text, 78, initial_indent='  {}  '.format(code),
                                                    subsequent_indent='     ') + '\n' for code, text in rows)


#: The upload command's table (the default of :func:`new_parser`).
EXIT_CODES_HELP = exit_codes_help('bad option, missing input, incomplete metadata',
                                  'refused: policy rejected the metadata, the ingest job failed or did not finish in '
                                  'time')



class Hinted(Exception):
    """A failure, and a line that tells the user how to fix it; :func:`run` prints both.

    Commands raise it ``from`` the library's error, whose exit code it keeps.
    """

    def __init__(self, error: BaseException, hint: str) -> None:
        super().__init__(error, hint)
        self.error = error
        self.hint = hint


def exit_code_for(err: BaseException) -> int:
    """Return the exit code that tells the caller what kind of failure ``err`` is: its category's ``exit_code``.

    Errors from outside the library (OSError, ...) are local problems.
    """
    if isinstance(err, Hinted):
        return exit_code_for(err.error)
    return err.exit_code if isinstance(err, PacificaError) else EXIT_LOCAL


def error_text(err: BaseException) -> str:
    """One printable description of ``err`` with any ``user:password@`` in URLs removed.

    The library's messages never hold ``auth`` values; this also covers
    errors from outside it (``OSError`` naming a URL-like path, for instance).
    """
    if isinstance(err, Hinted):
        return '{}\n  {}'.format(error_text(err.error), err.hint)
    text = str(err) or type(err).__name__
    if not isinstance(err, PacificaError):
        text = '{}: {}'.format(type(err).__name__, text)
    return redact(text)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad options as ConfigurationError instead of exiting.

    That lets :func:`run` print the message and return exit code 2 both when
    the command runs in a process of its own and when a test calls ``main()``.
    """

    def error(self, message: str) -> NoReturn:
        raise ConfigurationError(message)


def new_parser(prog: str, description: str, epilog: str = '', exit_codes: str = EXIT_CODES_HELP) -> ArgumentParser:
    """Return a parser with the options every command has: version, verbosity, progress.

    ``exit_codes`` is the command's own table (see :func:`exit_codes_help`).
    """
    parser = ArgumentParser(
        prog=prog, description=description,
        epilog='\n'.join(part for part in (epilog, exit_codes) if part),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', action='version', version='%(prog)s {}'.format(__version__))
    output = parser.add_argument_group('output')
    output.add_argument('-v', '--verbose', action='store_true',
                        help='log each HTTP request, retry and wait as it happens (never with credentials) '
                             'to stderr')
    output.add_argument('-q', '--quiet', action='store_true',
                        help='print only the result and errors; no progress')
    output.add_argument('--progress', choices=PROGRESS_MODES, default='auto',
                        help='progress display on stderr: a bar with rate and ETA, plain lines, or none '
                             '(default: auto, a bar on a terminal and lines otherwise)')
    return parser


# --------------------------------------------------------------------------
# Server URLs: flags override the library's environment variables
# --------------------------------------------------------------------------
_SERVER_OPTIONS: Dict[str, Tuple[str, str]] = {
    'ingest_url': ('--ingest-url', 'ingest server base URL, e.g. http://127.0.0.1:8066; uploads go to '
                                   '<URL>/upload and status queries to <URL>/get_state '
                                   '(default: INGEST_UPLOAD_URL/INGEST_STATUS_URL or INGEST_PROTO, '
                                   'INGEST_ADDR, INGEST_PORT)'),
    'status_url': ('--status-url', 'full ingest status URL, overriding the one derived from --ingest-url '
                                   '(default: INGEST_STATUS_URL)'),
    'policy_url': ('--policy-url', 'policy server base URL, e.g. http://127.0.0.1:8181 '
                                   '(default: POLICY_PROTO, POLICY_ADDR, POLICY_PORT; the uploader also '
                                   'honours POLICY_UPLOADER_URL and POLICY_INGEST_URL)'),
    'cart_url': ('--cart-url', 'cart server URL, e.g. http://127.0.0.1:8081 '
                               '(default: CARTD_CART_API_URL or CARTD_PROTO, CARTD_ADDR, CARTD_PORT)'),
    'metadata_url': ('--metadata-url', 'metadata server URL, e.g. http://127.0.0.1:8121, read to verify what '
                                       'a transaction holds and to find a dataset\'s transactions (default: '
                                       'METADATA_PROTO, METADATA_ADDR, METADATA_PORT)'),
}


#: Where each server's URL comes from, in the order they win: (flag, environment variables, default).
SERVER_SETTINGS: Dict[str, Tuple[str, str, str]] = {
    'ingest': ('--ingest-url', 'INGEST_UPLOAD_URL, INGEST_STATUS_URL, INGEST_PROTO, INGEST_ADDR, INGEST_PORT',
               'http://127.0.0.1:8066'),
    'policy': ('--policy-url', 'POLICY_PROTO, POLICY_ADDR, POLICY_PORT (uploads: also POLICY_UPLOADER_URL, '
                               'POLICY_INGEST_URL)', 'http://127.0.0.1:8181'),
    'cart': ('--cart-url', 'CARTD_CART_API_URL, CARTD_PROTO, CARTD_ADDR, CARTD_PORT', 'http://127.0.0.1:8081'),
    'metadata': ('--metadata-url', 'METADATA_PROTO, METADATA_ADDR, METADATA_PORT', 'http://127.0.0.1:8121'),
}


@contextmanager
def calling(server: str) -> Iterator[None]:
    """Run calls to ``server`` (a key of :data:`SERVER_SETTINGS`); if it cannot be reached, say where its URL
    is set, so the user can fix the one that is wrong."""
    try:
        yield
    except (ServerConnectionError, RequestTimeout) as err:
        flag, variables, default = SERVER_SETTINGS[server]
        raise Hinted(err, 'the {} server\'s URL comes from {}, else the environment variables {}, '
                          'else the default {}'.format(server, flag, variables, default)) from err


def add_server_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """Add the ``--*-url`` flags named in ``names`` (keys of the table above) and ``--retries``."""
    group = parser.add_argument_group('servers (flags win over environment variables)')
    for name in names:
        flag, help_text = _SERVER_OPTIONS[name]
        group.add_argument(flag, dest=name, metavar='URL', type=_http_url, help=help_text)
    group.add_argument('--retries', type=_count, default=DEFAULT_RETRIES, metavar='N',
                       help='further attempts of a request that is safe to repeat, after a failed connection '
                            'or a busy server, with growing pauses (default: %(default)s)')


def client_config(args: argparse.Namespace) -> TransferConfig:
    """The TransferConfig every client object of a command shares."""
    return TransferConfig(retries=args.retries)


#: ``byte_size``'s units: the power of the base each prefix stands for.
_SIZE = re.compile(r'\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*', re.IGNORECASE | re.ASCII)
_POWERS = {'': 0, 'k': 1, 'm': 2, 'g': 3, 't': 4, 'p': 5}


def byte_size(text: str) -> int:
    """argparse type: a size in bytes, by the rule of the GNU tools, for every command's size option.

    A whole number of bytes, or a number (a fraction allowed) with a unit:
    ``K``, ``M``, ``G``, ``T``, ``P`` (also written ``KiB`` ... ``PiB``)
    count in powers of 1024, ``KB`` ... ``PB`` in powers of 1000, ``B`` is
    bytes. Units are case-insensitive; the result is rounded down to whole
    bytes and must be at least 1.
    """
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ''
    if unit.endswith('ib'):
        base, prefix = 1024, unit[:-2]
    elif unit.endswith('b') and len(unit) == 2:
        base, prefix = 1000, unit[:-1]
    else:
        base, prefix = 1024, '' if unit == 'b' else unit
    if match is None or prefix not in _POWERS or (unit.endswith('ib') and not prefix) or (
            '.' in match.group(1) and not unit):
        raise argparse.ArgumentTypeError(
            '{!r} is not a size: give bytes (4096) or a number with a unit, K M G T P (or KiB ... PiB, powers of '
            '1024) or KB MB GB TB PB (powers of 1000), e.g. 500M, 2G, 1.5GiB'.format(text))
    size = int(decimal.Decimal(match.group(1)) * base ** _POWERS[prefix])
    if size < 1:
        raise argparse.ArgumentTypeError('{!r} is not a size: it must be at least 1 byte'.format(text))
    return size


def positive_count(text: str) -> int:
    """argparse type: a whole number >= 1 (workers, files per bundle or cart)."""
    if not (text.isdigit() and text.isascii()) or int(text) < 1:
        raise argparse.ArgumentTypeError('{!r} is not a whole number >= 1'.format(text))
    return int(text)


def _count(text: str) -> int:
    """argparse type: an integer >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError('{!r} is not a whole number >= 0'.format(text))
    return int(text)


def _http_url(text: str) -> str:
    """argparse type: an absolute http(s) URL, without a trailing slash."""
    try:
        return check_url(text, 'server URL').rstrip('/')
    except ConfigurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def positive_seconds(text: str) -> float:
    """argparse type: a positive, finite number of seconds (the library's rule for timeouts)."""
    try:
        return seconds(float(text), name='the value')
    except ValueError:  # not a number, or refused by the rule (ConfigurationError is a ValueError)
        raise argparse.ArgumentTypeError('{!r} is not a positive number of seconds'.format(text)) from None


class Console:
    """Where a command writes: results to stdout, progress and notes to stderr."""

    def __init__(self, args: argparse.Namespace, stdout: Optional[TextIO] = None,
                 stderr: Optional[TextIO] = None) -> None:
        self.out = stdout if stdout is not None else sys.stdout
        self.err = stderr if stderr is not None else sys.stderr
        self.quiet = bool(getattr(args, 'quiet', False))
        mode = 'off' if self.quiet else getattr(args, 'progress', 'auto')
        if mode == 'auto':
            mode = 'bar' if _isatty(self.err) else 'lines'
        self.progress_mode = mode

    def result(self, text: str) -> None:
        """Print a line of the command's result (stdout)."""
        self.out.write(text + '\n')
        self.out.flush()

    def note(self, text: str) -> None:
        """Print a line about what is happening (stderr), unless --quiet."""
        if not self.quiet:
            self.err.write(text + '\n')
            self.err.flush()

    def progress(self, label: str, total: Optional[int] = None) -> Progress:
        """Start a progress display for one transfer."""
        return Progress(label, self.err, self.progress_mode, total)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def show_url(url: Optional[str]) -> str:
    """A URL as it may be printed (no credentials)."""
    return redact_url(url) if url else '(default)'


Command = Callable[[argparse.Namespace, Console], int]


def run(parser: argparse.ArgumentParser, command: Command, argv: Optional[Sequence[str]]) -> int:
    """Parse ``argv``, run ``command`` and return its exit code; never raises.

    Every failure becomes one ``<prog>: error: ...`` line on stderr and the
    exit code of :func:`exit_code_for`; a traceback only with ``--verbose``.
    """
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except ConfigurationError as err:
        parser.print_usage(sys.stderr)
        sys.stderr.write('{}: error: {}\n'.format(parser.prog, error_text(err)))
        return EXIT_USAGE
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else EXIT_OK
    console = Console(args)
    handler = _start_logging(args.verbose, console.quiet, parser.prog)
    try:
        return command(args, console)
    except KeyboardInterrupt:
        sys.stderr.write('\n{}: interrupted\n'.format(parser.prog))
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the one place every failure is reported
        if args.verbose:
            logging.getLogger('pacifica').debug('failure details', exc_info=True)
        sys.stderr.write('{}: error: {}\n'.format(parser.prog, error_text(err)))
        return exit_code_for(err)
    finally:
        _stop_logging(handler)


class _VerboseHandler(logging.StreamHandler):
    """The commands' log handler; remembers the level the ``pacifica`` logger had before."""

    previous_level = logging.NOTSET


def _start_logging(verbose: bool, quiet: bool, prog: str) -> Optional[_VerboseHandler]:
    """Show the library's log on stderr while the command runs.

    With --verbose everything, as it happens: each request and its answer,
    each retry with its cause and pause, each poll. Otherwise (unless
    --quiet) what a user should know without asking: retries, warnings.
    """
    if quiet and not verbose:
        return None
    handler = _VerboseHandler(sys.stderr)
    if verbose:
        handler.setFormatter(logging.Formatter('%(asctime)s %(name)s %(levelname)s %(message)s'))
    else:
        handler.setFormatter(logging.Formatter(prog + ': %(message)s'))
    logger = logging.getLogger('pacifica')
    logger.addHandler(handler)
    handler.previous_level = logger.level
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler


def _stop_logging(handler: Optional[_VerboseHandler]) -> None:
    if handler is None:
        return
    logger = logging.getLogger('pacifica')
    logger.removeHandler(handler)
    logger.setLevel(handler.previous_level)
