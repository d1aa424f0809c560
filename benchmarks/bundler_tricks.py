"""Each speed trick of the bundler against the plain way it replaces, on 20,000 small-file records.

    python benchmarks/bundler_tricks.py [--reps 7]

Prints the median seconds of both ways per trick; ``benchmarks/README.md``
holds the figures that keep each trick in the code. In-process timings of one
step each: the whole-process view of a bundle is ``small_bundle.py``.
"""
from __future__ import annotations

import argparse
import io
import mimetypes
import os
import statistics
import sys
import tarfile
import time
from typing import Callable, Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pacifica.uploader.bundler import Bundler, metadatatext, tarformat  # noqa: E402
from pacifica.uploader.metadata import MetaData, MetaObj, metadata_encode  # noqa: E402

FILES = 20000
MTIME = 1700000000.0


def _records() -> List[dict]:
    """Records like a listing of the benchmark's small set: float mtimes that differ per file."""
    return [{'name': 'data/small/d{:03d}/e{:02d}/f{:05d}.bin'.format(number % 200, number % 7, number), 'size': 4096,
             'mtime': MTIME + number * 0.000123, 'fileobj': io.BytesIO()} for number in range(FILES)]


def _median(work: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _plain_header(record: dict) -> bytes:
    info = tarfile.TarInfo(record['name'])
    info.size, info.mtime = record['size'], record['mtime']
    return info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')


def _plain_file_info(bundler: Bundler, record: dict, hashsum: str) -> object:
    """_build_file_info without its caches (ISO time, subdir, mime type by extension)."""
    import datetime
    name = record['name']
    slash = name.rfind('/')
    text = (datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=int(record['mtime']))).isoformat()
    from pacifica.uploader.metadata import FileObj
    return FileObj('Files', name[slash + 1:], None, bundler._strip_subdir(name[:slash]), record['size'], 'sha1',
                   hashsum, mimetypes.guess_type(name, strict=True)[0] or 'application/octet-stream', text, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reps', type=int, default=7)
    reps = parser.parse_args().reps
    records = _records()
    metadata = MetaData([MetaObj(destinationTable='Transactions._id', value=1)])
    figures: Dict[str, tuple] = {}
    figures['tar headers (tarformat fast path vs TarInfo.tobuf)'] = (
        _median(lambda: [tarformat.member_header(r['name'], r['size'], r['mtime']) for r in records], reps),
        _median(lambda: [_plain_header(r) for r in records], reps))
    bundler = Bundler(metadata, records[:1])
    infos = [bundler._build_file_info(record, 'ab' * 20) for record in records]

    def cached() -> None:
        fresh = Bundler(metadata, records[:1])
        for record in records:
            fresh._build_file_info(record, 'ab' * 20)
    figures['FileObjs (ISO time, subdir, mime type caches vs none)'] = (
        _median(cached, reps), _median(lambda: [_plain_file_info(bundler, r, 'ab' * 20) for r in records], reps))
    figures['metadata.txt (file-record template vs metadata_encode)'] = (
        _median(lambda: metadatatext.metadata_text(list(metadata), infos), reps),
        _median(lambda: metadata_encode(MetaData(list(metadata) + infos)), reps))
    width = max(map(len, figures))
    print('{:{}}  {:>9}  {:>9}  {:>6}'.format('trick, {} records'.format(FILES), width, 'trick s', 'plain s', 'x'))
    for label, (trick, plain) in figures.items():
        print('{:{}}  {:9.3f}  {:9.3f}  {:6.1f}'.format(label, width, trick, plain, plain / trick))
    return 0


if __name__ == '__main__':
    sys.exit(main())
