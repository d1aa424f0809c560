"""Benchmark pacifica-transfer against pacifica-uploader 0.3.1 / pacifica-downloader 0.4.1.

    python benchmarks/run.py [--quick] [--reps N] [--cases ...] [--sets ...] [--markdown]

Every measurement runs in its own ``worker.py`` process (ours with this
interpreter and the repository on ``sys.path``, upstream with the
interpreter of a virtual environment this script creates under ``.bench/``),
so the two libraries never share a process and each case gets its own peak
RSS. Repetitions are interleaved (ours, upstream, limits, then again) so slow
drift of the machine hits both sides alike; the table shows medians. See
``benchmarks/README.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import datasets  # noqa: E402 - the sibling module, importable once HERE is on sys.path
import many_files  # noqa: E402 - likewise

REPO = os.path.dirname(HERE)
WORK = os.path.join(REPO, '.bench')
UPSTREAM_PINS = ['pacifica-uploader==0.3.1', 'pacifica-downloader==0.4.1']
RSS_LIMIT_MIB = 64.0
JOB_TIMEOUT = 900
#: Seconds ext4 without a journal keeps passing over freed inodes (see worker._dispose_tree), plus a margin.
INODE_COOLDOWN = 65
#: When this run's scratch space was last emptied (a file under WORK; its mtime is what counts).
CLEANUP_STAMP = os.path.join(WORK, 'tmp-emptied')

# ---------------------------------------------------------------- what is measured

# (case, side) -> worker job fields. "side" is who runs: ours, an upstream flow, or a limit.
MEASUREMENTS: dict[str, list[tuple[str, dict]]] = {
    'bundle-devnull': [('ours', {'op': 'bundle', 'sink': 'devnull'}),
                       ('upstream', {'op': 'bundle', 'sink': 'devnull'})],
    # The flow the user's document prescribes: file_data entries with open file objects (both sides).
    'bundle-fileobj': [('ours', {'op': 'bundle', 'sink': 'devnull', 'entries': 'fileobj'}),
                       ('upstream', {'op': 'bundle', 'sink': 'devnull'})],
    'bundle-file': [('ours', {'op': 'bundle', 'sink': 'file'}),
                    ('upstream', {'op': 'bundle', 'sink': 'file'})],
    'bundle-http': [('ours', {'op': 'bundle', 'sink': 'http'}),
                    ('upstream', {'op': 'bundle', 'sink': 'http'})],
    'upload': [('ours', {'op': 'upload', 'flow': 'upload_bundle'}),
               ('upstream-tempfile', {'op': 'upload', 'flow': 'tempfile'}),
               ('upstream-cli', {'op': 'upload', 'flow': 'cli'})],
    # The library call alone, clocked like the bundle cases (file_data built before the clock).
    'upload-call': [('ours', {'op': 'upload', 'flow': 'upload_bundle', 'listed': True})],
    'download': [('ours', {'op': 'download'}),
                 ('upstream', {'op': 'download'})],
    'floor-bundle': [('ours', {'op': 'floor', 'inputs': 'file_data'}),
                     ('upstream', {'op': 'floor', 'inputs': 'file_data'})],
    'floor-download': [('ours', {'op': 'floor', 'inputs': 'transinfo'}),
                       ('upstream', {'op': 'floor', 'inputs': 'transinfo'})],
    'limits': [('sha1', {'op': 'sha1'}),
               ('tar-c', {'op': 'tar_create'}),
               ('tar-x', {'op': 'tar_extract'}),
               ('ingest-ceiling', {'op': 'ingest_ceiling'}),
               ('cart-ceiling', {'op': 'cart_ceiling'})],
}

# Rows of the comparison table: title, case, upstream side, the limit ours is held against.
COMPARISONS = [
    ('bundle -> /dev/null', 'bundle-devnull', 'upstream', 'sha1'),
    ('bundle fileobj entries -> /dev/null', 'bundle-fileobj', 'upstream', 'sha1'),
    ('bundle -> file', 'bundle-file', 'upstream', 'sha1'),
    ('upload_bundle call, listing before the clock', 'upload-call', '-', 'ingest-ceiling'),
    ('bundle -> loopback HTTP', 'bundle-http', 'upstream', 'ingest-ceiling'),
    ('upload vs temp-file flow', 'upload', 'upstream-tempfile', 'ingest-ceiling'),
    ('upload vs pacifica-cli flow', 'upload', 'upstream-cli', 'ingest-ceiling'),
    ('download+verify+extract', 'download', 'upstream', 'tar-x'),
]

LIMIT_TITLES = {
    'sha1': 'hashlib.sha1, 1 MiB reads',
    'tar-c': 'tar -cf - DIR | cat',
    'tar-x': 'tar -xf (cart tar)',
    'ingest-ceiling': 'loopback POST, plain sender',
    'cart-ceiling': 'loopback cart GET, plain reader',
}


@dataclass(frozen=True)
class Target:
    """One line of the issue's targets table: ours / reference >= minimum on these sets."""

    title: str
    case: str
    sets: tuple[str, ...]
    reference: str  # an upstream side of the same case, a limit, or "case/side" of another case
    minimum: float


TARGETS = [
    Target('bundle -> /dev/null, x upstream', 'bundle-devnull', ('big', 'mixed'), 'upstream', 1.3),
    Target('bundle -> /dev/null, x sha1 limit', 'bundle-devnull', ('big', 'mixed'), 'sha1', 0.9),
    Target('bundle -> /dev/null, x upstream', 'bundle-devnull', ('small',), 'upstream', 5.0),
    Target('upload_bundle, x temp-file flow', 'upload', ('big',), 'upstream-tempfile', 2.5),
    Target('upload_bundle, x pacifica-cli flow', 'upload', ('big', 'small'), 'upstream-cli', 5.0),
    Target('download+verify+extract, x upstream', 'download', ('big',), 'upstream', 2.0),
    Target('download+verify+extract, x upstream', 'download', ('small',), 'upstream', 1.7),
]

TARGETS_16 = [
    Target('bundle fileobj entries -> /dev/null, x upstream', 'bundle-fileobj', ('small',), 'upstream', 5.0),
    Target('bundle path entries -> /dev/null, x sha1 limit', 'bundle-devnull', ('small',), 'sha1', 0.8),
    Target('download+verify+extract, x tar -x', 'download', ('big',), 'tar-x', 0.6),
    Target('download+verify+extract, x tar -x', 'download', ('small',), 'tar-x', 0.5),
    Target('upload_bundle call, x bundle -> /dev/null', 'upload-call', ('big', 'small'), 'bundle-devnull/ours', 0.9),
]


# ---------------------------------------------------------------- running workers

@dataclass
class Runs:
    """Every repetition of one (case, set, side)."""

    seconds: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    error: str = ''

    def mbps(self, payload: int) -> float | None:
        if self.error or not self.seconds:
            return None
        return payload / statistics.median(self.seconds) / 1e6

    def peak_rss(self) -> float | None:
        return max(self.rss_mib) if self.rss_mib and not self.error else None


def run_worker(python: str, job: dict) -> tuple[dict, float]:
    """Run one job in a fresh process; return its answer and that process's peak RSS in MiB."""
    # Write back what earlier jobs left in the page cache first: otherwise the
    # kernel's writeback of one side's output throttles the next side's run.
    os.sync()
    try:
        done = subprocess.run([python, '-I', os.path.join(HERE, 'worker.py'), 'measure', json.dumps(job)],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=JOB_TIMEOUT + 30, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f'no answer within {JOB_TIMEOUT} s') from None
    if done.returncode != 0:
        lines = done.stderr.decode('utf-8', 'replace').strip().splitlines() or ['(no output)']
        raise RuntimeError(f'exit {done.returncode}: {lines[-1][:300]}')
    answer = json.loads(done.stdout)
    return answer, answer['peak_rss_bytes'] / (1 << 20)


# ---------------------------------------------------------------- environment

def ensure_upstream(python: str | None, log) -> str:
    """An interpreter that imports the pinned upstream packages (made once, then reused)."""
    if python:
        return python
    venv = os.path.join(WORK, 'upstream-venv')
    venv_python = os.path.join(venv, 'bin', 'python')
    marker = os.path.join(venv, 'bench-pins.txt')
    pins = '\n'.join(UPSTREAM_PINS)
    if os.path.exists(marker):
        with open(marker, encoding='utf-8') as handle:
            if handle.read() == pins:
                return venv_python
    log('creating {} with {} ...'.format(venv, ', '.join(UPSTREAM_PINS)))
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, '-m', 'venv', venv], check=True)
    subprocess.run([venv_python, '-m', 'pip', 'install', '-q', *UPSTREAM_PINS], check=True)
    with open(marker, 'w', encoding='utf-8') as handle:
        handle.write(pins)
    return venv_python


def interpreter_prefix(python: str) -> str:
    return subprocess.run([python, '-I', '-c', 'import sys; print(sys.prefix)'],
                          check=True, capture_output=True, text=True).stdout.strip()


class StandIns:
    """The loopback ingest and cart stand-ins, in a process of their own."""

    def __init__(self, cart_tars: dict[str, str]) -> None:
        self._process = subprocess.Popen([sys.executable, os.path.join(HERE, 'servers.py'), json.dumps(cart_tars)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        port = json.loads(self._process.stdout.readline())['port']
        self.base = f'http://127.0.0.1:{port}'
        self.pid = self._process.pid

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait(timeout=30)


def warm_page_cache(paths: dict[str, str]) -> None:
    """Read a set once so the first measured run does not pay for the disk."""
    buffer = bytearray(1 << 20)
    for root, _dirs, files in os.walk(paths['dir']):
        for name in files:
            with open(os.path.join(root, name), 'rb', buffering=0) as handle:
                while handle.readinto(buffer):
                    pass
    with open(paths['cart_tar'], 'rb', buffering=0) as handle:
        while handle.readinto(buffer):
            pass


def machine_facts(upstream_python: str) -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as handle:
            for line in handle:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    load = ', '.join(f'{x:.2f}' for x in os.getloadavg())
    upstream_py = subprocess.run([upstream_python, '-I', '-c', 'import sys; print(sys.version.split()[0])'],
                                 capture_output=True, text=True, check=True).stdout.strip()
    return [
        ('cpu', f'{os.cpu_count()} x {cpu}'),
        ('os', f'{platform.system()} {platform.release()}'),
        ('python', f'ours {platform.python_version()} / upstream {upstream_py}'),
        ('load average at start', load),
    ]


# ---------------------------------------------------------------- reporting

def fmt(value: float | None, digits: int = 0) -> str:
    return '-' if value is None else '{:,.{}f}'.format(value, digits)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def render(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ['| ' + ' | '.join(headers) + ' |', '|' + '|'.join('---' for _ in headers) + '|']
        lines += ['| ' + ' | '.join(cell.replace('|', '\\|') for cell in row) + ' |' for row in rows]
        return '\n'.join(lines)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    # A column of figures is right-aligned so the digits line up; text stays left-aligned.
    numeric_columns = [bool(rows) and all(row[i][:1].isdigit() or row[i] == '-' for row in rows)
                       for i in range(len(headers))]
    out = ['  '.join(h.ljust(w) for h, w in zip(headers, widths)),
           '  '.join('-' * w for w in widths)]
    for row in rows:
        out.append('  '.join(cell.rjust(w) if numeric else cell.ljust(w)
                             for cell, w, numeric in zip(row, widths, numeric_columns)))
    return '\n'.join(out)


class Report:
    """Medians, ratios and the targets, from the collected runs."""

    def __init__(self, runs: dict[tuple[str, str, str], Runs], payloads: dict[str, int]) -> None:
        self.runs = runs
        self.payloads = payloads

    def mbps(self, case: str, set_name: str, side: str) -> float | None:
        found = self.runs.get((case, set_name, side))
        return found.mbps(self.payloads[set_name]) if found else None

    def rss(self, case: str, set_name: str, side: str) -> float | None:
        found = self.runs.get((case, set_name, side))
        return found.peak_rss() if found else None

    def reference(self, case: str, set_name: str, reference: str) -> float | None:
        if reference in LIMIT_TITLES:
            return self.mbps('limits', set_name, reference)
        if '/' in reference:
            other_case, side = reference.split('/')
            return self.mbps(other_case, set_name, side)
        return self.mbps(case, set_name, reference)

    def comparison_rows(self) -> list[list[str]]:
        rows = []
        for title, case, upstream, limit in COMPARISONS:
            for set_name in self.payloads:
                if (case, set_name, 'ours') not in self.runs and (case, set_name, upstream) not in self.runs:
                    continue
                ours = self.mbps(case, set_name, 'ours')
                theirs = self.mbps(case, set_name, upstream)
                limit_mbps = self.mbps('limits', set_name, limit)
                rows.append([
                    title, set_name, fmt(ours), fmt(theirs), fmt(ratio(ours, theirs), 2),
                    fmt(self.rss(case, set_name, 'ours'), 1), fmt(self.rss(case, set_name, upstream), 1),
                    f'{fmt(ratio(ours, limit_mbps), 2)} ({limit})',
                ])
        return rows

    def floor_rows(self) -> list[list[str]]:
        rows = []
        for set_name in self.payloads:
            cells = [fmt(self.rss(case, set_name, side), 1)
                     for case in ('floor-bundle', 'floor-download') for side in ('ours', 'upstream')]
            if any(cell != '-' for cell in cells):
                rows.append([set_name, *cells])
        return rows

    def limit_rows(self) -> list[list[str]]:
        rows = []
        for side, title in LIMIT_TITLES.items():
            for set_name in self.payloads:
                if ('limits', set_name, side) in self.runs:
                    rows.append([title, set_name, fmt(self.mbps('limits', set_name, side)),
                                 fmt(self.rss('limits', set_name, side), 1)])
        return rows

    def target_rows(self, targets: list[Target]) -> tuple[list[list[str]], str]:
        rows, verdicts = [], set()
        for target in targets:
            for set_name in target.sets:
                if set_name not in self.payloads or (target.case, set_name, 'ours') not in self.runs:
                    continue
                ours = self.mbps(target.case, set_name, 'ours')
                limit = self.reference(target.case, set_name, target.reference)
                measured = ratio(ours, limit)
                verdict = 'n/a' if measured is None else ('PASS' if measured >= target.minimum else 'FAIL')
                verdicts.add(verdict)
                limit_text = f'{fmt(limit, 0)} MB/s ({target.reference})'
                rows.append([target.title, set_name, f'{fmt(ours, 0)} MB/s', limit_text, f'>= {target.minimum:.2f}',
                             fmt(measured, 2), verdict])
        ours_rss = [(runs.peak_rss(), case, set_name) for (case, set_name, side), runs in self.runs.items()
                    if side == 'ours' and not case.startswith('floor') and runs.peak_rss() is not None]
        if ours_rss:
            worst, case, set_name = max(ours_rss)
            verdict = 'PASS' if worst <= RSS_LIMIT_MIB else 'FAIL'
            verdicts.add(verdict)
            rows.append(['peak RSS, every case of ours', 'all', f'{worst:.1f} MiB ({case} {set_name})',
                         f'{RSS_LIMIT_MIB:.0f} MiB', f'<= {RSS_LIMIT_MIB:.0f} MiB', f'{worst / RSS_LIMIT_MIB:.2f}',
                         verdict])
        # n/a: a reference was not measured in this run (left out, or it failed).
        overall = 'FAIL' if 'FAIL' in verdicts else ('INCOMPLETE' if 'n/a' in verdicts else 'PASS')
        return rows, overall

    def errors(self) -> list[str]:
        return [f'{case} {set_name} {side}: {runs.error}'
                for (case, set_name, side), runs in self.runs.items() if runs.error]


# ---------------------------------------------------------------- main

def empty_scratch(tmp_dir: str) -> None:
    """Delete the scratch space and note when; the next run waits until the freed inodes are reusable."""
    if os.path.isdir(tmp_dir):
        shutil.rmtree(tmp_dir, ignore_errors=True)
        with open(CLEANUP_STAMP, 'w', encoding='ascii') as stamp:
            stamp.write('the scratch space was emptied at this file\'s mtime\n')


def wait_for_inode_cooldown(log) -> None:
    """Sleep until INODE_COOLDOWN seconds have passed since the scratch space was last emptied."""
    try:
        left = os.path.getmtime(CLEANUP_STAMP) + INODE_COOLDOWN - time.time()
    except OSError:
        return
    if left > 0:
        log(f'waiting {left:.0f} s: files deleted by the last run would slow file creation (worker._dispose_tree)')
        time.sleep(left)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='small data sets and one repetition (for development, not for figures)')
    parser.add_argument('--reps', type=int, help='repetitions per measurement (default 3, --quick 1)')
    parser.add_argument('--cases', default=','.join(MEASUREMENTS),
                        help='comma list of: ' + ', '.join(MEASUREMENTS))
    parser.add_argument('--sets', default='big,small,mixed', help='comma list of: big, small, mixed')
    parser.add_argument('--sides', default='ours,upstream,limits',
                        help='comma list of: ours, upstream, limits (skip one while it is broken)')
    parser.add_argument('--markdown', action='store_true', help='print the tables as Markdown')
    parser.add_argument('--upstream-python', help='use this interpreter for upstream instead of .bench/upstream-venv')
    parser.add_argument('--ours-root', default=REPO,
                        help='checkout whose pacifica package is measured as ours (default: this repository)')
    parser.add_argument('--json', dest='json_out', help='also write every raw run to this file')
    parser.add_argument('--many-files', action='store_true',
                        help='also measure the memory of a bundle of 300,000 files (benchmarks/many_files.py)')
    parser.add_argument('--shards', action='store_true', help='only the sharded-upload figures (shards.py)')
    args = parser.parse_args(argv)
    args.cases = [c for c in args.cases.split(',') if c]
    args.sets = [s for s in args.sets.split(',') if s]
    args.sides = [s for s in args.sides.split(',') if s]
    for name, allowed in (('cases', MEASUREMENTS), ('sets', ('big', 'small', 'mixed')),
                          ('sides', ('ours', 'upstream', 'limits'))):
        unknown = set(getattr(args, name)) - set(allowed)
        if unknown:
            parser.error('unknown {}: {}'.format(name, ', '.join(sorted(unknown))))
    args.reps = args.reps or (1 if args.quick else 3)
    return args


def side_group(case: str, side: str) -> str:
    if case == 'limits':
        return 'limits'
    return 'ours' if side == 'ours' else 'upstream'


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.shards:
        import shards  # the sibling module: 2 workers against 1, read-ahead on and off
        return shards.report(args.reps)
    started = time.time()

    def log(message: str) -> None:
        print('# ' + message, file=sys.stderr, flush=True)

    profile = 'quick' if args.quick else 'full'
    data_root = os.path.join(WORK, 'data', profile)
    tmp_dir = os.path.join(WORK, 'tmp')
    empty_scratch(tmp_dir)  # leftovers of an interrupted run
    os.makedirs(tmp_dir)
    upstream_python = ensure_upstream(args.upstream_python, log)
    sets = datasets.ensure(data_root, profile, args.sets, log=log)
    payloads = {name: datasets.read_header(paths['manifest'])['payload_bytes'] for name, paths in sets.items()}
    for paths in sets.values():
        warm_page_cache(paths)
    wait_for_inode_cooldown(log)

    interpreters = {
        'ours': (sys.executable, [os.path.abspath(args.ours_root)], os.path.abspath(args.ours_root)),
        'upstream': (upstream_python, [], interpreter_prefix(upstream_python)),
        'limits': (sys.executable, [], ''),
    }
    groups = [[(case, set_name, side, fields) for side, fields in MEASUREMENTS[case]
               if side_group(case, side) in args.sides]
              for case in args.cases for set_name in args.sets]
    facts = machine_facts(upstream_python)
    stand_ins = StandIns({name: paths['cart_tar'] for name, paths in sets.items()})
    runs: dict[tuple[str, str, str], Runs] = {}
    try:
        for rep in range(args.reps):
            # Every other repetition runs the sides of a case in the opposite order, so neither side
            # always goes first (the first writer after a deleted 1 GB file pays for the page cache).
            plan = [entry for group in groups for entry in (group if rep % 2 == 0 else reversed(group))]
            for count, (case, set_name, side, fields) in enumerate(plan, start=1):
                key = (case, set_name, side)
                record = runs.setdefault(key, Runs())
                if record.error:
                    continue
                python, sys_path, expect_under = interpreters[side_group(case, side)]
                paths = sets[set_name]
                job = dict(fields, side=side_group(case, side), sys_path=sys_path, expect_under=expect_under,
                           set_dir=paths['dir'], manifest=paths['manifest'], cart_tar=paths['cart_tar'],
                           tmp_dir=tmp_dir, payload_bytes=payloads[set_name], timeout=JOB_TIMEOUT,
                           upload_url=stand_ins.base + '/upload', status_url=stand_ins.base + '/get_state',
                           cart_api_url=f'{stand_ins.base}/{set_name}')
                log(f'rep {rep + 1}/{args.reps} [{count}/{len(plan)}] {case} {set_name} {side}')
                try:
                    answer, rss = run_worker(python, job)
                except (RuntimeError, ValueError) as problem:
                    record.error = str(problem)
                    log(f'  FAILED: {problem}')
                    continue
                record.seconds.append(answer['seconds'])
                record.rss_mib.append(rss)
                log('  {:.2f} s, {:.0f} MB/s, peak RSS {:.1f} MiB, CPU {:.2f} s'.format(
                    answer['seconds'], payloads[set_name] / answer['seconds'] / 1e6, rss, answer['cpu_seconds']))
    finally:
        stand_ins.close()
        empty_scratch(tmp_dir)

    report = Report(runs, payloads)
    print_report(report, args, facts, payloads, time.time() - started)
    if args.many_files:
        many_files.report(os.path.join(WORK, 'many-files'), args.ours_root, args.markdown)
    if args.json_out:
        with open(args.json_out, 'w', encoding='utf-8') as handle:
            json.dump({'facts': facts, 'payload_bytes': payloads,
                       'runs': [{'case': c, 'set': s, 'side': d, 'seconds': r.seconds, 'rss_mib': r.rss_mib,
                                 'error': r.error} for (c, s, d), r in runs.items()]}, handle, indent=1)
    return 0 if not report.errors() else 1


def print_report(report: Report, args: argparse.Namespace, facts, payloads: dict[str, int], elapsed: float) -> None:
    markdown = args.markdown
    sizes = ', '.join(f'{name} {size / 1e6:,.0f} MB' for name, size in payloads.items())
    heading = (lambda text: '\n### ' + text + '\n') if markdown else (lambda text: '\n== ' + text + ' ==')
    print(heading('Machine'))
    print(render(['fact', 'value'], [list(f) for f in facts] + [
        ['data', '{} profile: {}'.format('quick' if args.quick else 'full', sizes)],
        ['repetitions', f'{args.reps} (median shown; RSS is the highest of them)'],
        ['wall time of this run', f'{elapsed:.0f} s'],
    ], markdown))
    print(heading('Ours vs upstream (MB/s of file data, 1 MB = 10^6 bytes; RSS in MiB)'))
    print(render(['case', 'set', 'ours MB/s', 'upstream MB/s', 'ours/upstream', 'ours RSS', 'upstream RSS',
                  'ours/limit'], report.comparison_rows(), markdown))
    limit_rows = report.limit_rows()
    if limit_rows:
        print(heading('Machine limits (same data, same run)'))
        print(render(['limit', 'set', 'MB/s', 'peak RSS'], limit_rows, markdown))
    floor_rows = report.floor_rows()
    if floor_rows:
        print(heading('RSS floor: imports + the caller\'s input, before any library call (MiB)'))
        print(render(['set', 'file_data: ours', 'upstream', 'transinfo: ours', 'upstream'], floor_rows, markdown))
    for issue, targets in (('issue 5', TARGETS), ('issue 16', TARGETS_16)):
        target_rows, overall = report.target_rows(targets)
        if target_rows:
            print(heading('Targets ({}){}'.format(issue, ' - quick data, indicative only' if args.quick else '')))
            print(render(['target', 'set', 'ours', 'limit', 'required', 'ours/limit', 'verdict'], target_rows,
                         markdown))
            print(f'\nall targets of {issue}: {overall}')
    problems = report.errors()
    if problems:
        print(heading('Failed measurements'))
        for line in problems:
            print(('- ' if markdown else '') + line)


if __name__ == '__main__':
    sys.exit(main())
