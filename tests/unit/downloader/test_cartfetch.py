"""CartFetch's body read: the fast path through http.client and urllib3's public read give the same bytes.

No socket: the replies are parsed from bytes by http.client and urllib3
themselves, so the fast path meets the objects it meets in a real download.
"""
from __future__ import annotations

import gzip
import http.client
import io
import os

import pytest
import requests
import urllib3

from pacifica._client.exceptions import ArchiveError
from pacifica.downloader.cartfetch import _body_readinto, _plain_http_body

BODY = os.urandom(300_000) + b'tail'


class _ByteSocket:
    """What http.client.HTTPResponse needs of a socket: ``makefile``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, _mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


def _reply(head: str, body: bytes) -> requests.Response:
    """A requests reply over urllib3 over http.client, reading ``head`` + ``body`` as the wire."""
    wire = http.client.HTTPResponse(_ByteSocket(head.encode('latin-1') + b'\r\n' + body))  # type: ignore[arg-type]
    wire.begin()
    raw = urllib3.HTTPResponse(body=wire, headers=dict(wire.getheaders()), status=wire.status,
                               preload_content=False, decode_content=False, original_response=wire)
    reply = requests.Response()
    reply.raw, reply.status_code, reply.headers = raw, wire.status, requests.structures.CaseInsensitiveDict(
        raw.headers)
    return reply


def _chunked(data: bytes, size: int = 70_000) -> bytes:
    pieces = [b'%x\r\n%s\r\n' % (len(data[at:at + size]), data[at:at + size]) for at in range(0, len(data), size)]
    return b''.join(pieces) + b'0\r\n\r\n'


def _read_all(reply: requests.Response, fast: bool, buffer_size: int = 65536) -> bytes:
    readinto = _body_readinto(reply, fast=fast)
    buffer, out = bytearray(buffer_size), bytearray()
    while True:
        count = readinto(buffer)
        out += buffer[:count]
        if count < buffer_size:
            return bytes(out)


WIRES = {
    'content-length': ('HTTP/1.1 200 OK\r\nContent-Length: {}\r\n'.format(len(BODY)), BODY),
    'chunked': ('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n', _chunked(BODY)),
    'close-delimited': ('HTTP/1.0 200 OK\r\n', BODY),
}


@pytest.mark.parametrize('wire', sorted(WIRES))
def test_fast_path_and_fallback_give_the_same_bytes(wire):
    head, body = WIRES[wire]
    assert _plain_http_body(_reply(head, body))[0] is not None, 'the fast path is not taken'
    assert _read_all(_reply(head, body), fast=True) == _read_all(_reply(head, body), fast=False) == BODY


def test_encoded_body_takes_the_public_read_and_is_decoded():
    packed = gzip.compress(BODY)
    head = 'HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n'.format(len(packed))
    assert _plain_http_body(_reply(head, packed))[0] is None
    assert _read_all(_reply(head, packed), fast=True) == BODY


def test_body_urllib3_started_reading_takes_the_public_read():
    head, body = WIRES['content-length']
    reply = _reply(head, body)
    first = reply.raw.read(1000)
    assert _plain_http_body(reply)[0] is None
    assert first + _read_all(reply, fast=True) == BODY


def test_without_urllib3_insides_the_public_read_serves():
    """A urllib3 without the private attributes: the fallback, not an AttributeError."""
    head, body = WIRES['chunked']
    reply = _reply(head, body)

    class Public:
        def __init__(self, raw):
            self.read = raw.read

    reply.raw = Public(reply.raw)
    assert _plain_http_body(reply) == (None, None)
    assert _read_all(reply, fast=True) == BODY


@pytest.mark.parametrize('fast', [True, False])
def test_short_body_is_an_archive_error_either_way(fast):
    head = 'HTTP/1.1 200 OK\r\nContent-Length: {}\r\n'.format(len(BODY) + 10)
    with pytest.raises(ArchiveError, match='broke off after'):
        _read_all(_reply(head, BODY), fast=fast)
