"""A save killed between its temporary file and the rename: the next run, under the lock, clears what it left."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from pacifica.uploader.dataset import manifest as manifest_module
from pacifica.uploader.dataset.manifest import SENDING, Manifest, ManifestLock, remove_stale_temporaries
from pacifica.uploader.dataset.plan import plan

DATASET = '0b6a2f0e-8a53-4f47-9a55-2d7c1b3c4e5f'
needs_locks = pytest.mark.skipif(manifest_module.fcntl is None, reason='no advisory locks here')

#: A child that saves a manifest and is SIGKILLed after the temporary file is written, before the rename.
_KILLED_SAVE = '''
import os, signal, sys
from pacifica.uploader.dataset.manifest import Manifest
manifest = Manifest.load(sys.argv[1])
manifest.shard(1).state = 'sending'
os.replace = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
manifest.save()
'''


def _manifest(path: Path) -> Manifest:
    entries = ({'name': 'data/f{}'.format(index), 'size': index} for index in range(4))
    return Manifest.create(str(path), DATASET, plan(entries, max_files=2))


def _killed_save(path: Path) -> List[str]:
    """Kill a real save mid-way; the names of the temporary files it left."""
    before = set(os.listdir(str(path.parent)))
    done = subprocess.run([sys.executable, '-c', _KILLED_SAVE, str(path)], cwd=str(Path(__file__).parents[4]),
                          capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    return sorted(set(os.listdir(str(path.parent))) - before)


@needs_locks
def test_the_next_run_removes_the_temporary_file_a_killed_save_left(tmp_path: Path) -> None:
    path = tmp_path / 'd.manifest.json'
    _manifest(path)
    left = _killed_save(path)
    assert len(left) == 1 and left[0].startswith('.d.manifest.json.') and left[0].endswith('.tmp')
    with ManifestLock(str(path)):
        assert sorted(os.listdir(str(tmp_path))) == ['d.manifest.json', 'd.manifest.json.lock']
        assert Manifest.load(str(path)).shard(1).state != SENDING  # the old manifest, whole


def test_only_files_of_its_own_naming_pattern_go(tmp_path: Path) -> None:
    path = tmp_path / 'm.json'
    path.write_bytes(b'{}')
    stale = ['.m.json.abcd_123.tmp', '.m.json.zzzzzzzz.tmp']
    others = ['.m.json.backup.tmp',        # not eight characters
              '.m.json.ABCDEFGH.tmp',      # not mkstemp's characters
              '.m.json.abcd-123.tmp',
              '.m.json.abcdefghi.tmp',     # nine
              'm.json.abcdefgh.tmp',       # no leading dot
              '.m.json.abcdefgh.tmp.keep',
              '.n.json.abcdefgh.tmp',      # another manifest's
              '.xm.json.abcdefgh.tmp',
              'm.json', 'notes.txt']
    for name in stale + others[:-2] + ['notes.txt']:
        (tmp_path / name).write_bytes(b'x')
    (tmp_path / '.m.json.dirdirdi.tmp').mkdir()               # a folder of the right name stays
    (tmp_path / '.m.json.linklink.tmp').symlink_to('notes.txt')  # so does a link
    assert sorted(remove_stale_temporaries(str(path))) == stale
    assert sorted(os.listdir(str(tmp_path))) == sorted(others + ['.m.json.dirdirdi.tmp', '.m.json.linklink.tmp'])
    assert (tmp_path / 'notes.txt').read_bytes() == b'x'


@needs_locks
def test_a_run_refused_the_lock_touches_nothing(tmp_path: Path) -> None:
    path = tmp_path / 'm.json'
    with ManifestLock(str(path)):
        (tmp_path / '.m.json.abcdefgh.tmp').write_bytes(b'a save in progress')
        with pytest.raises(manifest_module.ManifestError, match='another run'):
            with ManifestLock(str(path)):
                pass
        assert (tmp_path / '.m.json.abcdefgh.tmp').exists()
