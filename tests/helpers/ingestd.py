"""A loopback stand-in for the Ingest server, strict about what it receives.

Like pacifica-ingest, every ``POST /upload`` that arrives opens a job (the
reliability tests count them). Unlike a mock, it checks each upload as
ingest does: the body is a tar holding ``metadata.txt`` and, for every
``Files`` entry there, ``data/<subdir>/<name>`` whose size and hash match. A
job whose tar does not hold up ends ``FAILED`` with the reason::

    ingest = IngestServer(LoopbackServer())
    uploader = Uploader(upload_url=ingest.url + '/upload', status_url=ingest.url + '/get_state')
    job = uploader.upload_bundle(bundler)
    assert ingest.jobs[job].ok

``GET /get_state?job_id=N`` answers the job's state document; ``progress_polls``
makes a job report ``ingest files`` that many times before it is done.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import tarfile
import threading
from typing import Any, Dict, List, Optional

from tests.helpers.server import LoopbackServer, Reply, Request


@dataclasses.dataclass
class Job:
    job_id: int
    size: int
    ok: bool
    problem: str = ''
    #: The decoded metadata.txt (None when it could not be read): tests find their jobs by it.
    metadata: Optional[list] = None
    #: False when fewer bytes arrived than the Content-Length announced (the client gave up).
    complete_body: bool = True
    polls: int = 0

    def value_of(self, table: str) -> Any:
        """The ``value`` of the metadata item for ``table`` (e.g. ``'Transactions.description'``)."""
        for item in self.metadata or ():
            if isinstance(item, dict) and item.get('destinationTable') == table:
                return item.get('value')
        return None


def read_metadata(data: bytes) -> Optional[list]:
    """The metadata.txt of a bundle, or None."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode='r:') as tar:
            for info in tar:
                if info.name == 'metadata.txt' and info.isfile():
                    return json.loads(tar.extractfile(info).read())
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return None
    return None


def check_bundle(data: bytes) -> List[str]:
    """Return what is wrong with an uploaded bundle (empty when ingest would accept it)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode='r:') as tar:
            members = {}
            for info in tar:
                if info.isfile():
                    members[info.name] = (info, tar.extractfile(info).read())
    except (tarfile.TarError, OSError, EOFError) as err:
        return ['not a readable tar: {}'.format(err)]
    if 'metadata.txt' not in members:
        return ['no metadata.txt']
    try:
        metadata = json.loads(members['metadata.txt'][1])
    except ValueError as err:
        return ['metadata.txt is not JSON: {}'.format(err)]
    problems = []
    files = [item for item in metadata if isinstance(item, dict) and item.get('destinationTable') == 'Files']
    for item in files:
        name = '/'.join(part for part in ('data', item.get('subdir') or '', item.get('name') or '') if part)
        if name not in members:
            problems.append('{}: missing from the tar'.format(name))
            continue
        info, content = members[name]
        if info.size != item.get('size') or len(content) != info.size:
            problems.append('{}: size {} in the tar, {} in metadata'.format(name, info.size, item.get('size')))
        digest = hashlib.new(item.get('hashtype') or 'sha1', content).hexdigest()
        if digest != item.get('hashsum'):
            problems.append('{}: hash {} but metadata says {}'.format(name, digest, item.get('hashsum')))
    if len(members) != len(files) + 1:
        problems.append('{} members for {} files'.format(len(members), len(files)))
    return problems


class IngestServer:
    """Ingest's upload and state endpoints on a loopback server."""

    def __init__(self, server: LoopbackServer, progress_polls: int = 0) -> None:
        self.server = server
        self.progress_polls = progress_polls
        self.jobs: Dict[int, Job] = {}
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        server.route('POST', '/upload', self._upload)
        server.route('GET', '/get_state', self._state)

    @property
    def url(self) -> str:
        return self.server.url

    def _upload(self, request: Request) -> Any:
        problems = check_bundle(request.body)
        complete = request.content_length is None or len(request.body) == request.content_length
        with self._lock:
            job = Job(next(self._ids), len(request.body), not problems and complete, '; '.join(problems),
                      read_metadata(request.body), complete)
            self.jobs[job.job_id] = job
        return {'job_id': job.job_id}

    def state_of(self, job: Job) -> Dict[str, Any]:
        done = job.polls > self.progress_polls
        doc = {'job_id': job.job_id, 'created': '2026-01-01 00:00:00', 'updated': '2026-01-01 00:00:01',
               'exception': '', 'complete': done}
        if not job.ok:
            doc.update(state='FAILED', task='open tar', task_percent='0.0', exception=job.problem, complete=True)
        elif done:
            doc.update(state='OK', task='ingest metadata', task_percent='100.0')
        else:
            doc.update(state='OK', task='ingest files', task_percent='50.0')
        return doc

    def _state(self, request: Request) -> Any:
        try:
            job = self.jobs[int(request.query.get('job_id', ''))]
        except (KeyError, ValueError):
            return Reply.json({'status': 'error', 'message': 'no such job'}, status=404)
        job.polls += 1
        return self.state_of(job)

    def job(self, job_id: Any) -> Optional[Job]:
        return self.jobs.get(int(job_id))
