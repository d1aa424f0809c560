"""The manifest: the shard state machine, atomic saves, reloading, unknown outcomes, one run at a time."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import pytest

from pacifica.uploader.dataset import manifest as manifest_module
from pacifica.uploader.dataset.manifest import (
    FAILED, INGESTED, NEXT_STATES, PLANNED, SENDING, SENT, STATES, Manifest, ManifestError, ManifestLock,
    TransitionError, write_atomically,
)
from pacifica.uploader.dataset.plan import plan

DATASET = '0b6a2f0e-8a53-4f47-9a55-2d7c1b3c4e5f'


def shards(count: int = 3) -> Any:
    return plan(({'name': 'data/f{:02d}'.format(index), 'size': index} for index in range(2 * count)), max_files=2)


@pytest.fixture
def path(tmp_path: Any) -> str:
    return str(tmp_path / 'dataset.manifest.json')


def make(path: str, count: int = 3) -> Manifest:
    return Manifest.create(path, DATASET, shards(count), max_files=2, metadata_digest='abc')


def on_disk(path: str) -> Dict[int, tuple]:
    """Each part's (state, job id, transaction id) as saved."""
    doc = json.loads(open(path, encoding='ascii').read())
    return {shard['part']: (shard['state'], shard['job_id'], shard['transaction_id']) for shard in doc['shards']}


def test_a_new_manifest_is_saved_planned_and_reloads_equal(path: str) -> None:
    made = make(path)
    assert on_disk(path) == {1: (PLANNED, None, None), 2: (PLANNED, None, None), 3: (PLANNED, None, None)}
    again = Manifest.load(path)
    assert again.dataset_id == DATASET and again.plans() == made.plans() == shards()
    assert (again.max_bytes, again.max_files, again.metadata_digest) == (None, 2, 'abc')
    assert again.as_json_text() == made.as_json_text() == open(path, encoding='ascii').read()


def test_every_change_of_state_is_on_disk_before_the_call_returns(path: str) -> None:
    manifest = make(path)
    manifest.mark_sending(1)
    assert on_disk(path)[1] == (SENDING, None, None)
    manifest.mark_sent(1, 1000)
    assert on_disk(path)[1] == (SENT, 1000, None)
    manifest.mark_ingested(1, 1000)
    assert on_disk(path)[1] == (INGESTED, 1000, 1000)
    manifest.mark_sending(2)
    manifest.mark_failed(2, 'FileChangedError: data/f02 shrank')
    assert on_disk(path)[2] == (FAILED, None, None)
    assert Manifest.load(path).shard(2).error == 'FileChangedError: data/f02 shrank'
    assert Manifest.load(path).counts() == {PLANNED: 1, SENDING: 0, SENT: 0, INGESTED: 1, FAILED: 1}


ALLOWED = {(PLANNED, SENDING), (SENDING, SENT), (SENDING, FAILED), (SENT, INGESTED), (SENT, FAILED), (FAILED, SENDING)}


def move(manifest: Manifest, part: int, state: str) -> None:
    if state == SENDING:
        manifest.mark_sending(part)
    elif state == SENT:
        manifest.mark_sent(part, 7)
    elif state == INGESTED:
        manifest.mark_ingested(part, 7)
    elif state == FAILED:
        manifest.mark_failed(part, 'boom')
    else:
        pytest.skip('no call moves a shard back to planned')


def reach(manifest: Manifest, part: int, state: str) -> None:
    path = {PLANNED: [], SENDING: [SENDING], SENT: [SENDING, SENT], INGESTED: [SENDING, SENT, INGESTED],
            FAILED: [SENDING, FAILED]}[state]
    for step in path:
        move(manifest, part, step)


def test_the_transition_table_is_the_documented_one() -> None:
    assert {(old, new) for old, news in NEXT_STATES.items() for new in news} == ALLOWED


@pytest.mark.parametrize('old', STATES)
@pytest.mark.parametrize('new', [SENDING, SENT, INGESTED, FAILED])
def test_only_the_documented_moves_are_allowed(path: str, old: str, new: str) -> None:
    manifest = make(path)
    reach(manifest, 1, old)
    before = open(path, encoding='ascii').read()
    if (old, new) in ALLOWED:
        move(manifest, 1, new)
        assert manifest.shard(1).state == new == on_disk(path)[1][0]
    else:
        with pytest.raises(TransitionError):
            move(manifest, 1, new)
        assert manifest.shard(1).state == old
        assert open(path, encoding='ascii').read() == before, 'a refused move writes nothing'


def test_a_shard_sending_without_a_job_id_is_reported_unknown_and_never_moves_back(path: str) -> None:
    manifest = make(path)
    manifest.mark_sending(2)
    manifest.note_error(2, 'ServerConnectionError: connection reset after the body was sent')
    again = Manifest.load(path)  # as a second run finds it
    assert [record.part for record in again.unknown()] == [2]
    assert again.shard(2).outcome_unknown and again.shard(2).job_id is None
    assert 'connection reset' in (again.shard(2).error or '')
    with pytest.raises(TransitionError, match='outcome is unknown'):
        again.mark_sending(2)
    assert not again.complete


def test_complete_when_every_shard_is_ingested(path: str) -> None:
    manifest = make(path, 2)
    for part in (1, 2):
        reach(manifest, part, INGESTED)
    assert manifest.complete and Manifest.load(path).complete


@pytest.mark.parametrize('job_id', [None, True, 1.5, ['1']])
def test_a_sent_shard_needs_a_job_id(path: str, job_id: Any) -> None:
    manifest = make(path)
    manifest.mark_sending(1)
    with pytest.raises(TransitionError):
        manifest.mark_sent(1, job_id)
    assert on_disk(path)[1] == (SENDING, None, None)


def test_an_ingested_shard_needs_a_transaction_id(path: str) -> None:
    manifest = make(path)
    reach(manifest, 1, SENT)
    with pytest.raises(TransitionError):
        manifest.mark_ingested(1, None)


@pytest.mark.parametrize('part', [0, 4, -1, True, '1'])
def test_unknown_parts_are_refused(path: str, part: Any) -> None:
    with pytest.raises(ManifestError):
        make(path).mark_sending(part)


def test_create_refuses_to_overwrite(path: str) -> None:
    make(path)
    with pytest.raises(ManifestError, match='already exists'):
        make(path)


def test_a_failed_save_leaves_memory_and_disk_as_they_were(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = make(path)
    before = open(path, encoding='ascii').read()

    def broken(*_: Any) -> None:
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(manifest_module, 'write_atomically', broken)
    with pytest.raises(OSError):
        manifest.mark_sending(1)
    assert manifest.shard(1).state == PLANNED
    assert open(path, encoding='ascii').read() == before


def test_atomic_write_syncs_the_file_renames_it_and_syncs_the_folder(tmp_path: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / 'm.json'
    target.write_bytes(b'old')
    calls: List[Any] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(handle: int) -> None:
        calls.append(('fsync', os.path.isdir('/proc/self/fd/{}'.format(handle)) if os.path.isdir('/proc') else None))
        real_fsync(handle)

    def replace(source: str, destination: str) -> None:
        calls.append(('replace', os.path.dirname(source) == str(tmp_path), destination))
        real_replace(source, destination)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    write_atomically(str(target), b'new')
    assert target.read_bytes() == b'new'
    assert [call[0] for call in calls] == ['fsync', 'replace', 'fsync']
    assert calls[1] == ('replace', True, str(target))  # the temporary file is in the same folder
    if os.path.isdir('/proc'):
        assert (calls[0][1], calls[2][1]) == (False, True)  # the file first, then its folder
    assert os.listdir(str(tmp_path)) == ['m.json']


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / 'm.json'
    target.write_bytes(b'old')

    def fsync(_: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'fsync', fsync)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(target), b'new')
    assert target.read_bytes() == b'old'
    assert os.listdir(str(tmp_path)) == ['m.json']


def edit(path: str, change: Any) -> None:
    doc = json.loads(open(path, encoding='ascii').read())
    change(doc)
    with open(path, 'w', encoding='ascii') as out:
        json.dump(doc, out)


@pytest.mark.parametrize('change', [
    lambda doc: doc.update(format='other'),
    lambda doc: doc.update(version=2),
    lambda doc: doc.update(parts=4),
    lambda doc: doc.update(dataset_id='nope'),
    lambda doc: doc.update(shards=[]),
    lambda doc: doc['shards'].reverse(),
    lambda doc: doc['shards'][1].update(start=3),
    lambda doc: doc['shards'][1].update(stop=2),
    lambda doc: doc['shards'][0].pop('digest'),
    lambda doc: doc['shards'][0].update(state='done'),
    lambda doc: doc['shards'][0].update(state='sent'),
    lambda doc: doc['shards'][0].update(state='sending', job_id=5),
    lambda doc: doc['shards'][0].update(state='ingested', job_id=5),
    lambda doc: doc['shards'][0].update(transaction_id=5),
    lambda doc: doc['shards'].__setitem__(0, 'shard'),
])
def test_an_inconsistent_manifest_is_refused_on_load(path: str, change: Any) -> None:
    make(path)
    edit(path, change)
    with pytest.raises(ManifestError):
        Manifest.load(path)


@pytest.mark.parametrize('content', [b'', b'{"format": ', b'[]', b'\xff'])
def test_an_unreadable_manifest_is_refused_on_load(path: str, content: bytes) -> None:
    with open(path, 'wb') as out:
        out.write(content)
    with pytest.raises(ManifestError):
        Manifest.load(path)


def test_a_missing_manifest_is_a_manifest_error(path: str) -> None:
    with pytest.raises(ManifestError, match='cannot read'):
        Manifest.load(path)


def test_a_long_error_is_kept_short(path: str) -> None:
    manifest = make(path)
    manifest.mark_sending(1)
    manifest.mark_failed(1, 'x' * 10000)
    assert len(manifest.shard(1).error or '') < 2100


@pytest.mark.skipif(manifest_module.fcntl is None, reason='no advisory locks here')
def test_one_run_at_a_time_per_manifest(path: str) -> None:
    with ManifestLock(path):
        with pytest.raises(ManifestError, match='another run'):
            with ManifestLock(path):
                pass
    with ManifestLock(path):
        pass  # released with the first holder


def test_deferred_outcomes_are_saved_with_the_next_sending_or_when_the_block_ends(path: str) -> None:
    manifest = make(path)
    manifest.mark_sending(1)
    with manifest.deferring():
        manifest.mark_sent(1, 1000)
        manifest.note_error(1, 'noted')
        with manifest.deferring():
            manifest.mark_ingested(1, 1000)
        assert on_disk(path)[1] == (SENDING, None, None)  # an inner block's end saves nothing
        manifest.mark_sending(2)  # saved at once, with what waited
        assert on_disk(path) == {1: (INGESTED, 1000, 1000), 2: (SENDING, None, None), 3: (PLANNED, None, None)}
        manifest.mark_sent(2, 2000)
    assert on_disk(path)[2] == (SENT, 2000, None)
    assert manifest.as_json_text() == open(path, encoding='ascii').read()


def test_a_block_left_by_an_error_saves_what_it_deferred(path: str) -> None:
    manifest = make(path)
    manifest.mark_sending(1)
    with pytest.raises(RuntimeError):
        with manifest.deferring():
            manifest.mark_failed(1, 'gone')
            raise RuntimeError('the coordinator broke')
    assert on_disk(path)[1] == (FAILED, None, None)


def test_a_sending_is_never_deferred(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = make(path)
    writes: List[str] = []
    monkeypatch.setattr(manifest_module, 'write_atomically', lambda where, data: writes.append(where))
    with manifest.deferring():
        manifest.mark_sending(1)
        assert len(writes) == 1
        manifest.mark_sent(1, 1)
        manifest.mark_ingested(1, 1)
        assert len(writes) == 1
    assert len(writes) == 2
