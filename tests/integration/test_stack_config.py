"""The stack runs pacifica-uniqueid (and the archive interface) with one request thread, and it shows.

pacifica-uniqueid 0.5.1 increments its counter without a lock: with several
request threads, concurrent requests get the same ids, and ingest takes its
job ids and file ids from it (one shard's tar overwrote another's). The
stack script gives both services ``server.thread_pool: 1`` (docs/stack.md).
"""
from __future__ import annotations

import concurrent.futures as cf
import configparser
import json
import os
import uuid
from pathlib import Path
from typing import Dict, List

import pytest
import requests

from .conftest import REPO, Stack

pytestmark = pytest.mark.integration


def running_config(service: str, variable: str) -> configparser.ConfigParser:
    """The CherryPy ini the running ``service`` process was started with (its ``variable``)."""
    home = Path(os.environ.get('PACIFICA_STACK_HOME') or REPO / '.stack')
    pid = json.loads((home / 'pids.json').read_text(encoding='utf-8'))[service]['pid']
    environ: Dict[str, str] = {}
    for item in Path('/proc/{}/environ'.format(pid)).read_bytes().split(b'\0'):
        name, _, value = item.decode('utf-8', 'replace').partition('=')
        environ[name] = value
    parser = configparser.ConfigParser()
    parser.read(environ[variable], encoding='utf-8')
    return parser


@pytest.mark.parametrize('service, variable', [('uniqueid', 'UNIQUEID_CPCONFIG'),
                                               ('archiveinterface', 'ARCHIVEINTERFACE_CPCONFIG')])
def test_the_running_service_has_one_request_thread(stack: Stack, service: str, variable: str) -> None:
    assert running_config(service, variable).get('global', 'server.thread_pool') == '1'


def test_concurrent_id_requests_never_get_the_same_id(stack: Stack) -> None:
    url = stack.env['PACIFICA_UNIQUEID_URL'] + '/getid'
    mode = 'stackcheck{}'.format(uuid.uuid4().hex[:8])

    def take(count: int) -> List[int]:
        with requests.Session() as session:
            ids = []
            for _ in range(count):
                reply = session.get(url, params={'range': 1, 'mode': mode}, timeout=30)
                reply.raise_for_status()
                ids.append(int(reply.json()['startIndex']))
            return ids

    with cf.ThreadPoolExecutor(4) as pool:
        taken = [found for batch in pool.map(take, [75] * 4) for found in batch]
    assert len(taken) == 300 and len(set(taken)) == 300, 'ids handed out twice: {}'.format(
        sorted(found for found in set(taken) if taken.count(found) > 1))
