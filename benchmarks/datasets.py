"""The benchmark data sets: made once from a fixed seed, then reused.

Each set lives in ``<root>/<set>/`` with every file under a top folder named
after the set (so every archive path has a subdirectory, as real uploads do).
Beside it: ``<set>.manifest.jsonl`` (a header line, then one line per file:
relative path, size, sha1; the downloader needs the hashes, and one line per
file lets a worker read it without holding all of it) and ``<set>.cart.tar``, the tar a cartd
would stream for that set (members ``data/<relative path>``, directories
included, built the way cartd builds its carts).

A set is regenerated only when its manifest is missing or was made with
other parameters, so interrupted generation never passes for a finished one:
the manifest is written last.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tarfile
from dataclasses import asdict, dataclass

SEED = 20240605
FIXED_MTIME = 1_600_000_000
WRITE_CHUNK = 8 << 20
FORMAT_VERSION = 2


@dataclass(frozen=True)
class SetSpec:
    """How to make one data set."""

    name: str
    files: int
    min_size: int
    max_size: int
    fan_out: int = 0  # files per leaf folder when nested; 0 = all in one folder

    def sizes(self, rng: random.Random) -> list[int]:
        """File sizes: fixed when min == max, else log-uniform between them."""
        if self.min_size == self.max_size:
            return [self.min_size] * self.files
        low, high = math.log(self.min_size), math.log(self.max_size)
        return [int(math.exp(rng.uniform(low, high))) for _ in range(self.files)]

    def relpath(self, index: int) -> str:
        """Archive-relative path of file ``index``, always with a subdirectory."""
        if self.fan_out:
            leaf = index // self.fan_out
            return f'{self.name}/d{leaf // 10:03d}/e{leaf % 10:02d}/f{index:05d}.bin'
        suffix = ('.dat', '.txt', '.h5', '.csv', '.bin')[index % 5]
        return f'{self.name}/g{index % 10}/file{index:05d}{suffix}'


MIB = 1 << 20
PROFILES: dict[str, dict[str, SetSpec]] = {
    'full': {
        'big': SetSpec('big', 4, 256 * MIB, 256 * MIB),
        'small': SetSpec('small', 20_000, 4096, 4096, fan_out=100),
        'mixed': SetSpec('mixed', 1_000, 1024, 16 * MIB),
    },
    'quick': {
        'big': SetSpec('big', 4, 16 * MIB, 16 * MIB),
        'small': SetSpec('small', 2_000, 4096, 4096, fan_out=100),
        'mixed': SetSpec('mixed', 100, 1024, 1 * MIB),
    },
}


def set_paths(root: str, name: str) -> dict[str, str]:
    """Where the files, manifest and cart tar of a set live."""
    return {
        'dir': os.path.join(root, name),
        'manifest': os.path.join(root, name + '.manifest.jsonl'),
        'cart_tar': os.path.join(root, name + '.cart.tar'),
    }


def _is_current(paths: dict[str, str], spec: SetSpec) -> bool:
    try:
        head = read_header(paths['manifest'])
    except (OSError, ValueError):
        return False
    return (
        head.get('version') == FORMAT_VERSION
        and head.get('seed') == SEED
        and head.get('spec') == asdict(spec)
        and os.path.isfile(paths['cart_tar'])
        and os.path.isdir(paths['dir'])
    )


def _write_random_file(path: str, size: int, rng: random.Random) -> str:
    digest = hashlib.sha1()
    with open(path, 'wb') as out:
        left = size
        while left:
            block = rng.randbytes(min(WRITE_CHUNK, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    return digest.hexdigest()


def _build_cart_tar(set_dir: str, tar_path: str) -> None:
    partial = tar_path + '.partial'
    with tarfile.open(partial, 'w') as tar:
        for top in sorted(os.listdir(set_dir)):
            tar.add(os.path.join(set_dir, top), arcname='data/' + top)
    os.replace(partial, tar_path)


def ensure(root: str, profile: str, names: list[str], log=print) -> dict[str, dict[str, str]]:
    """Make every requested set of ``profile`` under ``root`` unless it is already there."""
    result = {}
    for name in names:
        spec = PROFILES[profile][name]
        paths = set_paths(root, name)
        result[name] = paths
        if _is_current(paths, spec):
            continue
        log(f'generating data set {name} ({profile} profile) ...')
        for stale in (paths['manifest'], paths['cart_tar']):
            if os.path.exists(stale):
                os.unlink(stale)
        shutil.rmtree(paths['dir'], ignore_errors=True)
        rng = random.Random(f'{SEED}:{name}')
        entries = []
        for index, size in enumerate(spec.sizes(rng)):
            rel = spec.relpath(index)
            full = os.path.join(paths['dir'], *rel.split('/'))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            entries.append([rel, size, _write_random_file(full, size, rng)])
        _build_cart_tar(paths['dir'], paths['cart_tar'])
        header = {'version': FORMAT_VERSION, 'seed': SEED, 'spec': asdict(spec), 'files': len(entries),
                  'payload_bytes': sum(size for _rel, size, _sha in entries)}
        partial = paths['manifest'] + '.partial'
        with open(partial, 'w', encoding='utf-8') as handle:
            handle.write(json.dumps(header) + '\n')
            for entry in entries:
                handle.write(json.dumps(entry) + '\n')
        os.replace(partial, paths['manifest'])
    return result


def read_header(manifest_path: str) -> dict:
    """The first line of a manifest: how the set was made, its file count and payload bytes."""
    with open(manifest_path, encoding='utf-8') as handle:
        return json.loads(handle.readline())
