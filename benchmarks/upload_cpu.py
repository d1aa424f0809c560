"""CPU seconds of ``upload_bundle`` against bundling to /dev/null, alternating in one process (issue 16).

    python benchmarks/upload_cpu.py SET_DIR [--rounds N] [--ours-root CHECKOUT] [--no-splice]

SET_DIR is a data set's folder (``.bench/data/full/small``). The process lists
it once, starts the ingest stand-in (``servers.py``), then runs N rounds of:
``Bundler(...).stream()`` to ``/dev/null``; ``Uploader.upload_bundle(Bundler(...))``
to the stand-in; ``content_length()`` alone on a fresh Bundler (its caches
cold, as an upload finds them). Each step's wall time, the CPU of this process
and of its collected children (the read-ahead process; and of it the system
time), the CPU of the calling thread alone, and the stand-in's CPU are taken;
medians are printed as JSON. On a shared machine the CPU figures are the ones
to compare: the wall times move with the load. Where the calling thread's CPU
is about the wall time, that thread is the critical path: every piece of work
the upload adds on it (the length, the sends) adds to the wall time, whatever
the other core does.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from small_bundle import file_data_for  # noqa: E402 - the sibling module, importable once HERE is on sys.path


def own_cpu(fields: tuple = ('ru_utime', 'ru_stime')) -> float:
    """CPU seconds (user and system, or ``fields``) of this process and of the children it collected."""
    return sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for field in fields)


def process_cpu(pid: int) -> float:
    """CPU seconds of another process (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open('/proc/{}/stat'.format(pid), encoding='ascii') as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('set_dir')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--ours-root', default=os.path.dirname(HERE))
    parser.add_argument('--no-splice', action='store_true', help="the stand-in reads bodies the plain way")
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.ours_root))
    from pacifica.uploader import Uploader
    from pacifica.uploader.bundler import Bundler
    from pacifica.uploader.metadata import MetaData, MetaObj

    server = subprocess.Popen([sys.executable, os.path.join(HERE, 'servers.py')] + ['--no-splice'] * args.no_splice,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    base = 'http://127.0.0.1:{}'.format(json.loads(server.stdout.readline())['port'])
    file_data = file_data_for(args.set_dir)

    def bundler() -> Bundler:
        return Bundler(MetaData([MetaObj(destinationTable='Transactions._id', value=1)]), file_data)

    def devnull() -> None:
        with open(os.devnull, 'wb') as sink:
            bundler().stream(sink)

    def upload() -> None:
        Uploader(upload_url=base + '/upload', status_url=base + '/get_state').upload_bundle(bundler())

    steps = {'bundle_devnull': devnull, 'upload_bundle': upload, 'content_length': None}
    runs: dict = {name: [] for name in steps}
    try:
        for _ in range(args.rounds):
            for name, step in steps.items():
                fresh = bundler()  # content_length alone: the Bundler is built before the clock
                cpu, system, server_cpu = own_cpu(), own_cpu(('ru_stime',)), process_cpu(server.pid)
                thread = time.thread_time()
                wall = time.perf_counter()
                if step is None:
                    fresh.content_length()
                else:
                    step()
                runs[name].append((time.perf_counter() - wall, own_cpu() - cpu, own_cpu(('ru_stime',)) - system,
                                   time.thread_time() - thread, process_cpu(server.pid) - server_cpu))
    finally:
        server.stdin.close()
        server.wait()
    columns = ('wall', 'cpu', 'of_it_system', 'calling_thread', 'server_cpu')
    print(json.dumps({name: {key: round(statistics.median(run[column] for run in rows), 3)
                             for column, key in enumerate(columns)}
                      for name, rows in runs.items()}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
