"""One bundle of many small files to /dev/null, as a whole process: the A/B probe for bundler tricks.

    python benchmarks/small_bundle.py make DIR            # 20,000 files of 4 KiB in 200 folders
    python benchmarks/small_bundle.py bundle DIR [--read-ahead on|off|auto] [--ours-root CHECKOUT] [--print-seconds]

Time the ``bundle`` command from outside (``/usr/bin/time -v``, or any tool
that runs it several times and takes the median); ``make`` once before. The
process lists DIR, builds ``file_data`` with ``path`` entries and streams the
bundle to ``/dev/null``: start-up and listing are in the figure, the same for
both sides of an A/B.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

FILES = 20000
FOLDERS = 200
SIZE = 4096


def make(root: str) -> None:
    """Write the files (fixed content per file, so every run hashes the same bytes)."""
    for number in range(FILES):
        folder = os.path.join(root, 'd{:03d}'.format(number % FOLDERS))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, 'f{:05d}.bin'.format(number)), 'wb') as out:
            out.write(number.to_bytes(4, 'little') * (SIZE // 4))


def file_data_for(root: str) -> list:
    """``path`` entries for every file under ``root``, as a program would list them."""
    entries = []
    for folder, _, names in os.walk(root):
        for name in sorted(names):
            path = os.path.join(folder, name)
            info = os.stat(path)
            entries.append({'name': 'data/' + os.path.relpath(path, root).replace(os.sep, '/'),
                            'size': info.st_size, 'mtime': info.st_mtime, 'path': path})
    return entries


def bundle(root: str, read_ahead: str, print_seconds: bool = False) -> None:
    """List ``root`` and bundle it to /dev/null; with ``print_seconds``, print how long the library call took."""
    from pacifica.uploader.bundler import Bundler
    from pacifica.uploader.metadata import MetaData, MetaObj
    file_data = file_data_for(root)
    metadata = MetaData([MetaObj(destinationTable='Transactions._id', value=1)])
    kwargs = {}
    if read_ahead != 'auto':
        from pacifica._client.config import TransferConfig
        kwargs['config'] = TransferConfig(read_ahead=read_ahead == 'on')
    with open(os.devnull, 'wb') as sink:
        start = time.perf_counter()
        Bundler(metadata, file_data, **kwargs).stream(sink)
        if print_seconds:
            print('{:.3f}'.format(time.perf_counter() - start))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=('make', 'bundle'))
    parser.add_argument('root')
    parser.add_argument('--read-ahead', choices=('on', 'off', 'auto'), default='auto')
    parser.add_argument('--ours-root', help='import pacifica from this checkout (an A/B of two versions)')
    parser.add_argument('--show', action='store_true', help='print where pacifica.uploader was imported from')
    parser.add_argument('--print-seconds', action='store_true', help='print the seconds of the library call alone')
    args = parser.parse_args()
    if args.ours_root:
        sys.path.insert(0, os.path.abspath(args.ours_root))
    if args.show:
        import pacifica.uploader
        print(pacifica.uploader.__file__)
    if args.command == 'make':
        make(args.root)
    else:
        bundle(args.root, args.read_ahead, args.print_seconds)
    return 0


if __name__ == '__main__':
    sys.exit(main())
