"""Memory of a sharded upload of very many ``path`` entries (issue 15, item 7), to the loopback stand-ins.

    python benchmarks/many_files.py make DIR                  # the files, once (300,000 tiny ones)
    python benchmarks/many_shards.py DIR [--entries 1000000] [--max-files 10000] [--workers 2]

The dataset is a stream of ``--entries`` entries with names of their own,
whose ``path`` cycles over the files under DIR (so that a million entries
need no million files): the coordinator never holds a list of them, as with
``DatasetSource.from_root``; every shard's transaction is checked after
ingest on the stand-in's metadata tables (``servers.py``), as
``upload_dataset`` does by default. The coordinating process runs in a child of its
own (its own ``VmHWM``: ``wait4`` would give the largest of it and its
workers); each worker of its process pool is sampled
every 20 ms for its ``VmHWM`` (a spawned process starts its own high-water
mark), plus the private memory of the worker's own children (the read-ahead
process), as the suite counts it. Prints one JSON line, figures in MiB.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _entries(root: str, files: int, count: int):
    """``count`` entries over the ``files`` files many_files.py made (their paths follow from their numbers)."""
    for number in range(count):
        file_number = number % files
        path = os.path.join(root, 'd{:04d}'.format(file_number // 1000), 'f{:07d}.dat'.format(file_number))
        info = os.stat(path)
        yield {'name': 'data/p{:04d}/e{:07d}.dat'.format(number // 1000, number), 'size': info.st_size,
               'mtime': info.st_mtime, 'path': path}


def _status_field(pid: str, field: str) -> int:
    try:
        with open('/proc/{}/status'.format(pid), encoding='ascii') as handle:
            for line in handle:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: str) -> list:
    found = []
    try:
        for task in os.listdir('/proc/{}/task'.format(pid)):
            with open('/proc/{}/task/{}/children'.format(pid, task), encoding='ascii') as handle:
                found.extend(handle.read().split())
    except OSError:
        pass
    return found


def _command(pid: str) -> bytes:
    try:
        with open('/proc/{}/cmdline'.format(pid), 'rb') as handle:
            return handle.read()
    except OSError:
        return b''


def _running_children(pid: str) -> list:
    """Children that run a program of their own: between vfork and exec a child still shows its parent's memory."""
    own = _command(pid)
    return [child for child in _children(pid) if _command(child) != own]


def _private(pid: str) -> int:
    try:
        with open('/proc/{}/smaps_rollup'.format(pid), encoding='ascii') as handle:
            return sum(int(line.split()[1]) * 1024 for line in handle if line.startswith('Private_'))
    except (OSError, ValueError, IndexError):
        return 0


class WorkerPeaks:
    """Each child process's peak: its VmHWM plus the peak private memory of its own children."""

    def __init__(self) -> None:
        self.peaks: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> 'WorkerPeaks':
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        own = str(os.getpid())
        while not self._stop.wait(0.02):
            for pid in _children(own):
                hwm = _status_field(pid, 'VmHWM')
                extra = sum(map(_private, _running_children(pid)))
                old_hwm, old_extra = self.peaks.get(pid, (0, 0))
                self.peaks[pid] = (max(old_hwm, hwm), max(old_extra, extra))


def coordinate(root: str, files: int, entries: int, max_files: int, workers: int, port: int) -> dict:
    """The measured process: plan and upload the dataset, sampling the pool's workers."""
    from pacifica.uploader.dataset import DatasetSource, upload_dataset
    from pacifica.uploader.metadata import MetaData, MetaObj
    base = 'http://127.0.0.1:{}'.format(port)
    source = DatasetSource(lambda: _entries(root, files, entries), '{} entries'.format(entries))
    with tempfile.TemporaryDirectory() as scratch, WorkerPeaks() as peaks:
        start = time.perf_counter()
        report = upload_dataset(source, MetaData([MetaObj(destinationTable='Transactions._id', value=1)]),
                                os.path.join(scratch, 'manifest.json'), max_files=max_files, workers=workers,
                                uploader_kwargs={'upload_url': base + '/upload', 'status_url': base + '/get_state'},
                                metadata_url=base)
        seconds = time.perf_counter() - start
    if not report.complete:
        raise SystemExit('the upload did not complete: {}'.format(report))
    mib = 1024 * 1024
    return {'entries': entries, 'parts': report.parts, 'seconds': round(seconds, 1),
            'coordinator_peak_mib': round(_status_field('self', 'VmHWM') / mib, 1),
            'worker_peaks_mib': sorted(round(sum(peak) / mib, 1) for peak in peaks.peaks.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root')
    parser.add_argument('--entries', type=int, default=1000000)
    parser.add_argument('--files', type=int, default=300000, help='the files many_files.py made under ROOT')
    parser.add_argument('--max-files', type=int, default=10000)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--port', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--ours-root', default=os.path.dirname(HERE))
    args = parser.parse_args()
    if args.port:
        answer = coordinate(args.root, args.files, args.entries, args.max_files, args.workers, args.port)
        print(json.dumps(answer), flush=True)
        return 0
    server = subprocess.Popen([sys.executable, os.path.join(HERE, 'servers.py')], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        port = json.loads(server.stdout.readline())['port']
        env = dict(os.environ, PYTHONPATH=os.path.abspath(args.ours_root))
        command = [sys.executable, os.path.abspath(__file__), args.root, '--entries', str(args.entries),
                   '--files', str(args.files), '--max-files', str(args.max_files), '--workers', str(args.workers),
                   '--port', str(port)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
        output = child.stdout.read()
        child.stdout.close()
        if child.wait() != 0:
            raise SystemExit('the coordinating process failed')
    finally:
        server.stdin.close()
        server.wait()
    print(output.decode('ascii').strip())
    return 0


if __name__ == '__main__':
    sys.exit(main())
