"""Old ``except`` clauses still catch: every failure is also the built-in 0.3.1 / 0.4.1 raised for it.

Each situation below is one piece of code, run twice against the same
loopback server: here, against this library, and under pacifica-uploader
0.3.1 / pacifica-downloader 0.4.1 in their own virtual environment (see
tests/helpers/upstream.py). For each, upstream must have raised the
built-in named in the row, and this library its own exception class, which
must also be an instance of that built-in. docs/compatibility.rst lists the
same rows; a test keeps the two in step.
"""
from __future__ import annotations

import builtins
import dataclasses
import json
import os
import re
import socket
import subprocess
import tarfile
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import requests

from pacifica._client import exceptions as errors
from pacifica._client.config import TransferConfig
from tests.helpers.cartd import CartServer, transaction_info
from tests.helpers.server import LoopbackServer, Reply
from tests.helpers.upstream import upstream  # noqa: F401 - the session fixture

DOCS_PAGE = Path(__file__).resolve().parents[3] / 'docs' / 'compatibility.rst'

# The same names, bound to this library here and to upstream in its interpreter.
PREAMBLE = '''
import io
from pacifica.uploader import Uploader
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.metadata import MetaData, MetaObj, MetaUpdate, metadata_decode, metadata_encode
from pacifica.uploader.metadata.policyquery import PolicyQuery
from pacifica.downloader import Downloader
from pacifica.downloader.cartapi import CartAPI

VALID = MetaData([MetaObj(destinationTable='Transactions.instrument', value=54)])
'''

# Runs under the upstream interpreter: each case's code, and the classes of what it raised.
_UPSTREAM_SCRIPT = textwrap.dedent('''
    import json, sys
    cases = json.load(open(sys.argv[1], encoding='utf-8'))
    found = {}
    for case in cases:
        namespace = {'URL': case['url'], 'LOCATION': case['location'], 'FAST': None, 'POLICY_OPTIONS': {}}
        try:
            exec(case['preamble'] + case['code'], namespace)
        except BaseException as err:
            found[case['id']] = ['{}.{}'.format(cls.__module__, cls.__qualname__) for cls in type(err).__mro__]
            found[case['id']].append('message: {}'.format(err))
        else:
            found[case['id']] = []
    json.dump(found, open(sys.argv[2], 'w', encoding='utf-8'))
''')

#: Short timeouts so that this library's side of each case ends quickly.
FAST = TransferConfig(connect_timeout=2, read_timeout=2, retries=1, backoff_factor=0.01, call_deadline=5,
                      poll_interval=0.05)

HTML_ERROR = Reply(500, b'<html><body>Internal Server Error</body></html>', {'Content-Type': 'text/html'})
JSON_ERROR = Reply.json({'status': '500 Internal Server Error', 'message': 'boom', 'traceback': ''}, status=500)


@dataclasses.dataclass(frozen=True)
class Situation:
    """One row of the table in docs/compatibility.rst."""

    id: str
    #: Runs in both worlds with ``URL`` (this case's server), ``LOCATION`` (a directory), ``FAST`` (short
    #: timeouts; None upstream) and ``POLICY_OPTIONS`` (the same as keywords; empty upstream, whose
    #: PolicyQuery refuses keywords that are not query fields) bound.
    code: str
    #: The built-in (or requests / tarfile) exception upstream raised, which ours must also be.
    builtin: type
    #: This library's class for the situation.
    ours: type
    #: Programs the case's loopback server; returns another URL to use, or None.
    serve: Callable[[LoopbackServer, Path], Optional[str]] = lambda server, tmp: None


def _route(method: str, path: str, reply: Any) -> Callable[[LoopbackServer, Path], None]:
    return lambda server, tmp: server.route(method, path, reply)


#: Bound, never listening (connections are refused), held until the module's servers close.
_REFUSING: List[socket.socket] = []


def _closed_port(server: LoopbackServer, tmp: Path) -> str:
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    _REFUSING.append(sock)
    return 'http://127.0.0.1:{}'.format(sock.getsockname()[1])


def _cartd(**behaviour: Any) -> Callable[[LoopbackServer, Path], None]:
    def serve(server: LoopbackServer, tmp: Path) -> None:
        cartd = CartServer(server, tmp / 'cartd')
        cartd.add_file(1, b'hello')
        for name, value in behaviour.items():
            setattr(cartd.behaviour, name, value)
    return serve


RECORD = json.dumps(transaction_info({1: ('sub', 'a.txt', b'hello')}))
UPLOAD = "Uploader(upload_url=URL + '/upload', config=FAST).upload(io.BytesIO(b'x'))"
STATE = "Uploader(status_url=URL + '/get_state', config=FAST).getstate(7)"
# 0.3.1's PolicyQuery and MetaUpdate take their URLs from the environment only.
POLICY = ("import os; os.environ['POLICY_UPLOADER_URL'] = URL + '/uploader'; "
          "os.environ['POLICY_INGEST_URL'] = URL + '/ingest'\n")
QUERY = POLICY + "PolicyQuery(-1, columns=['_id'], from_table='users', **POLICY_OPTIONS).get_results()"
DOWNLOAD = "Downloader(cart_api_url=URL, config=FAST).transactioninfo(LOCATION, {}, timeout=1)".format(RECORD)

SITUATIONS = [
    # Ingest
    Situation('upload answered without job_id', UPLOAD, KeyError, errors.UploadRejectedError,
              _route('POST', '/upload', {'status': 'ok'})),
    Situation('upload answered with JSON that is not an object', UPLOAD, TypeError, errors.UploadRejectedError,
              _route('POST', '/upload', ['job', 7])),
    Situation('upload answered an error status with a JSON error page', UPLOAD, KeyError, errors.UploadStatusError,
              _route('POST', '/upload', JSON_ERROR)),
    Situation('upload answered an error status with an HTML page', UPLOAD, ValueError, errors.UploadStatusError,
              _route('POST', '/upload', HTML_ERROR)),
    Situation('upload answered 200 with a body that is not JSON', UPLOAD, ValueError, errors.InvalidResponseError,
              _route('POST', '/upload', 'not json')),
    Situation('upload to a closed port', UPLOAD, requests.ConnectionError, errors.ServerConnectionError, _closed_port),
    Situation('getstate answered a body that is not JSON', STATE, ValueError, errors.InvalidResponseError,
              _route('GET', '/get_state', 'not json')),
    Situation('getstate answered an error status with an HTML page', STATE, ValueError, errors.HTTPStatusError,
              _route('GET', '/get_state', HTML_ERROR)),
    # Policy
    Situation('policy query answered a body that is not JSON', QUERY, ValueError, errors.InvalidResponseError,
              _route('POST', '/uploader', 'not json')),
    Situation('policy query answered an error status with an HTML page', QUERY, ValueError, errors.HTTPStatusError,
              _route('POST', '/uploader', HTML_ERROR)),
    Situation('unknown network id', POLICY + "PolicyQuery('nobody')", IndexError,
              errors.UnknownUserError, _route('POST', '/uploader', [])),
    Situation('valid_metadata answered a body that is not JSON',
              POLICY + "PolicyQuery(-1, **POLICY_OPTIONS).valid_metadata(VALID)", ValueError,
              errors.InvalidResponseError, _route('POST', '/ingest', 'not json')),
    Situation('update_parents: policy rows lack the valueField',
              POLICY + "MetaUpdate(-1, [MetaObj(metaID='p', sourceTable='Projects', "
              "destinationTable='Transactions.project', valueField='_id', queryFields=['_id'], queryDependency={}, "
              "value=None)], **POLICY_OPTIONS).update_parents('p')", KeyError, errors.InvalidResponseError,
              _route('POST', '/uploader', [{'name': 'no _id'}])),
    # Metadata
    Situation('metadata_encode of something else than MetaData', "metadata_encode([])", TypeError,
              errors.MetadataEncodeError),
    Situation('metadata_encode of an item without destinationTable', "metadata_encode(MetaData([object()]))",
              TypeError, errors.MetadataEncodeError),
    Situation('metadata_decode of text that is not JSON', "metadata_decode('not json')", ValueError,
              errors.MetadataDecodeError),
    Situation('metadata_decode of JSON that is not a list', "metadata_decode('{}')", TypeError,
              errors.MetadataDecodeError),
    Situation('metadata_decode of a list item that is not an object', "metadata_decode('[1]')", TypeError,
              errors.MetadataDecodeError),
    Situation('metadata_decode of an unknown field', "metadata_decode('[{\"bogus\": 1}]')", TypeError,
              errors.MetadataDecodeError),
    Situation('MetaData lookup of an unknown metaID', "MetaData()['nope']", IndexError, errors.UnknownMetaIDError),
    Situation('MetaData assignment to an unknown metaID', "MetaData()['x'] = MetaObj(metaID='x')", IndexError,
              errors.UnknownMetaIDError),
    Situation('PolicyQuery.fromjson of text that is not JSON', "PolicyQuery.fromjson('not json')", ValueError,
              errors.MetadataDecodeError),
    Situation('PolicyQuery.fromjson of JSON that is not an object', "PolicyQuery.fromjson('[]')", TypeError,
              errors.MetadataDecodeError),
    Situation('directory_prefix before update_parents',
              "MetaUpdate(-1, [MetaObj(metaID='p', directoryOrder=0, displayFormat='{_id}')]).directory_prefix()",
              TypeError, errors.MissingQueryResultsError),
    Situation('directory_prefix with no query results',
              "MetaUpdate(-1, [MetaObj(metaID='p', directoryOrder=0, displayFormat='{_id}', query_results=[])])"
              ".directory_prefix()", IndexError, errors.MissingQueryResultsError),
    # Bundler
    Situation('Bundler of incomplete metadata', "Bundler(MetaData([MetaObj(value=None)]), [])", ValueError,
              errors.InvalidMetadataError),
    Situation('Bundler with an unknown hashfunc', "Bundler(VALID, [], hashfunc='nope')", ValueError,
              errors.UnsupportedHashError),
    Situation('file_data entry without mtime',
              "Bundler(VALID, [{'name': 'data/a', 'size': 1, 'fileobj': io.BytesIO(b'x')}]).stream(io.BytesIO())",
              KeyError, errors.FileDataError),
    Situation('file_data entry without name',
              "Bundler(VALID, [{'size': 1, 'mtime': 1, 'fileobj': io.BytesIO(b'x')}]).stream(io.BytesIO())",
              KeyError, errors.FileDataError),
    Situation('file_data entry whose size is not a number',
              "Bundler(VALID, [{'name': 'data/a', 'size': 'abc', 'mtime': 1, 'fileobj': io.BytesIO(b'x')}])"
              ".stream(io.BytesIO())", TypeError, errors.FileDataError),
    Situation('file_data entry whose mtime is not a number',
              "Bundler(VALID, [{'name': 'data/a', 'size': 1, 'mtime': 'x', 'fileobj': io.BytesIO(b'x')}])"
              ".stream(io.BytesIO())", TypeError, errors.FileDataError),
    Situation('file_data entry without fileobj',
              "Bundler(VALID, [{'name': 'data/a', 'size': 1, 'mtime': 1}]).stream(io.BytesIO())", AttributeError,
              errors.FileDataError),
    Situation('fileobj shorter than its size',
              "Bundler(VALID, [{'name': 'data/a', 'size': 5, 'mtime': 1, 'fileobj': io.BytesIO(b'x')}])"
              ".stream(io.BytesIO())", OSError, errors.FileChangedError),
    # Downloader
    Situation('cart request not answered 201', DOWNLOAD, AssertionError, errors.CartRequestError,
              _cartd(post_status=500)),
    Situation('cart ended in state error', DOWNLOAD, AssertionError, errors.CartFailedError,
              _cartd(fail_message='archive offline')),
    Situation('cart not ready within the timeout', DOWNLOAD, AssertionError, errors.CartTimeoutError,
              _cartd(staging_polls=10 ** 6)),
    Situation('cart GET answered an error status', DOWNLOAD, tarfile.ReadError, errors.CartDownloadError,
              _cartd(get_status=500)),
    Situation('cart stream is not a tar', DOWNLOAD, tarfile.ReadError, errors.ArchiveError,
              _cartd(tar_bytes=b'<html>cartd is down</html>' * 40)),
    Situation('cart stream ends inside a member', DOWNLOAD, tarfile.ReadError, errors.ArchiveError,
              _cartd(truncate_at=700)),
    Situation('cart API on a closed port', DOWNLOAD, requests.ConnectionError, errors.ServerConnectionError,
              _closed_port),
    Situation('transaction info that is not a dict', "Downloader(cart_api_url=URL).transactioninfo(LOCATION, None)",
              AttributeError, errors.RecordError),
    Situation("transaction info whose 'files' is not a dict",
              "Downloader(cart_api_url=URL).transactioninfo(LOCATION, {'files': []})", AttributeError,
              errors.RecordError),
    Situation('transaction info file that is not a dict',
              "Downloader(cart_api_url=URL).transactioninfo(LOCATION, {'files': {'1': 'a.txt'}})", AttributeError,
              errors.RecordError),
    Situation('cloud event that is not a dict', "Downloader(cart_api_url=URL).cloudevent(LOCATION, [])",
              AttributeError, errors.RecordError),
    Situation('download timeout that is not a number',
              "Downloader(cart_api_url=URL).transactioninfo(LOCATION, {}, timeout='soon')".format(RECORD), ValueError,
              errors.ConfigurationError, _cartd()),
]
BY_ID = {situation.id: situation for situation in SITUATIONS}


def _qualified(cls: type) -> str:
    return '{}.{}'.format(cls.__module__, cls.__qualname__)


@pytest.fixture(scope='module')
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Tuple[str, Path]]]:
    """Each situation's (URL, download location), its server programmed; shared by both worlds."""
    running = []
    found = {}
    for situation in SITUATIONS:
        tmp = tmp_path_factory.mktemp('situation')
        server = LoopbackServer()
        running.append(server)
        found[situation.id] = (situation.serve(server, tmp) or server.url, tmp / 'download')
    yield found
    for server in running:
        server.close()
    while _REFUSING:
        _REFUSING.pop().close()


@pytest.fixture(scope='module')
def upstream_raised(upstream: str, servers: Dict[str, Tuple[str, Path]],  # noqa: F811 - the fixture above
                    tmp_path_factory: pytest.TempPathFactory) -> Dict[str, list]:
    """What each situation raised under pacifica-uploader 0.3.1 / pacifica-downloader 0.4.1 (MRO names)."""
    workdir = tmp_path_factory.mktemp('upstream')
    cases = [{'id': s.id, 'code': s.code, 'preamble': PREAMBLE, 'url': servers[s.id][0],
              'location': str(servers[s.id][1]) + '-upstream'} for s in SITUATIONS]
    (workdir / 'cases.json').write_text(json.dumps(cases), encoding='utf-8')
    (workdir / 'run.py').write_text(_UPSTREAM_SCRIPT, encoding='utf-8')
    # Run outside the repository so that this project's pacifica package cannot shadow upstream's.
    result = subprocess.run([upstream, 'run.py', 'cases.json', 'found.json'], capture_output=True, text=True,
                            timeout=600, cwd=str(workdir))
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads((workdir / 'found.json').read_text(encoding='utf-8'))


def _raise_ours(situation: Situation, servers: Dict[str, Tuple[str, Path]]) -> BaseException:
    url, location = servers[situation.id]
    namespace = {'URL': url, 'LOCATION': str(location), 'FAST': FAST, 'POLICY_OPTIONS': {'config': FAST}}
    environment = dict(os.environ)
    try:
        exec(PREAMBLE + situation.code, namespace)  # noqa: S102 - the situation's code, as upstream runs it
    except BaseException as err:  # noqa: BLE001 - any exception is examined below
        return err
    finally:  # the policy cases set endpoint variables
        os.environ.clear()
        os.environ.update(environment)
    raise AssertionError('{}: nothing was raised'.format(situation.id))


@pytest.mark.parametrize('situation_id', list(BY_ID))
def test_ours_is_also_the_builtin_upstream_raised(situation_id, servers, upstream_raised):
    situation = BY_ID[situation_id]
    theirs = upstream_raised[situation.id]
    assert _qualified(situation.builtin) in theirs, 'upstream raised {}, not {}'.format(
        theirs[0] if theirs else 'nothing', situation.builtin.__name__)
    err = _raise_ours(situation, servers)
    assert type(err) is situation.ours, 'we raised {!r}'.format(err)
    assert isinstance(err, situation.builtin)
    assert isinstance(err, errors.PacificaError)
    assert str(err) == str(err.args[0]), 'KeyError quoting leaked into the message: {}'.format(err)


def _doc_rows() -> Dict[str, Tuple[str, str, str]]:
    """The situation table of docs/compatibility.rst: situation -> (upstream raised, we raise, also)."""
    cells = re.findall(r'^   \* - (.+)\n     - (.+)\n     - (.+)\n     - (.+)$', DOCS_PAGE.read_text(encoding='utf-8'),
                       re.MULTILINE)
    return {situation: (raised, ours, also) for situation, raised, ours, also in cells[1:]}  # [0]: the header


def _named_class(name: str) -> type:
    """``KeyError``, ``requests.HTTPError``, ``tarfile.ReadError`` -> the class."""
    module, _, attribute = name.rpartition('.')
    return getattr({'': builtins, 'requests': requests.exceptions, 'tarfile': tarfile}[module], attribute)


def _doc_name(cls: type) -> str:
    if cls.__module__ == 'builtins':
        return '``{}``'.format(cls.__name__)
    if cls.__module__.startswith('pacifica'):
        return ':class:`~{}`'.format(_qualified(cls))
    return '``{}.{}``'.format(cls.__module__.split('.')[0], cls.__name__)


def test_docs_list_every_situation_as_tested():
    rows = _doc_rows()
    assert set(rows) == set(BY_ID)
    for situation in SITUATIONS:
        raised, ours, also = rows[situation.id]
        assert _doc_name(situation.builtin) in raised, situation.id
        assert ours == _doc_name(situation.ours), situation.id
        named = [_named_class(name) for name in re.findall(r'``([\w.]+)``', also)]
        assert situation.builtin in named, situation.id
        assert all(issubclass(situation.ours, cls) for cls in named), situation.id

