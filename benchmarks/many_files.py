"""Memory of one bundle of very many ``path`` entries (issue 16): the library's own, above the caller's list.

    python benchmarks/many_files.py make DIR [--files N]     # N tiny files (default 300,000), made once
    python benchmarks/many_files.py measure DIR [--files N] [--ours-root CHECKOUT] [--reps N]

``measure`` runs three processes, each a child of its own (so that its peak
RSS is its own, see ``worker.measure``): the *floor* imports the library and
builds ``file_data`` (the caller's list); the *bundle* does the same, then
streams ``Bundler(md_obj, file_data)`` to ``/dev/null``; the *digests* process
streams ``Bundler(md_obj, file_data, append_file_objs=False)``, the flow that
keeps only each file's digest. Each figure is the process's peak RSS plus the
peak private memory of its children (the read-ahead process), sampled as the
suite does (``worker.ChildMemory``). The library's own memory is a flow's
peak minus the floor. Each flow also reports what the FileObjs that 0.3.1's
contract leaves in ``md_obj`` hold (the tuples, their names and hex digests,
counted with ``sys.getsizeof``): the caller's once the stream ends, none in
the digest flow.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

FILES = 300000
PER_FOLDER = 1000
#: Issue 16's limit on the library's own memory for FILES path entries (MiB).
OWN_LIMIT_MIB = 64.0
#: The measured flows: 0.3.1's (FileObjs appended to md_obj) and the one that keeps only the digests.
FLOWS = ('bundle', 'digests')


def make(root: str, files: int) -> None:
    """Tiny files (a few bytes each, distinct), a thousand to a folder; nothing is made twice."""
    marker = os.path.join(root, '.complete-{}'.format(files))
    if os.path.exists(marker):
        return
    for number in range(files):
        folder = os.path.join(root, 'd{:04d}'.format(number // PER_FOLDER))
        if number % PER_FOLDER == 0:
            os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, 'f{:07d}.dat'.format(number)), 'wb') as out:
            out.write(str(number).encode('ascii'))
    with open(marker, 'w', encoding='ascii'):
        pass


def file_data_for(root: str, limit: int = FILES) -> list:
    """The caller's list: a ``path`` entry for each of the first ``limit`` files, as a program would list them."""
    entries: list = []
    for folder in sorted(os.listdir(root)):
        directory = os.path.join(root, folder)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory))[:limit - len(entries)]:
            path = os.path.join(directory, name)
            info = os.stat(path)
            entries.append({'name': 'data/{}/{}'.format(folder, name), 'size': info.st_size,
                            'mtime': info.st_mtime, 'path': path})
    return entries


def _file_objs_bytes(file_objs: list) -> int:
    """What the FileObjs 0.3.1 leaves in md_obj hold of their own: the tuples, their unique strs and big ints."""
    def rounded(size: int) -> int:
        return (size + 15) // 16 * 16  # what pymalloc hands out for it
    total = 8 * len(file_objs)  # md_obj's references
    for obj in file_objs:
        total += rounded(sys.getsizeof(obj)) + rounded(sys.getsizeof(obj.name)) + rounded(sys.getsizeof(obj.hashsum))
        if obj.size > 256:
            total += rounded(sys.getsizeof(obj.size))
    return total


def run(mode: str, root: str, limit: int) -> dict:
    """The measured process: the floor, or the floor and the bundle."""
    from worker import ChildMemory

    from pacifica.uploader.bundler import Bundler
    from pacifica.uploader.metadata import MetaData, MetaObj
    file_data = file_data_for(root, limit)
    answer = {'files': len(file_data)}
    if mode != 'floor':
        metadata = MetaData([MetaObj(destinationTable='Transactions._id', value=1)])
        kwargs = {'append_file_objs': False} if mode == 'digests' else {}
        with ChildMemory() as children, open(os.devnull, 'wb') as sink:
            Bundler(metadata, file_data, **kwargs).stream(sink)
        answer['children_private_bytes'] = children.peak
        answer['md_obj_bytes'] = _file_objs_bytes(metadata[1:])
    return answer


def measure(mode: str, root: str, ours_root: str, files: int) -> dict:
    """Run ``mode`` in a child and add its peak RSS (wait4) and its children's peak private memory."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(ours_root), os.path.dirname(__file__)]))
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), '_run', root, '--mode', mode,
                              '--files', str(files)],
                             stdout=subprocess.PIPE, env=env)
    output = child.stdout.read()
    child.stdout.close()
    _pid, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit('the {} process failed'.format(mode))
    answer = json.loads(output)
    answer['peak_bytes'] = usage.ru_maxrss * 1024 + answer.get('children_private_bytes', 0)
    return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=('make', 'measure', '_run'))
    parser.add_argument('root')
    parser.add_argument('--files', type=int, default=FILES)
    parser.add_argument('--reps', type=int, default=1)
    parser.add_argument('--mode', choices=('floor',) + FLOWS, default='bundle')
    parser.add_argument('--ours-root', default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = parser.parse_args()
    if args.command == 'make':
        make(args.root, args.files)
    elif args.command == '_run':
        print(json.dumps(run(args.mode, args.root, args.files)), flush=True)
    else:
        print(json.dumps(many_files(args.root, args.ours_root, args.reps, args.files)))
    return 0


def many_files(root: str, ours_root: str, reps: int = 1, files: int = FILES) -> dict:
    """The floor's peak and, per flow, its peak (MiB, the smallest of ``reps``) and the library's own memory.

    A flow's figures are keyed ``<flow>_...``; the default flow's also without prefix, as before.
    """
    mib = 1024 * 1024
    floor = min(measure('floor', root, ours_root, files)['peak_bytes'] for _ in range(reps))
    figures: dict = {'floor_mib': round(floor / mib, 1)}
    runs: dict = {flow: [] for flow in FLOWS}
    for _ in range(reps):  # the flows alternate
        for flow in FLOWS:
            runs[flow].append(measure(flow, root, ours_root, files))
    for flow in FLOWS:
        best = min(runs[flow], key=lambda answer: answer['peak_bytes'])
        figures['files'] = best['files']
        flow_figures = {'bundle_peak_mib': round(best['peak_bytes'] / mib, 1),
                        'children_mib': round(best['children_private_bytes'] / mib, 1),
                        'own_mib': round((best['peak_bytes'] - floor) / mib, 1),
                        'md_obj_file_objs_mib': round(best['md_obj_bytes'] / mib, 1),
                        'own_without_md_obj_mib': round((best['peak_bytes'] - floor - best['md_obj_bytes']) / mib,
                                                        1)}
        figures.update({flow + '_' + key: value for key, value in flow_figures.items()})
        if flow == 'bundle':
            figures.update(flow_figures)
    return figures


def report(root: str, ours_root: str, markdown: bool = False) -> None:
    """What ``run.py --many-files`` prints: the files made once under ``root``, then one table."""
    make(root, FILES)
    figures = many_files(root, ours_root)
    rows = [('files', '{:,}'.format(figures['files'])),
            ("floor: imports + the caller's list (MiB)", figures['floor_mib'])]
    for flow, title in (('bundle', 'Bundler(md_obj, file_data)'), ('digests', 'append_file_objs=False')):
        rows += [('{}: peak of the bundle to /dev/null, children included (MiB)'.format(title),
                  figures[flow + '_bundle_peak_mib']),
                 ('{}: of it in the read-ahead process (MiB)'.format(title), figures[flow + '_children_mib']),
                 ("{}: the library's own, peak - floor (MiB; limit {:.0f})".format(title, OWN_LIMIT_MIB),
                  figures[flow + '_own_mib']),
                 ("{}: of it md_obj's FileObjs (MiB)".format(title), figures[flow + '_md_obj_file_objs_mib'])]
    print('\n### Many files\n' if markdown else '\n== Many files ==')
    if markdown:
        print('| figure | value |\n|---|---|')
    for title, value in rows:
        print('| {} | {} |'.format(title, value) if markdown else '{:<92} {}'.format(title, value))


if __name__ == '__main__':
    sys.exit(main())
