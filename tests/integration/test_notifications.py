"""The CloudEvent the real services send after an ingest, downloaded with the library and with the CLI.

Metadata posts an ``org.pacifica.metadata.ingest`` event to the notifications
service after every ingest; notifications asks policy whether the owner of a
rule may see it and posts it to the rule's ``target_url``. Here the rule's
owner is the fixture uploader and the target is a receiver of this test, so
the event downloaded is exactly the one a user's webhook gets.
"""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest
import requests

from pacifica.downloader import Downloader
from tests.helpers.server import LoopbackServer, Request

from .conftest import TREE_FILES, UPLOADER_NETWORK_ID, Stack, transaction_metadata, tree_on_disk, upload_directory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: The header notifications 0.5.2 takes the user from (its USER_HEADER default).
USER_HEADER = 'Http-Remote-User'
EVENT_DEADLINE = 120.0
#: The receiver's server and the POSTs it got, oldest first.
Webhook = Tuple[LoopbackServer, 'queue.Queue[Request]']


@pytest.fixture
def receiver() -> Iterator[Webhook]:
    """A webhook on loopback that answers 200 and hands over every POST it gets."""
    server = LoopbackServer()
    posts: 'queue.Queue[Request]' = queue.Queue()

    def keep(request: Request) -> bytes:
        posts.put(request)
        return b''
    server.route('POST', '/webhook', keep)
    try:
        yield server, posts
    finally:
        server.close()


def _rule_request(stack: Stack, method: str, path: str = '', body: Any = None) -> requests.Response:
    """A call to the notifications rule API as the fixture uploader."""
    headers = {USER_HEADER: UPLOADER_NETWORK_ID, 'Content-Type': 'application/json'}
    return requests.request(method, '{}/eventmatch{}'.format(stack.notifications, path), headers=headers,
                            data=None if body is None else json.dumps(body), timeout=30)


@pytest.fixture
def tagged_rule(stack: Stack, receiver: Webhook) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """A tag for one upload, and a rule that sends the ingest event carrying it (and no other) to the receiver."""
    tag = 'events-{}'.format(uuid.uuid4())
    reply = _rule_request(stack, 'POST', body={
        'name': 'pacifica-transfer integration test',
        'jsonpath': '$["data"][*][?(@["value"] = "{}")]'.format(tag),
        'target_url': receiver[0].url + '/webhook',
    })
    assert reply.status_code == 200, reply.text
    rule = reply.json()
    try:
        yield tag, rule
    finally:
        _rule_request(stack, 'DELETE', '/' + rule['uuid'])


def _received_event(stack: Stack, posts: 'queue.Queue[Request]', rule: Dict[str, Any]) -> Request:
    try:
        return posts.get(timeout=EVENT_DEADLINE)
    except queue.Empty:
        state = _rule_request(stack, 'GET', '/' + rule['uuid'])  # a failed delivery disables the rule and says why
        raise AssertionError('no event reached the receiver in {:.0f}s; the rule is now: {}'.format(
            EVENT_DEADLINE, state.text)) from None


def test_the_ingest_event_downloads_with_the_library_and_the_cli(stack: Stack, receiver: Webhook,
                                                                   tagged_rule: Tuple[str, Dict[str, Any]],
                                                                   upload_tree: Path, tmp_path: Path) -> None:
    tag, rule = tagged_rule
    job_id = upload_directory(upload_tree, transaction_metadata(tag=tag))
    post = _received_event(stack, receiver[1], rule)

    assert post.headers['Content-Type'] == 'application/json'
    event = post.json()
    assert event['eventType'] == 'org.pacifica.metadata.ingest'
    assert event['eventID'] == 'metadata.ingest.{}'.format(job_id)
    assert {'destinationTable': 'Transactions._id', 'value': job_id} in event['data']
    assert len([item for item in event['data'] if item['destinationTable'] == 'Files']) == len(TREE_FILES)

    Downloader(cart_api_url=stack.cartd).cloudevent(str(tmp_path / 'library'), event)
    assert tree_on_disk(tmp_path / 'library' / 'data') == TREE_FILES

    event_file = tmp_path / 'event.json'
    event_file.write_bytes(post.body)  # the bytes as the webhook got them
    command = Path(sys.executable).with_name('pacifica-download')
    done = subprocess.run([str(command), '--cloudevent', str(event_file), '--destination', str(tmp_path / 'cli'),
                           '--cart-url', stack.cartd], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    assert tree_on_disk(tmp_path / 'cli' / 'data') == TREE_FILES
