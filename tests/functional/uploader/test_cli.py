"""pacifica-upload, in-process (main([...])) and as ``python -m pacifica.uploader``."""
from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from pathlib import Path
from typing import Any, Dict

import pytest

from pacifica._client.progress import human_bytes
from pacifica.uploader import cli
from pacifica.uploader.metadata import MetaObj
from tests.helpers.server import Reply
from tests.helpers.commands import GOOD_META, FakeIngestPolicy, closed_port, run_module

SAMPLE: Dict[str, bytes] = {
    'sample/résumé.txt': 'Grüße\n'.encode(),
    'sample/sub/数据.bin': bytes(range(256)) * 64,
    'sample/sub/empty.dat': b'',
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory holding the sample folder (non-ASCII names included)."""
    for name, data in SAMPLE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _no_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every default at a port where nothing listens: any contact would fail the command."""
    port = str(closed_port())
    for name in ('INGEST_PORT', 'POLICY_PORT'):
        monkeypatch.setenv(name, port)


def _members(path: Path) -> Dict[str, bytes]:
    with tarfile.open(str(path)) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers()}


def test_no_upload_writes_the_bundle_with_no_server_at_all(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    _no_servers(monkeypatch)
    code = cli.main(['--no-upload', '--save', 'bundle.tar', *GOOD_META, 'sample'])
    out, err = capsys.readouterr()
    assert code == 0, err
    members = _members(workdir / 'bundle.tar')
    assert list(members) == ['data/sample/résumé.txt', 'data/sample/sub/empty.dat', 'data/sample/sub/数据.bin',
                             'metadata.txt']
    for name, data in SAMPLE.items():
        assert members['data/' + name] == data
    metadata = json.loads(members['metadata.txt'])
    values = {item['destinationTable']: item['value'] for item in metadata if 'value' in item}
    assert values == {'Transactions.submitter': 10, 'Transactions.project': '1234a', 'Transactions.instrument': 54}
    files = {item['subdir'] + '/' + item['name']: item for item in metadata if item['destinationTable'] == 'Files'}
    assert {name: item['hashsum'] for name, item in files.items()} == {
        name: hashlib.sha1(data).hexdigest() for name, data in SAMPLE.items()}
    assert not (workdir / 'bundle.tar.part').exists()
    assert 'files: 3 ' in out and 'saved: bundle.tar' in out and 'job_id' not in out
    assert 'bundle: {} bytes, sha1'.format((workdir / 'bundle.tar').stat().st_size) in out


def test_hashfunc_is_used_for_every_file(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--no-upload', '--save', 'b.tar', '--hashfunc', 'sha512_256', *GOOD_META, 'sample']) == 0
    metadata = json.loads(_members(workdir / 'b.tar')['metadata.txt'])
    assert {item['hashtype'] for item in metadata if item['destinationTable'] == 'Files'} == {'sha512_256'}


def test_an_unknown_hashfunc_is_a_usage_error(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--no-upload', '--save', 'b.tar', '--hashfunc', 'md6', *GOOD_META, 'sample']) == 2
    assert 'md6' in capsys.readouterr().err
    assert not (workdir / 'b.tar').exists()


@pytest.mark.parametrize('text, expected', [
    ('Transactions.instrument=54', MetaObj(destinationTable='Transactions.instrument', value=54)),
    ('Transactions.project=1234a', MetaObj(destinationTable='Transactions.project', value='1234a')),
    ('Transactions.project=0123', MetaObj(destinationTable='Transactions.project', value='0123')),
    ('Transactions.project:="1234"', MetaObj(destinationTable='Transactions.project', value='1234')),
    ('Transactions.submitter=-1', MetaObj(destinationTable='Transactions.submitter', value=-1)),
    ('Transactions.description=a=b', MetaObj(destinationTable='Transactions.description', value='a=b')),
    ('TransactionKeyValue.Tag=42', MetaObj(destinationTable='TransactionKeyValue', key='Tag', value='42')),
])
def test_meta_values_are_typed_predictably(text: str, expected: MetaObj) -> None:
    assert cli.parse_meta(text) == expected


@pytest.mark.parametrize('argument, message', [
    ('Transactions.project', 'is not TABLE.COLUMN=VALUE'),
    ('project=1', 'the target must be TABLE.COLUMN'),
    ('Transactions.project=', 'the value is empty'),
    ('Transactions.project:={oops', 'not JSON'),
])
def test_bad_meta_options_are_usage_errors(workdir: Path, argument: str, message: str,
                                           capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--no-upload', '--save', 'b.tar', '--meta', argument, 'sample']) == 2
    assert message in capsys.readouterr().err


def test_meta_file_values_are_overridden_by_meta_options(workdir: Path) -> None:
    (workdir / 'meta.json').write_text(json.dumps([
        {'destinationTable': 'Transactions.submitter', 'metaID': 'logon', 'value': 11},
        {'destinationTable': 'Transactions.project', 'value': '1234a'},
        {'destinationTable': 'TransactionKeyValue', 'key': 'Tag', 'value': 'old'},
    ]), encoding='utf-8')
    metadata = cli.build_metadata('meta.json', [cli.parse_meta('Transactions.submitter=10'),
                                                cli.parse_meta('TransactionKeyValue.Tag=new'),
                                                cli.parse_meta('Transactions.instrument=54')])
    assert [(item.destinationTable, item.key, item.value, item.metaID) for item in metadata] == [
        ('Transactions.submitter', None, 10, 'logon'),
        ('Transactions.project', None, '1234a', None),
        ('TransactionKeyValue', 'Tag', 'new', None),
        ('Transactions.instrument', None, 54, None),
    ]


def test_an_unreadable_meta_file_is_a_usage_error(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    (workdir / 'meta.json').write_text('{"not": "a list"}', encoding='utf-8')
    assert cli.main(['--no-upload', '--save', 'b.tar', '--meta-file', 'meta.json', 'sample']) == 2
    assert '--meta-file meta.json is not upload metadata' in capsys.readouterr().err
    assert cli.main(['--no-upload', '--save', 'b.tar', '--meta-file', 'missing.json', 'sample']) == 2
    assert 'cannot read --meta-file missing.json' in capsys.readouterr().err


def test_incomplete_metadata_names_what_is_missing_before_reading_files(workdir: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    (workdir / 'meta.json').write_text(json.dumps([
        {'destinationTable': 'Transactions.instrument', 'metaID': 'instrumentByProject', 'value': ''},
        {'destinationTable': 'Transactions.project', 'value': '1234a'}]), encoding='utf-8')
    assert cli.main(['--no-upload', '--save', 'b.tar', '--meta-file', 'meta.json', 'sample']) == 2
    assert 'metadata is incomplete, no value for: instrumentByProject' in capsys.readouterr().err
    assert cli.main(['--no-upload', '--save', 'b.tar', 'sample']) == 2
    assert 'no metadata given' in capsys.readouterr().err
    assert not (workdir / 'b.tar').exists()


def test_archive_names_follow_the_current_directory_and_use_slashes(workdir: Path, tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp('elsewhere')
    (outside / 'notes.txt').write_bytes(b'n')
    entries = cli.collect_files(['sample/sub', str(workdir / 'sample' / 'résumé.txt'), str(outside)])
    assert [entry['name'] for entry in entries] == [
        'data/sample/sub/empty.dat', 'data/sample/sub/数据.bin', 'data/sample/résumé.txt',
        'data/{}/notes.txt'.format(outside.name)]
    first = entries[1]
    assert first['size'] == len(SAMPLE['sample/sub/数据.bin'])
    assert first['path'] == os.path.join(str(workdir), 'sample', 'sub', '数据.bin')
    assert first['mtime'] == os.stat(first['path']).st_mtime
    assert 'fileobj' not in first  # opened only when its turn comes


def test_a_file_named_twice_is_refused(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--no-upload', '--save', 'b.tar', *GOOD_META, 'sample', 'sample/résumé.txt']) == 2
    assert 'would both be stored as data/sample/résumé.txt' in capsys.readouterr().err


def test_missing_paths_and_empty_folders_are_usage_errors(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--no-upload', '--save', 'b.tar', *GOOD_META, 'nope']) == 2
    assert 'nope: no such file or directory' in capsys.readouterr().err
    (workdir / 'empty').mkdir()
    assert cli.main(['--no-upload', '--save', 'b.tar', *GOOD_META, 'empty']) == 2
    assert 'nothing to upload' in capsys.readouterr().err


@pytest.mark.parametrize('argv, message', [
    (['--no-upload'], '--no-upload needs --save FILE'),
    (['--no-upload', '--save', 'b.tar', '--wait'], '--wait follows an upload'),
    ([], 'the following arguments are required: PATH'),
])
def test_conflicting_options_are_usage_errors(workdir: Path, argv, message, capsys: pytest.CaptureFixture) -> None:
    paths = ['sample'] if argv else []
    assert cli.main([*argv, *GOOD_META, *paths]) == 2
    assert message in capsys.readouterr().err


def test_upload_validates_streams_and_waits(workdir: Path, services: FakeIngestPolicy,
                                            capsys: pytest.CaptureFixture) -> None:
    code = cli.main([*services.flags(), *GOOD_META, '--save', 'copy.tar', '--wait', '--timeout', '30', 'sample'])
    out, err = capsys.readouterr()
    assert code == 0, err
    validated = json.loads(services.bodies('/ingest')[0])
    assert {item['destinationTable'] for item in validated} == {
        'Transactions.submitter', 'Transactions.project', 'Transactions.instrument'}
    [sent] = services.bodies('/upload')
    upload = [req for req in services.server.requests if req.path == '/upload'][0]
    assert int(upload.headers['Content-Length']) == len(sent)
    assert (workdir / 'copy.tar').read_bytes() == sent  # --save keeps exactly what was sent
    assert 'job_id: 1234' in out
    assert 'state: OK (ingest metadata, 100%)' in out
    assert services.server.count('GET', '/get_state') >= 1
    assert 'upload: ' in err  # progress lines on a non-terminal


def test_user_network_id_becomes_the_submitter(workdir: Path, services: FakeIngestPolicy,
                                               capsys: pytest.CaptureFixture) -> None:
    code = cli.main([*services.flags(), '--user', 'dmlb2001', '--meta', 'Transactions.project=1234a',
                     '--meta', 'Transactions.instrument=54', 'sample'])
    assert code == 0, capsys.readouterr().err
    validated = json.loads(services.bodies('/ingest')[0])
    assert {'destinationTable': 'Transactions.submitter', 'value': 10} in validated


def test_an_unknown_network_id_fails_clearly(workdir: Path, services: FakeIngestPolicy,
                                             capsys: pytest.CaptureFixture) -> None:
    code = cli.main([*services.flags(), '--user', 'nobody', *GOOD_META[2:], 'sample'])
    assert code == 4
    assert 'nobody' in capsys.readouterr().err
    assert services.bodies('/upload') == []


def test_policy_rejection_stops_before_any_upload(workdir: Path, services: FakeIngestPolicy,
                                                  capsys: pytest.CaptureFixture) -> None:
    services.validation = Reply.json({'status': '412 Precondition Failed', 'traceback': '', 'version': '18.1',
                                      'message': 'Precondition Failed: Invalid values for project'}, status=412)
    assert cli.main([*services.flags(), *GOOD_META, 'sample']) == 4
    assert 'Invalid values for project' in capsys.readouterr().err
    assert services.bodies('/upload') == []


def test_a_failed_ingest_job_exits_4_with_the_server_reason(workdir: Path, services: FakeIngestPolicy,
                                                            capsys: pytest.CaptureFixture) -> None:
    services.final_state = {'state': 'FAILED', 'task': 'ingest files', 'task_percent': '0.0',
                            'exception': 'hashsum mismatch for data/sample/résumé.txt'}
    assert cli.main([*services.flags(), *GOOD_META, '--wait', 'sample']) == 4
    out, err = capsys.readouterr()
    assert 'job_id: 1234' in out
    assert 'hashsum mismatch' in err


def test_a_failed_upload_leaves_no_saved_bundle(workdir: Path, services: FakeIngestPolicy,
                                                capsys: pytest.CaptureFixture) -> None:
    services.server.route('POST', '/upload', Reply(500, 'disk full'))
    assert cli.main([*services.flags(), *GOOD_META, '--save', 'copy.tar', 'sample']) == 3
    assert 'disk full' in capsys.readouterr().err
    assert not (workdir / 'copy.tar').exists() and not (workdir / 'copy.tar.part').exists()


def _last_progress_line(err: str) -> str:
    return [line for line in err.splitlines() if line.startswith('upload: ')][-1]


def test_a_failed_upload_ends_its_progress_saying_it_failed_and_how_far(workdir: Path, services: FakeIngestPolicy,
                                                                        capsys: pytest.CaptureFixture) -> None:
    services.server.route('POST', '/upload', Reply(500, 'disk full'))
    assert cli.main([*services.flags(), *GOOD_META, '--progress', 'lines', 'sample']) == 3
    out, err = capsys.readouterr()
    total = re.search(r'^bundle: (\d+) bytes', out, re.MULTILINE).group(1)
    size = human_bytes(int(total))
    assert _last_progress_line(err) == 'upload: failed, {0} of {0} sent (100%)'.format(size), err


def test_an_upload_refused_at_once_says_nothing_was_sent(workdir: Path, services: FakeIngestPolicy,
                                                         capsys: pytest.CaptureFixture) -> None:
    ingest = 'http://127.0.0.1:{}'.format(closed_port())
    assert cli.main(['--ingest-url', ingest, '--policy-url', services.url, '--retries', '0', *GOOD_META,
                     '--progress', 'lines', 'sample']) == 3
    out, err = capsys.readouterr()
    size = human_bytes(int(re.search(r'^bundle: (\d+) bytes', out, re.MULTILINE).group(1)))
    assert _last_progress_line(err) == 'upload: failed, 0 B of {} sent (0%)'.format(size), err


def test_unreachable_servers_exit_3_and_never_show_credentials(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    url = 'http://bob:hunter2@127.0.0.1:{}'.format(closed_port())
    assert cli.main(['--ingest-url', url, '--policy-url', url, '--retries', '0', *GOOD_META, 'sample']) == 3
    out, err = capsys.readouterr()
    assert 'hunter2' not in out + err and 'bob' not in out + err
    assert 'pacifica-upload: error:' in err


def test_environment_variables_locate_the_servers(workdir: Path, services: FakeIngestPolicy,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    for prefix in ('INGEST', 'POLICY'):
        monkeypatch.setenv(prefix + '_ADDR', '127.0.0.1')
        monkeypatch.setenv(prefix + '_PORT', str(services.server.port))
    assert cli.main([*GOOD_META, 'sample']) == 0, capsys.readouterr().err
    assert len(services.bodies('/upload')) == 1


def test_help_lists_every_option_and_the_exit_codes(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--help']) == 0
    out = capsys.readouterr().out
    for option in ('--meta', '--meta-file', '--save', '--no-upload', '--wait', '--timeout', '--hashfunc',
                   '--ingest-url', '--status-url', '--policy-url', '--user', '--progress', 'exit codes:',
                   'INGEST_PORT'):
        assert option in out


def test_python_dash_m_runs_the_command(workdir: Path) -> None:
    done = run_module('pacifica.uploader', ['--no-upload', '--save', 'b.tar', *GOOD_META, 'sample'], str(workdir),
                      {'INGEST_PORT': str(closed_port()), 'POLICY_PORT': str(closed_port())})
    assert done.returncode == 0, done.stderr
    assert 'saved: b.tar' in done.stdout
    assert 'save: ' in done.stderr  # plain progress lines: stderr is not a terminal
    assert sorted(_members(workdir / 'b.tar')) == sorted(['data/' + name for name in SAMPLE] + ['metadata.txt'])
    usage = run_module('pacifica.uploader', ['--no-upload'], str(workdir))
    assert usage.returncode == 2 and usage.stderr.startswith('usage: pacifica-upload')


def test_an_unwritable_save_file_is_a_usage_error(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['--no-upload', '--save', 'no/such/dir/b.tar', *GOOD_META, 'sample']) == 2
    assert 'cannot write --save no/such/dir/b.tar' in capsys.readouterr().err


def test_quiet_prints_only_the_result(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(['-q', '--no-upload', '--save', 'b.tar', *GOOD_META, 'sample']) == 0
    out, err = capsys.readouterr()
    assert err == ''
    assert out.splitlines()[-1] == 'saved: b.tar'


def test_wait_verifies_what_the_transaction_holds(workdir: Path, services: FakeIngestPolicy,
                                                  capsys: pytest.CaptureFixture) -> None:
    assert cli.main([*services.flags(), *GOOD_META, '--wait', 'sample']) == 0
    out = capsys.readouterr().out
    assert 'verified: transaction 1234 holds the 3 file(s) sent' in out
    assert services.server.count('GET', '/files') == 1


def test_wait_fails_naming_the_files_the_server_holds_otherwise(workdir: Path, services: FakeIngestPolicy,
                                                                capsys: pytest.CaptureFixture) -> None:
    def corrupt(request: Any) -> Any:
        rows = {row['name']: row for row in services.metadata.files}
        rows['résumé.txt']['size'] += 1
        rows['数据.bin']['hashsum'] = '0' * 40
        services.metadata.files.remove(rows['empty.dat'])
        return {'job_id': services.job_id}

    handler = services.server.routes[('POST', '/upload')][0]
    services.server.route('POST', '/upload', lambda request: (handler(request), corrupt(request))[1])
    assert cli.main([*services.flags(), *GOOD_META, '--wait', 'sample']) == 4
    out, err = capsys.readouterr()
    assert 'state: OK' in out and 'verified' not in out
    assert '3 file(s) differ' in err
    size = len(SAMPLE['sample/résumé.txt'])
    assert 'sample/résumé.txt: sent {} bytes, the server records {} bytes'.format(size, size + 1) in err
    assert 'sample/sub/数据.bin: sent sha1 {}, the server records sha1 {}'.format(
        hashlib.sha1(SAMPLE['sample/sub/数据.bin']).hexdigest(), '0' * 40) in err
    assert 'sample/sub/empty.dat: sent (0 bytes, sha1 ' in err and 'the transaction does not hold it' in err
