"""The small set (20,000 files of 4 KiB) uploaded in shards: 2 workers against 1, read-ahead on and off.

    python benchmarks/run.py --shards [--reps 3]         (the same with the defaults)
    python benchmarks/shards.py [--dir DIR] [--reps 3] [--shards 8] [--workers 1 2] [--read-ahead auto on off]
    python benchmarks/shards.py measure DIR URL WORKERS READ_AHEAD SHARDS warm|cold   (one timed run)

Each run is a process of its own that lists the set, plans it into SHARDS
shards of equal file counts, and uploads them with ``upload_dataset`` on its
process pool of WORKERS processes to the loopback ingest stand-in
(``servers.py``), following every job and checking each shard's transaction
on the stand-in's metadata tables: the call is the figure. ``cold``:
upload_dataset starts its own pool (start-up included); ``warm``: a pool
started before the clock (the steady state of a long upload). READ_AHEAD is the shard workers' ``TransferConfig``
read-ahead setting (``auto``: the library's default, which leaves it off
when the shards fill the cores). The runs of every
configuration alternate, repetition by repetition, so a machine that grows
busier hits them alike; the table shows medians and the ratios to one
worker. Before and after them, the machine's own ceiling for that ratio:
two processes of a CPU-bound task (sha1 over memory, and plain Python) at
once against one alone. See ``benchmarks/README.md`` ("Sharded uploads").
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import small_bundle  # noqa: E402 - the sibling module, importable once HERE is on sys.path

DEFAULT_DIR = os.path.join(REPO, '.bench', 'shards-small')
PAYLOAD = small_bundle.FILES * small_bundle.SIZE


def _started(pause: float) -> int:
    """A pool task that holds its process a moment, so that every process of the pool starts."""
    import pacifica.uploader.dataset.worker  # noqa: F401 - what a shard imports, imported before the clock starts
    time.sleep(pause)
    return os.getpid()


def warm_pool(workers: int) -> Any:
    """A spawn process pool like upload_dataset's default, every process started and the library imported."""
    import concurrent.futures as cf
    import multiprocessing
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context('spawn'))
    started = {future.result() for future in [pool.submit(_started, 0.5) for _ in range(workers)]}
    if len(started) != workers:
        raise RuntimeError('{} of {} pool processes started'.format(len(started), workers))
    return pool


def cpu_seconds(pids: Any = ()) -> float:
    """CPU seconds (user and system) of this process, its children that ended, and the live processes ``pids``."""
    own = os.times()
    total = own.user + own.system + own.children_user + own.children_system
    ticks = os.sysconf('SC_CLK_TCK')
    for pid in pids:
        with open('/proc/{}/stat'.format(pid), encoding='ascii') as stat:  # Linux: fields 14, 15 after the name
            fields = stat.read().rpartition(')')[2].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def measure(root: str, url: str, workers: int, read_ahead: str, shards: int, warm: bool = False) -> tuple:
    """One sharded upload of ``root`` to the stand-in at ``url``; the seconds of the call and its CPU seconds.

    The CPU seconds are those of every process of the run (coordinator and
    workers, not the stand-in) spent while the clock ran.

    ``warm``: on a pool started before the clock starts (the steady state of a
    long upload), else on upload_dataset's own pool (its start-up included).
    """
    sys.path.insert(0, REPO)
    from pacifica._client.config import TransferConfig
    from pacifica.uploader import upload_dataset
    from pacifica.uploader.metadata import MetaData, MetaObj

    metadata = MetaData([MetaObj(destinationTable='Transactions._id', value=1)])
    bundler_kwargs = {} if read_ahead == 'auto' else {'config': TransferConfig(read_ahead=read_ahead == 'on')}
    uploader_kwargs = {'upload_url': url + '/upload', 'status_url': url + '/get_state',
                       'config': TransferConfig(poll_interval=0.05)}
    pool = warm_pool(workers) if warm else None
    pids = list(pool._processes) if pool is not None else []  # noqa: SLF001 - the warm pool's live processes
    with tempfile.TemporaryDirectory() as scratch:
        cpu = cpu_seconds(pids)
        start = time.perf_counter()
        report = upload_dataset(root, metadata, os.path.join(scratch, 'manifest.json'),
                                max_files=-(-small_bundle.FILES // shards), workers=workers, executor=pool,
                                uploader_kwargs=uploader_kwargs, bundler_kwargs=bundler_kwargs, metadata_url=url)
        seconds = time.perf_counter() - start
        cpu = cpu_seconds(pids) - cpu
    if pool is not None:
        pool.shutdown()
    if not report.complete or report.parts != shards:
        raise RuntimeError('the upload did not complete: {}'.format(report))
    return seconds, cpu


def timed_run(root: str, url: str, workers: int, read_ahead: str, shards: int, warm: bool) -> tuple:
    """:func:`measure` in a fresh process (nothing cached from the previous run): seconds, CPU seconds."""
    done = subprocess.run([sys.executable, os.path.abspath(__file__), 'measure', root, url, str(workers), read_ahead,
                           str(shards), 'warm' if warm else 'cold'], capture_output=True, text=True, check=False,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError('measure failed: {}'.format((done.stderr.strip().splitlines() or ['?'])[-1]))
    seconds, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(seconds), float(cpu)


def compare(root: str, url: str, workers: list, read_aheads: list, pools: list, shards: int, reps: int,
            log=print) -> dict:
    """Alternating runs of every (pool, workers, read-ahead); (seconds, CPU seconds) of each, by configuration."""
    configs = list(itertools.product(pools, workers, read_aheads))
    runs: dict = {config: [] for config in configs}
    for rep in range(reps):
        for config in configs:
            pool, count, read_ahead = config
            runs[config].append(timed_run(root, url, count, read_ahead, shards, pool == 'warm'))
            log('rep {} pool={} workers={} read-ahead={}: {:.2f} s, {:.2f} CPU s'.format(rep + 1, *config,
                                                                                         *runs[config][-1]))
    return runs


def _cpu_bound(kind: str) -> float:
    """Seconds of a fixed CPU-bound task in this process: ``sha1`` over a buffer in memory, or ``python``
    (dict stores and str formatting, the interpreter's own work)."""
    start = time.perf_counter()
    if kind == 'sha1':
        import hashlib
        buffer = b'\x5a' * (8 << 20)
        for _ in range(40):
            hashlib.sha1(buffer).digest()
    else:
        counts: dict = {}
        for number in range(2_000_000):
            counts[number & 1023] = str(number)
    return time.perf_counter() - start


def scaling_limit(reps: int, log=print) -> dict:
    """The machine's own limit for 2 workers against 1: how much more two processes of a CPU-bound task get
    done at once than one alone (2.0 on two free cores), alternating, medians by kind."""
    import concurrent.futures as cf
    import multiprocessing
    found: dict = {'sha1': [], 'python': []}
    with cf.ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context('spawn')) as pool:
        list(pool.map(_cpu_bound, ['python', 'python']))  # both processes started and warm
        for _ in range(reps):
            for kind in found:
                alone = pool.submit(_cpu_bound, kind).result()
                both = list(pool.map(_cpu_bound, [kind, kind]))
                found[kind].append(2 * alone / max(both))
                log('scaling limit {}: one alone {:.3f} s, two at once {:.3f} / {:.3f} s: {:.2f}x'.format(
                    kind, alone, both[0], both[1], found[kind][-1]))
    return {kind: statistics.median(ratios) for kind, ratios in found.items()}


def limit_lines(limits: dict) -> str:
    return '\n'.join('The machine in the same run: two CPU-bound processes ({}) at once get {:.2f}x of one '
                      'alone done (median).'.format(kind, ratio) for kind, ratio in limits.items())


def table(runs: dict) -> str:
    """Markdown: median seconds, median CPU seconds, MB/s of file data, and the ratios to one worker with
    read-ahead as the library sets it (``auto``) and with the same setting."""
    lines = ['| pool | workers | read-ahead | median s | median CPU s | MB/s | x 1 worker, auto | x 1 worker, same |',
             '|---|---|---|---|---|---|---|---|']
    seconds = {config: [wall for wall, _ in measured] for config, measured in runs.items()}
    for (pool, workers, read_ahead), walls in sorted(seconds.items()):
        median = statistics.median(walls)
        cpu = statistics.median(used for _, used in runs[(pool, workers, read_ahead)])
        ratios = []
        for base in (seconds.get((pool, 1, 'auto')), seconds.get((pool, 1, read_ahead))):
            ratios.append('{:.2f}'.format(statistics.median(base) / median) if base else '-')
        lines.append('| {} | {} | {} | {:.2f} | {:.2f} | {:.1f} | {} | {} |'.format(
            pool, workers, read_ahead, median, cpu, PAYLOAD / median / 1e6, *ratios))
    return '\n'.join(lines)


def run(root: str, workers: list, read_aheads: list, pools: list, shards: int, reps: int, log=print) -> dict:
    """Make the set when missing, start the stand-in, compare; (seconds, CPU seconds) by configuration."""
    if not os.path.isdir(root):
        log('writing the small set to {} ...'.format(root))
        small_bundle.make(root)
    from run import StandIns  # the loopback ingest stand-in (servers.py) in a process of its own
    stand_in = StandIns({})
    try:
        return compare(root, stand_in.base, workers, read_aheads, pools, shards, reps, log)
    finally:
        stand_in.close()


def run_with_limits(root: str, workers: list, read_aheads: list, pools: list, shards: int, reps: int,
                    log=print) -> str:
    """The table of :func:`run`, with the machine's scaling limit measured before and after it (both halves'
    ratios pooled): the ceiling of the 2-worker ratio on this machine."""
    before = scaling_limit(max(1, reps // 2), log)
    runs = run(root, workers, read_aheads, pools, shards, reps, log)
    after = scaling_limit(max(1, reps // 2), log)
    return table(runs) + '\n\n' + limit_lines({kind: (before[kind] + after[kind]) / 2 for kind in before})


def report(reps: int, log=lambda text: print(text, file=sys.stderr)) -> int:
    """Every configuration with the defaults, ``reps`` times, as a Markdown table (``run.py --shards``)."""
    print(run_with_limits(DEFAULT_DIR, [1, 2], ['auto', 'on', 'off'], ['warm', 'cold'], 8, reps, log))
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == 'measure':
        root, url, workers, read_ahead, shards, pool = sys.argv[2:8]
        print('{:.4f} {:.4f}'.format(*measure(root, url, int(workers), read_ahead, int(shards), pool == 'warm')))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dir', default=DEFAULT_DIR, help='where the small set is (written when missing)')
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--shards', type=int, default=8)
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--read-ahead', nargs='+', choices=('auto', 'on', 'off'),
                        default=['auto', 'on', 'off'])
    parser.add_argument('--pool', nargs='+', choices=('warm', 'cold'), default=['warm', 'cold'],
                        help='warm: the pool started before the clock; cold: upload_dataset starts its own')
    args = parser.parse_args()
    print(run_with_limits(args.dir, args.workers, args.read_ahead, args.pool, args.shards, args.reps,
                          log=lambda text: print(text, file=sys.stderr)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
