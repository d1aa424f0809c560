"""Run exactly one benchmark measurement in this process and print the result as JSON.

``run.py`` starts this script once per measurement, with the interpreter of
the side being measured (ours, the upstream virtual environment, or the plain
interpreter for the hardware limits) and ``-I`` so nothing but the job's own
``sys_path`` decides which ``pacifica`` gets imported. One process per
measurement keeps the two libraries apart and makes the peak RSS that
``run.py`` reads from ``wait4`` belong to this one case.

Modes: ``measure JOB`` (what run.py calls), which starts ``run JOB`` (the
measured process) and afterwards checks its work; ``promise JOB`` asks our
Bundler for ``content_length()`` in a process of its own. The answer is one
JSON line on stdout: ``seconds`` (the timed part only: building the file list,
the library calls, closing the sink), ``stream_bytes`` (what reached the sink,
when it can be known), ``module`` (where the library was imported from) and
``peak_rss_bytes``. The checks that the work was really done (byte counts,
extracted files) run in the measuring process after the measured one has
exited, so their memory is not charged to the library, and they fail the job
loudly.

This file must run unchanged under Python 3.9+ with nothing but the library
being measured (and its ``requests``) importable.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from copy import deepcopy
from urllib.parse import urlsplit

BLOCK = 1 << 20

# ---------------------------------------------------------------- helpers


class JobFailed(RuntimeError):
    """The measured run did not do the whole job; the number must not be used."""


def list_files(set_dir: str) -> Iterator[tuple[str, str, int, float]]:
    """(archive-relative path, full path, size, mtime) of every file, in a stable order."""
    cut = len(set_dir) + 1
    for root, dirs, files in os.walk(set_dir):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            info = os.stat(full)
            yield full[cut:].replace(os.sep, '/'), full, info.st_size, info.st_mtime


class OpenOnFirstRead:
    """A file object that opens its file on the first read and closes it after the last byte.

    Callers open every file before bundling (the ``fileobj`` entries the
    user's document prescribes); with 20,000 files that exceeds this machine's
    descriptor limit, so both sides of the ``fileobj`` cases get these
    instead. The extra cost is one Python call per read, far below what is
    being measured. ``readinto`` is there because an open binary file has
    it; upstream never calls it (its hashing wrapper only reads).
    """

    def __init__(self, path: str, size: int) -> None:
        self._path = path
        self._left = size
        self._handle = None
        self._done = False

    def _file(self):
        if self._handle is None:
            self._handle = open(self._path, 'rb')  # noqa: SIM115 - closed after the last byte, below
        return self._handle

    def _count(self, got: int) -> None:
        self._left -= got
        if self._left <= 0 or not got:
            self._handle.close()
            self._done = True  # a read past the end finds EOF, as an open file's would

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b''
        data = self._file().read(size)
        self._count(len(data))
        return data

    def readinto(self, buffer) -> int:
        if self._done:
            return 0
        got = self._file().readinto(buffer)
        self._count(got)
        return got


def file_data_for(side: str, set_dir: str, entries_kind: str = '') -> list[dict]:
    """The Bundler's ``file_data``: file objects, but paths for ours unless ``entries_kind`` is 'fileobj'."""
    entries = []
    for rel, full, size, mtime in list_files(set_dir):
        entry = {'name': 'data/' + rel, 'size': size, 'mtime': mtime}
        if side == 'ours' and entries_kind != 'fileobj':
            entry['path'] = full
        else:
            entry['fileobj'] = OpenOnFirstRead(full, size)
        entries.append(entry)
    return entries


def new_metadata():
    """The smallest metadata both libraries accept as valid."""
    from pacifica.uploader.metadata import MetaData, MetaObj
    return MetaData([MetaObj(destinationTable='Transactions.project', value='1')])


def module_origin(name: str, expect_under: str) -> str:
    """Import ``name`` and insist it comes from the side we mean to measure."""
    module = __import__(name, fromlist=['_'])
    origin = os.path.realpath(module.__file__ or '')
    if expect_under and not origin.startswith(os.path.realpath(expect_under) + os.sep):
        raise JobFailed(f'{name} was imported from {origin}, not from {expect_under}')
    return origin


class ChildMemory:
    """Peak private memory of this process's children, sampled every 10 ms while the block runs (Linux).

    ``ru_maxrss`` of a child is no use here: a child started by ``fork`` +
    ``exec`` inherits its parent's high-water mark. ``/proc/PID/smaps_rollup``
    gives what the child itself holds; its pages that are shared (libraries
    that the parent maps too) count already in the parent's RSS. Elsewhere
    the peak stays 0.
    """

    INTERVAL = 0.01

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> 'ChildMemory':
        if os.path.exists('/proc/self/smaps_rollup'):
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        with open('/proc/self/cmdline', 'rb') as handle:
            own_command = handle.read()
        while not self._stop.wait(self.INTERVAL):
            self.peak = max(self.peak, sum(map(self._private_bytes, self._children(own_command))))

    @staticmethod
    def _children(own_command: bytes) -> list[str]:
        """Children that run a program of their own: between vfork and exec a child still uses our memory."""
        pids = []
        for task in os.listdir('/proc/self/task'):
            try:
                with open(f'/proc/self/task/{task}/children', encoding='ascii') as handle:
                    pids.extend(handle.read().split())
            except OSError:
                pass
        running = []
        for pid in pids:
            try:
                with open(f'/proc/{pid}/cmdline', 'rb') as handle:
                    if handle.read() != own_command:
                        running.append(pid)
            except OSError:
                pass
        return running

    @staticmethod
    def _private_bytes(pid: str) -> int:
        try:
            with open(f'/proc/{pid}/smaps_rollup', encoding='ascii') as handle:
                return sum(int(line.split()[1]) * 1024 for line in handle if line.startswith('Private_'))
        except (OSError, ValueError, IndexError):
            return 0


def timed(work: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    outcome = work()
    return time.perf_counter() - started, outcome


# ---------------------------------------------------------------- sinks


class HttpSink:
    """A raw POST to the ingest stand-in whose body is whatever gets written until close.

    No Content-Length and no chunk framing: the body ends when we shut down
    our side, so nothing but the socket stands between the bundler and the
    stand-in.
    """

    def __init__(self, upload_url: str) -> None:
        url = urlsplit(upload_url)
        self._sock = socket.create_connection((url.hostname, url.port))
        self._sock.sendall(
            f'POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/octet-stream\r\n'
            'Connection: close\r\n\r\n'.encode('ascii'))
        self.fileobj = self._sock.makefile('wb')

    def finish(self) -> str:
        """End the body, read the reply and return the job id."""
        self.fileobj.flush()
        self.fileobj.close()
        self._sock.shutdown(socket.SHUT_WR)
        reply = b''
        while True:
            part = self._sock.recv(65536)
            if not part:
                break
            reply += part
        self._sock.close()
        head, _, body = reply.partition(b'\r\n\r\n')
        if not head.startswith(b'HTTP/1.1 200'):
            raise JobFailed(f'ingest stand-in answered {head[:80]!r}')
        return json.loads(body)['job_id']


# ---------------------------------------------------------------- library cases


def run_bundle(job: dict) -> dict:
    module = module_origin('pacifica.uploader', job['expect_under'])
    from pacifica.uploader.bundler import Bundler
    md_obj = new_metadata()
    sink_kind = job['sink']
    target = os.path.join(job['tmp_dir'], f'bundle-{os.getpid()}.tar')

    # The caller's listing is not the library's work: file_data is built before the clock starts.
    file_data = file_data_for(job['side'], job['set_dir'], job.get('entries', ''))

    def work():
        bundler = Bundler(md_obj, file_data)
        if sink_kind == 'devnull':
            with open(os.devnull, 'wb') as sink:
                bundler.stream(sink)
            return None
        if sink_kind == 'file':
            with open(target, 'wb') as sink:
                bundler.stream(sink)
            return None
        http = HttpSink(job['upload_url'])
        bundler.stream(http.fileobj)
        return http.finish()

    seconds, job_id = timed(work)
    check = {}
    if sink_kind == 'file':
        check = {'kind': 'file', 'path': target}
    elif sink_kind == 'http':
        check = {'kind': 'ingest', 'job_id': job_id}
    return {'seconds': seconds, 'module': module, 'check': check}


def _pipe_files():
    read_end, write_end = os.pipe()
    return os.fdopen(read_end, 'rb'), os.fdopen(write_end, 'wb')


def _bundle_into_thread(md_obj, set_dir: str, write_file) -> threading.Thread:
    """Bundle in a thread into ``write_file`` and close it, the way pacifica-cli does.

    pacifica-cli also passes a progress callback (every 2 s); upstream then
    waits for the next tick before ``stream`` returns. That idle wait is left
    out here so the comparison is about work, not sleeping.
    """
    from pacifica.uploader.bundler import Bundler

    def make():
        try:
            Bundler(md_obj, file_data_for('upstream', set_dir)).stream(write_file)
        finally:
            write_file.close()

    thread = threading.Thread(target=make, daemon=True)
    thread.start()
    return thread


class SizedPipeReader:
    """A body with ``read`` and ``len``, which is how pacifica-cli hands a pipe to ``upload``."""

    def __init__(self, source, length: int) -> None:
        self.len = length
        self._source = source

    def read(self, size: int = -1) -> bytes:
        return self._source.read(size)


def run_upload(job: dict) -> dict:
    module = module_origin('pacifica.uploader', job['expect_under'])
    from pacifica.uploader.bundler import Bundler

    from pacifica.uploader import Uploader
    urls = {'upload_url': job['upload_url'], 'status_url': job['status_url']}
    set_dir = job['set_dir']
    flow = job['flow']
    facts = {}
    # 'listed': the caller's listing before the clock, as in the bundle cases (the library call alone).
    listed = file_data_for('ours', set_dir) if job.get('listed') else None

    def ours():
        file_data = listed if listed is not None else file_data_for('ours', set_dir)
        return Uploader(**urls).upload_bundle(Bundler(new_metadata(), file_data))

    def upstream_tempfile():
        handle, temp_path = tempfile.mkstemp(suffix='.tar', dir=job['tmp_dir'])
        facts['temp'] = temp_path
        with os.fdopen(handle, 'wb') as temp:
            Bundler(new_metadata(), file_data_for('upstream', set_dir)).stream(temp)
        facts['expected'] = os.path.getsize(temp_path)
        with open(temp_path, 'rb') as body:
            return Uploader(**urls).upload(body, content_length=facts['expected'])

    def upstream_cli():
        md_obj = new_metadata()
        # Pass 1: bundle into a pipe only to count the bytes.
        read_file, write_file = _pipe_files()
        thread = _bundle_into_thread(deepcopy(md_obj), set_dir, write_file)
        length = 0
        block = read_file.read(BLOCK)
        while block:
            length += len(block)
            block = read_file.read(BLOCK)
        thread.join()
        read_file.close()
        facts['expected'] = length
        # Pass 2: bundle again, this time into the upload.
        read_file, write_file = _pipe_files()
        thread = _bundle_into_thread(md_obj, set_dir, write_file)
        job_id = Uploader(**urls).upload(SizedPipeReader(read_file, length), content_length=length)
        thread.join()
        read_file.close()
        return job_id

    work = {'upload_bundle': ours, 'tempfile': upstream_tempfile, 'cli': upstream_cli}[flow]
    seconds, job_id = timed(work)
    if 'temp' in facts:
        os.unlink(facts['temp'])
    check = {'kind': 'ingest', 'job_id': job_id, 'expected': facts.get('expected')}
    return {'seconds': seconds, 'module': module, 'check': check}


def manifest_entries(path: str) -> Iterator[tuple[str, int, str]]:
    """(relative path, size, sha1) of every file of a set, read one line at a time."""
    with open(path, encoding='utf-8') as handle:
        handle.readline()  # the header
        for line in handle:
            rel, size, sha1 = json.loads(line)
            yield rel, size, sha1


def _check_tree(root: str, manifest: str) -> None:
    """Every file of the set is under ``root`` with its size, and nothing else."""
    expected = {rel: size for rel, size, _sha in manifest_entries(manifest)}
    found = {rel: size for rel, _full, size, _mtime in list_files(root)}
    if found != expected:
        missing = sorted(set(expected) - set(found))[:3]
        extra = sorted(set(found) - set(expected))[:3]
        wrong = sorted(rel for rel in set(found) & set(expected) if found[rel] != expected[rel])[:3]
        raise JobFailed(f'extracted tree differs: missing {missing} extra {extra} wrong size {wrong}')


def _dispose_tree(location: str) -> None:
    """Free an extracted tree's disk space now, but keep its inodes until the run ends.

    ext4 without a journal (the benchmark machine's disk) passes over inodes
    freed in the last minute when it allocates new ones, reading the inode
    table block of each. Right after one repetition deleted 20,000 files, the
    next one's 20,000 creations spent 5 to 10 s of kernel time in that scan
    (perf: ``recently_deleted`` under ``find_inode_bit``), for every side and
    for ``tar -x`` alike, which hid the libraries' own cost. So each file is
    truncated to nothing here, and run.py deletes the emptied trees at the end.
    """
    for root, _dirs, files in os.walk(location):
        for name in files:
            os.truncate(os.path.join(root, name), 0)


def _transinfo(manifest: str) -> dict:
    """What policy's transaction info holds for the files of a set."""
    transinfo = {'files': {}}
    for index, (rel, size, sha1) in enumerate(manifest_entries(manifest), start=1):
        subdir, _, name = rel.rpartition('/')
        transinfo['files'][str(index)] = {
            '_id': index, 'name': name, 'subdir': subdir, 'size': size,
            'hashtype': 'sha1', 'hashsum': sha1,
        }
    return transinfo


def run_download(job: dict) -> dict:
    module = module_origin('pacifica.downloader', job['expect_under'])
    from pacifica.downloader import Downloader
    transinfo = _transinfo(job['manifest'])  # the caller's input, built before the clock
    location = tempfile.mkdtemp(prefix='download-', dir=job['tmp_dir'])
    seconds, _ = timed(lambda: Downloader(cart_api_url=job['cart_api_url']).transactioninfo(location, transinfo))
    return {'seconds': seconds, 'module': module, 'check': {'kind': 'tree', 'location': location}}


def run_floor(job: dict) -> dict:
    """Only what a case holds before the library does anything: its imports and its input.

    ``inputs`` is ``file_data`` (the bundle and upload cases) or ``transinfo``
    (the download case). The peak RSS is the floor under those cases' figures;
    the rest is the library's own.
    """
    if job['inputs'] == 'file_data':
        module = module_origin('pacifica.uploader', job['expect_under'])
        import pacifica.uploader.bundler  # noqa: F401 - imported for its memory, as the bundle cases do

        def work():
            return len(file_data_for(job['side'], job['set_dir']))
    else:
        module = module_origin('pacifica.downloader', job['expect_under'])

        def work():
            return len(_transinfo(job['manifest'])['files'])

    seconds, _ = timed(work)
    return {'seconds': seconds, 'module': module}


# ---------------------------------------------------------------- limits


def run_sha1(job: dict) -> dict:
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)

    def work():
        for _rel, full, _size, _mtime in list_files(job['set_dir']):
            digest = hashlib.sha1()
            with open(full, 'rb', buffering=0) as handle:
                got = handle.readinto(buffer)
                while got:
                    digest.update(view[:got])
                    got = handle.readinto(buffer)
            digest.hexdigest()

    seconds, _ = timed(work)
    return {'seconds': seconds, 'module': ''}


def run_tar_create(job: dict) -> dict:
    """``tar -cf - DIR | cat``: cat keeps GNU tar from noticing /dev/null and skipping the reads."""
    tops = ' '.join(sorted(os.listdir(job['set_dir'])))
    command = f'tar -cf - {tops} | cat > /dev/null'
    seconds, _ = timed(lambda: subprocess.run(command, shell=True, cwd=job['set_dir'], check=True))
    return {'seconds': seconds, 'module': ''}


def run_tar_extract(job: dict) -> dict:
    location = tempfile.mkdtemp(prefix='untar-', dir=job['tmp_dir'])
    seconds, _ = timed(lambda: subprocess.run(['tar', '-xf', job['cart_tar'], '-C', location], check=True))
    return {'seconds': seconds, 'module': '', 'check': {'kind': 'tree', 'location': location}}


def run_ingest_ceiling(job: dict) -> dict:
    """The fastest a plain sender gets the same byte count into the ingest stand-in."""
    total = job['payload_bytes']
    block = memoryview(bytes(BLOCK))
    url = urlsplit(job['upload_url'])

    def work():
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(
                f'POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {total}\r\n'
                'Connection: close\r\n\r\n'.encode('ascii'))
            left = total
            while left:
                part = block[:min(BLOCK, left)]
                sock.sendall(part)
                left -= len(part)
            reply = b''
            part = sock.recv(65536)
            while part:
                reply += part
                part = sock.recv(65536)
        return json.loads(reply.partition(b'\r\n\r\n')[2])['job_id']

    seconds, job_id = timed(work)
    return {'seconds': seconds, 'module': '', 'check': {'kind': 'ingest', 'job_id': job_id, 'expected': total,
                                                        'raw': True}}


def run_cart_ceiling(job: dict) -> dict:
    """The fastest a plain reader drains the cart stand-in's tar (chunk framing included)."""
    url = urlsplit(job['cart_api_url'] + '/ceiling')
    buffer = bytearray(BLOCK)

    def work():
        got_total = 0
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(f'GET {url.path}?filename=data HTTP/1.1\r\nHost: {url.netloc}\r\n'
                         'Connection: close\r\n\r\n'.encode('ascii'))
            got = sock.recv_into(buffer)
            while got:
                got_total += got
                got = sock.recv_into(buffer)
        return got_total

    seconds, received = timed(work)
    tar_size = os.path.getsize(job['cart_tar'])
    if received < tar_size:
        raise JobFailed(f'cart stand-in sent {received} bytes, the tar has {tar_size}')
    return {'seconds': seconds, 'module': '', 'stream_bytes': received}


OPERATIONS: dict[str, Callable[[dict], dict]] = {
    'bundle': run_bundle,
    'upload': run_upload,
    'download': run_download,
    'floor': run_floor,
    'sha1': run_sha1,
    'tar_create': run_tar_create,
    'tar_extract': run_tar_extract,
    'ingest_ceiling': run_ingest_ceiling,
    'cart_ceiling': run_cart_ceiling,
}


# ---------------------------------------------------------------- checks, in the measuring process


def ingest_job_facts(status_url: str, job_id) -> dict:
    """What the ingest stand-in received for a job."""
    with urllib.request.urlopen(f'{status_url}?job_id={job_id}', timeout=60) as reply:
        return json.loads(reply.read())


def promised_length(job_text: str) -> int:
    """Our Bundler's ``content_length()`` for the set, asked in a separate unmeasured process."""
    done = subprocess.run([sys.executable, '-I', os.path.abspath(__file__), 'promise', job_text],
                          capture_output=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.decode('utf-8', 'replace').strip().splitlines() or ['(no output)']
        raise JobFailed(f'content_length() failed: {lines[-1]}')
    return int(done.stdout)


def run_promise(job: dict) -> int:
    """The length our Bundler announces before streaming (what the upload's Content-Length will be)."""
    module_origin('pacifica.uploader', job['expect_under'])
    from pacifica.uploader.bundler import Bundler
    return Bundler(new_metadata(), file_data_for('ours', job['set_dir'])).content_length()


def _check_bundle_hashes(bundle: str, manifest: str) -> None:
    """The bundle's metadata.txt names every file of the set with its true sha1 (so hashing was not skipped)."""
    with tarfile.open(bundle) as tar:
        member = tar.getmember('metadata.txt')
        metadata = json.loads(tar.extractfile(member).read())
    claimed = {'/'.join(part for part in (item['subdir'], item['name']) if part): item['hashsum']
               for item in metadata if item.get('destinationTable') == 'Files'}
    expected = {rel: sha1 for rel, _size, sha1 in manifest_entries(manifest)}
    if claimed != expected:
        wrong = sorted(rel for rel in set(claimed) | set(expected) if claimed.get(rel) != expected.get(rel))
        raise JobFailed(f'metadata.txt disagrees with the data set for {len(wrong)} files, e.g. {wrong[:3]}')


def verify(job: dict, job_text: str, answer: dict) -> None:
    """Prove the measured run did the whole job; fill in ``stream_bytes``; clean up after it."""
    check = answer.pop('check', None) or {}
    kind = check.get('kind')
    expected = check.get('expected')
    if kind in ('file', 'ingest') and job.get('side') == 'ours':
        expected = promised_length(job_text)
    if kind == 'file':
        answer['stream_bytes'] = os.path.getsize(check['path'])
        try:
            _check_bundle_hashes(check['path'], job['manifest'])
        finally:
            os.unlink(check['path'])
        if expected is not None and answer['stream_bytes'] != expected:
            raise JobFailed(f"bundle file has {answer['stream_bytes']} bytes, content_length() said {expected}")
    elif kind == 'ingest':
        facts = ingest_job_facts(job['status_url'], check['job_id'])
        received = int(facts['received_bytes'])
        if expected is not None and received != expected:
            raise JobFailed(f'ingest stand-in received {received} bytes, expected {expected}')
        if not check.get('raw') and not facts['tail_is_tar_end']:
            raise JobFailed('the uploaded stream does not end with the tar end-of-archive blocks')
        answer['stream_bytes'] = received
    elif kind == 'tree':
        try:
            _check_tree(os.path.join(check['location'], 'data'), job['manifest'])
        finally:
            _dispose_tree(check['location'])
    answer.setdefault('stream_bytes', None)


def measure(job_text: str) -> None:
    """Run the job in a child and add that child's peak RSS to its answer.

    Why a child of this process rather than of ``run.py``: on Linux a process
    inherits the RSS high-water mark of whoever spawned it (vfork + exec keep
    ``ru_maxrss``), so a worker spawned straight from the long-lived runner
    would report the runner's size. This small process is the spawner
    instead; the ``ru_maxrss`` that ``wait4`` returns for the child covers it
    and whatever it ran (``tar`` for the limits).
    """
    child = subprocess.Popen([sys.executable, '-I', os.path.abspath(__file__), 'run', job_text],
                             stdout=subprocess.PIPE)
    watchdog = threading.Timer(float(json.loads(job_text).get('timeout', 900)), child.kill)
    watchdog.start()
    output = child.stdout.read()
    child.stdout.close()
    _pid, status, usage = os.wait4(child.pid, 0)
    watchdog.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(child.returncode)
    answer = json.loads(output)
    # Linux reports KiB, macOS bytes. The private memory of the processes the measured one
    # started (the bundler's read-ahead process; tar) is added on top: their shared pages
    # (the interpreter, libcrypto) are the measured process's too, and already counted.
    answer['peak_rss_bytes'] = usage.ru_maxrss * (1 if sys.platform == 'darwin' else 1024) + answer.pop(
        'children_private_bytes', 0)
    # User and system CPU of the measured process and the processes it waited for: on a shared
    # machine a steadier figure than the wall time.
    answer['cpu_seconds'] = usage.ru_utime + usage.ru_stime
    verify(json.loads(job_text), job_text, answer)
    print(json.dumps(answer), flush=True)


def main() -> None:
    """``measure JOB`` (what run.py calls), ``run JOB`` (the measured process) or ``promise JOB``."""
    mode, job_text = sys.argv[1], sys.argv[2]
    if mode == 'measure':
        measure(job_text)
        return
    job = json.loads(job_text)
    for entry in reversed(job.get('sys_path', [])):
        sys.path.insert(0, entry)
    if mode == 'promise':
        print(run_promise(job), flush=True)
        return
    with ChildMemory() as children:
        answer = OPERATIONS[job['op']](job)
    answer['children_private_bytes'] = children.peak
    print(json.dumps(answer), flush=True)


if __name__ == '__main__':
    main()
