"""``pacifica-upload`` with the sharded options, against the loopback ingest stand-in (policy on the same server)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from pacifica.uploader import ConfigurationError, cli
from pacifica.uploader._dataset_cli import dataset_source
from pacifica.uploader.dataset import dataset_tags
from pacifica.uploader.dataset.manifest import INGESTED, Manifest
from tests.helpers.commands import GOOD_META, closed_port
from tests.helpers.ingestd import IngestServer, Job

from .support import uploads
from .test_sharded_upload import received_files


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Twelve files of 1000 bytes each below ``results/`` in the current directory."""
    for index in range(12):
        path = tmp_path / 'results' / ('sub' if index % 2 else '') / 'f{:02d}.dat'.format(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([index]) * 1000)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def servers(ingest: IngestServer) -> IngestServer:
    """The ingest stand-in, also answering policy's metadata validation."""
    ingest.server.route('POST', '/ingest', lambda request: {'status': 'success'})
    return ingest


def flags(ingest: IngestServer) -> List[str]:
    return ['--ingest-url', ingest.url, '--policy-url', ingest.url, '--timeout', '30', *GOOD_META]


def sources(workdir: Path) -> Dict[str, bytes]:
    """Each file below results/ by its archive name."""
    return {'data/' + path.relative_to(workdir).as_posix(): path.read_bytes()
            for path in sorted((workdir / 'results').rglob('*')) if path.is_file()}


def test_shards_go_up_once_each_and_a_rerun_sends_nothing(workdir: Path, servers: IngestServer,
                                                         capsys: pytest.CaptureFixture) -> None:
    argv = [*flags(servers), '--manifest', 'results.manifest', '--max-bundle-files', '3', '--workers', '2', '--wait',
            'results']
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    requests = uploads(servers)
    assert len(requests) == 4
    received = received_files(requests)
    assert sorted(name for name, _ in received) == sorted(sources(workdir))  # every file, exactly once
    assert dict(received) == sources(workdir)
    manifest = Manifest.load(str(workdir / 'results.manifest'))
    assert [record.state for record in manifest.shards] == [INGESTED] * 4
    assert 'dataset: {}'.format(manifest.dataset_id) in out
    assert 'manifest: results.manifest' in out
    assert 'parts: 4 (ingested 4, failed 0, unknown 0)' in out
    assert {dataset_tags(job.metadata) for job in servers.jobs.values()} == {
        (manifest.dataset_id, part, 4) for part in range(1, 5)}
    assert 'upload: 11.7 KiB' in err  # progress summed over the shards: 12,000 bytes of files
    assert servers.server.count('POST', '/ingest') == 1  # the metadata is validated once, not per shard

    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert len(uploads(servers)) == 4, 'a re-run with the manifest sends nothing'
    assert 'parts: 4 (ingested 4, failed 0, unknown 0)' in out


def test_a_size_limit_with_a_unit_cuts_the_bundles(workdir: Path, servers: IngestServer,
                                                   capsys: pytest.CaptureFixture) -> None:
    code = cli.main([*flags(servers), '--manifest', 'm.json', '--max-bundle-size', '2.5K', 'results'])
    out, err = capsys.readouterr()
    assert code == 0, err
    sizes = [sum(len(data) for _, data in received_files([request])) for request in uploads(servers)]
    assert sizes == [2000] * 6  # 2.5K = 2560 bytes: two files of 1000 fit, a third does not
    assert 'parts: 6 (ingested 0, failed 0, unknown 0, sent and not followed 6)' in out
    assert out.count('job_id: part ') == 6  # without --wait the job ids are the result


def test_a_failed_job_exits_4_and_names_the_part(workdir: Path, servers: IngestServer,
                                                 capsys: pytest.CaptureFixture) -> None:
    def failing(job: Job) -> Dict[str, Any]:
        return {'job_id': job.job_id, 'state': 'FAILED', 'task': 'ingest files', 'task_percent': '0.0',
                'exception': 'disk full', 'complete': True, 'created': '2026-01-01 00:00:00',
                'updated': '2026-01-01 00:00:01'}

    servers.state_of = failing  # type: ignore[method-assign]
    code = cli.main([*flags(servers), '--manifest', 'm.json', '--max-bundle-files', '6', '--wait', 'results'])
    out, err = capsys.readouterr()
    assert code == 4, err
    assert 'parts: 2 (ingested 0, failed 2, unknown 0)' in out
    assert 'failed: part 1: IngestJobFailedError' in out and 'disk full' in out
    assert '2 of 2 parts not ingested' in err and 'run the same command again' in err


def test_an_unreachable_ingest_server_exits_3_and_a_rerun_resends(workdir: Path, servers: IngestServer,
                                                                 capsys: pytest.CaptureFixture) -> None:
    closed = ['--ingest-url', 'http://127.0.0.1:{}'.format(closed_port()), '--retries', '0']
    argv = ['--policy-url', servers.url, '--timeout', '30', *GOOD_META, '--manifest', 'm.json',
            '--max-bundle-files', '4']
    assert cli.main([*closed, *argv, 'results']) == 3
    out, err = capsys.readouterr()
    assert 'parts: 3 (ingested 0, failed 3, unknown 0)' in out
    assert 'ServerConnectionError' in out
    assert cli.main(['--ingest-url', servers.url, *argv, '--wait', 'results']) == 0
    assert len(uploads(servers)) == 3


@pytest.mark.parametrize('argv, message', [
    (['--manifest', 'm.json', '--max-bundle-files', '2', '--save', 'b.tar'], '--save and --no-upload write one'),
    (['--workers', '2', '--max-bundle-files', '2'], 'a sharded upload needs --manifest FILE'),
    (['--manifest', 'm.json', '--workers', '2'], 'give --max-bundle-size SIZE and/or --max-bundle-files N'),
    (['--manifest', 'm.json', '--max-bundle-size', '2Q'], "'2Q' is not a size"),
    (['--manifest', 'm.json', '--max-bundle-files', '0'], "'0' is not a whole number >= 1"),
    (['--manifest', 'm.json', '--workers', '-1', '--max-bundle-files', '1'], "'-1' is not a whole number >= 1"),
])
def test_bad_combinations_are_usage_errors(workdir: Path, argv: List[str], message: str,
                                           capsys: pytest.CaptureFixture) -> None:
    assert cli.main([*argv, *GOOD_META, '--ingest-url', 'http://127.0.0.1:{}'.format(closed_port()),
                     'results']) == 2
    assert message in capsys.readouterr().err
    assert not (workdir / 'm.json').exists()


def test_dask_without_the_extra_names_the_pip_command(workdir: Path, servers: IngestServer,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, 'distributed', None)  # as if not installed: import raises ImportError
    code = cli.main([*flags(servers), '--manifest', 'm.json', '--max-bundle-files', '2', '--dask-scheduler',
                     'tcp://127.0.0.1:{}'.format(closed_port()), 'results'])
    assert code == 2
    assert "pip install 'pacifica-transfer[dask]'" in capsys.readouterr().err
    assert uploads(servers) == []


def test_a_dataset_changed_since_the_manifest_is_refused(workdir: Path, servers: IngestServer,
                                                         capsys: pytest.CaptureFixture) -> None:
    argv = [*flags(servers), '--manifest', 'm.json', '--max-bundle-files', '5', '--wait', 'results']
    assert cli.main(argv) == 0
    (workdir / 'results' / 'f00.dat').rename(workdir / 'results' / 'renamed.dat')
    assert cli.main(argv) == 2
    assert 'the dataset changed since it was planned' in capsys.readouterr().err
    assert json.loads((workdir / 'm.json').read_text())['shards'][0]['state'] == INGESTED


@pytest.mark.parametrize('paths', [['.'], ['sub', 'f00.dat'], ['.', 'sub'], ['sub', '../results/sub'],
                                   ['sub', '../other/sub'], ['../other', 'f02.dat']])
def test_the_sharded_source_names_files_as_one_bundle_would(workdir: Path, paths: List[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Walked afresh on each pass, or listed once where names may meet: the same names, a name twice refused."""
    (workdir / 'other' / 'sub').mkdir(parents=True)
    (workdir / 'other' / 'sub' / 'other.dat').write_bytes(b'x')
    monkeypatch.chdir(workdir / 'results')
    try:
        expected = cli.collect_files(paths)
    except ConfigurationError as err:
        assert 'would both be stored as' in str(err)
        with pytest.raises(ConfigurationError, match='would both be stored as'):
            dataset_source(paths)
        return
    source = dataset_source(paths)
    assert list(source()) == expected
    assert list(source()) == expected  # a second pass walks again


def test_metadata_url_points_the_checks_of_every_shard(workdir: Path, servers: IngestServer,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    """--wait checks each shard's transaction on the metadata server --metadata-url names, not the default one."""
    monkeypatch.setenv('METADATA_PORT', str(closed_port()))
    argv = [*flags(servers), '--metadata-url', servers.url, '--manifest', 'm.json', '--max-bundle-files', '6',
            '--wait', 'results']
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert 'parts: 2 (ingested 2, failed 0, unknown 0)' in out
