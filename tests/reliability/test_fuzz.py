"""Property-based fuzzing of every function that reads untrusted input.

Allowed exceptions, per function (anything else fails the test):

=================================  ===================================================
``metadata_decode(text)``          MetadataDecodeError
``PolicyQuery.fromjson(text)``     MetadataDecodeError (not JSON, not an object, bad
                                   fields); UnknownUserError (a network id Policy does
                                   not know; the look-up goes to a loopback stub)
``CloudEvent.yield_files(e)``      RecordError (raised by the call, not by iteration)
``TransactionInfo.yield_files(t)`` RecordError (likewise)
the extractor (Downloader)         ArchiveError, UnsafeArchiveError, VerificationError
=================================  ===================================================

Example counts keep the whole file to a few seconds.
"""
from __future__ import annotations

import copy
import io
import json
import os
import shutil
import tarfile
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from pacifica._client.exceptions import (
    ArchiveError, MetadataDecodeError, RecordError, UnknownUserError, UnsafeArchiveError, VerificationError,
)
from pacifica.downloader import CloudEvent, Downloader, TransactionInfo
from pacifica.uploader.metadata import FileObj, MetaData, MetaObj, metadata_decode, metadata_encode
from pacifica.uploader.metadata.policyquery import QUERY_KEYS, PolicyQuery
from tests.helpers.cartd import CartServer, build_tar, cloud_event, member, transaction_info
from tests.helpers.server import LoopbackServer
from tests.reliability.conftest import FAST

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])


def fuzz(examples: int) -> settings:
    """The suite's settings with ``examples`` examples."""
    return settings(FUZZ, max_examples=examples)

json_scalars = hs.none() | hs.booleans() | hs.integers(-2 ** 70, 2 ** 70) | hs.floats(allow_nan=False) | hs.text(
    max_size=12)
json_values = hs.recursive(json_scalars, lambda inner: hs.lists(inner, max_size=4) | hs.dictionaries(
    hs.text(max_size=8), inner, max_size=4), max_leaves=12)


def _mutate(text: str, data) -> str:
    """Delete, insert or replace a few characters of ``text``."""
    chars = list(text)
    for _ in range(data.draw(hs.integers(1, 4))):
        position = data.draw(hs.integers(0, len(chars)))
        action = data.draw(hs.sampled_from(['delete', 'insert', 'replace']))
        char = data.draw(hs.sampled_from(list('[]{}",:0123456789.-eE nulltrufas\\\x00\u00e9')))
        if action == 'insert' or not chars:
            chars.insert(position, char)
        elif action == 'delete':
            del chars[min(position, len(chars) - 1)]
        else:
            chars[min(position, len(chars) - 1)] = char
    return ''.join(chars)


# =========================================================================== metadata_decode
meta_fields = hs.fixed_dictionaries({}, optional={
    'destinationTable': hs.sampled_from(['Files', 'Transactions.submitter', 'TransactionKeyValue']),
    'name': hs.text(max_size=10), 'subdir': hs.text(max_size=10), 'size': hs.integers(0, 10 ** 12),
    'metaID': hs.text(max_size=5), 'value': json_scalars, 'hashsum': hs.text('0123456789abcdef', max_size=40),
    'displayFormat': hs.text(max_size=10), 'queryDependency': hs.dictionaries(hs.text(max_size=4), hs.text(max_size=4)),
})


@fuzz(300)
@given(data=hs.data())
def test_metadata_decode_raises_only_its_error(data):
    kind = data.draw(hs.sampled_from(['valid', 'mutated', 'json', 'text']))
    if kind == 'text':
        text = data.draw(hs.text(max_size=60))
    elif kind == 'json':
        text = json.dumps(data.draw(json_values))
    else:
        text = json.dumps(data.draw(hs.lists(meta_fields, max_size=5)))
        if kind == 'mutated':
            text = _mutate(text, data)
    try:
        decoded = metadata_decode(text)
    except MetadataDecodeError:
        return
    assert isinstance(decoded, MetaData)
    assert all(isinstance(item, (MetaObj, FileObj)) for item in decoded)


file_items = hs.fixed_dictionaries({'destinationTable': hs.just('Files')}, optional={
    'name': hs.text(max_size=10), 'subdir': hs.text(max_size=10), 'size': hs.integers(0, 10 ** 12),
    'hashtype': hs.sampled_from(['sha1', 'md5']), 'hashsum': hs.text('0123456789abcdef', max_size=40),
    'mtime': hs.text(max_size=19), 'source': json_scalars})
meta_items = hs.fixed_dictionaries({'destinationTable': hs.text(max_size=20).filter(lambda t: t != 'Files')}, optional={
    'metaID': hs.text(max_size=5), 'value': json_scalars, 'directoryOrder': hs.integers(0, 9),
    'queryDependency': hs.dictionaries(hs.text(max_size=4), hs.text(max_size=4)), 'displayFormat': hs.text(max_size=9)})


@fuzz(150)
@given(items=hs.lists(file_items | meta_items, max_size=5))
def test_metadata_decode_inverts_encode(items):
    decoded = metadata_decode(json.dumps(items))
    assert metadata_decode(metadata_encode(decoded)) == decoded


# =========================================================================== PolicyQuery.fromjson
@pytest.fixture(scope='module')
def policy_stub():
    """Policy's uploader endpoint, knowing no network id: unknown users end in UnknownUserError, fast."""
    server = LoopbackServer()
    server.route('POST', '/uploader', lambda req: [])
    try:
        yield server
    finally:
        server.close()


query_docs = hs.fixed_dictionaries({}, optional={
    'user': json_scalars | hs.sampled_from(['10', '-1', 'dmlb2001', ' 7 ', '1e3', '0x10']),
    'columns': json_values, 'where': json_values, 'from': json_values,
}) | hs.dictionaries(hs.sampled_from(QUERY_KEYS + ['from', 'bogus', '']), json_values, max_size=4)


@fuzz(200)
@given(data=hs.data())
def test_policyquery_fromjson_raises_only_documented_errors(monkeypatch, policy_stub, data):
    monkeypatch.setenv('POLICY_UPLOADER_URL', policy_stub.url + '/uploader')
    kind = data.draw(hs.sampled_from(['doc', 'mutated', 'json']))
    if kind == 'json':
        doc = data.draw(json_values)
        text = json.dumps(doc)
    else:
        doc = data.draw(query_docs)
        text = json.dumps(doc)
        if kind == 'mutated':
            text = _mutate(text, data)
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
    try:
        query = PolicyQuery.fromjson(text)
    except (MetadataDecodeError, UnknownUserError):
        return
    assert isinstance(query, PolicyQuery)
    assert json.loads(query.tojson())['user'] == query.get_user()


@pytest.mark.parametrize('text', ['{"user": 10, "bogus": 1}', '{"": 1}'])
def test_fromjson_unknown_key_is_a_decode_error(text):
    with pytest.raises(MetadataDecodeError):
        PolicyQuery.fromjson(text)


@pytest.mark.parametrize('text', ['{"user": [1]}', '{"user": {}}', '{"user": 1e400}'])
def test_fromjson_unusable_user_is_a_decode_error(text):
    with pytest.raises(MetadataDecodeError):
        PolicyQuery.fromjson(text)


# =========================================================================== records
FILES = {7: ('raw', 'a.txt', b'alpha'), 'x8': ('', 'b.bin', b'beta'), 9: ('deep/er', 'c', b'')}


def _perturb(record, data):
    """Replace, drop or add a few fields anywhere in a record."""
    record = copy.deepcopy(record)
    for _ in range(data.draw(hs.integers(1, 3))):
        target, path = record, []
        while isinstance(target, (dict, list)) and target and data.draw(hs.booleans()):
            key = data.draw(hs.sampled_from(sorted(target, key=str) if isinstance(target, dict)
                                            else list(range(len(target)))))
            path.append(key)
            if not isinstance(target[key], (dict, list)):
                break
            target = target[key]
        if not isinstance(target, (dict, list)) or not target:
            continue
        key = data.draw(hs.sampled_from(sorted(target, key=str) if isinstance(target, dict)
                                        else list(range(len(target)))))
        action = data.draw(hs.sampled_from(['replace', 'drop', 'add']))
        if action == 'replace':
            target[key] = data.draw(json_values | hs.sampled_from(['..', '/', '../..', 'a/../../b', 'md5', '']))
        elif action == 'drop':
            del target[key]
        elif isinstance(target, dict):
            target[data.draw(hs.text(max_size=6))] = data.draw(json_values)
        else:
            target.append(data.draw(json_values))
    return record


def _check_cart_files(files):
    for item in files:
        assert set(item) == {'id', 'path', 'hashtype', 'hashsum'}
        assert '..' not in item['path'].split('/') and '\x00' not in item['path']


@fuzz(300)
@given(data=hs.data())
def test_transaction_info_yield_files_raises_only_record_error(data):
    record = _perturb(transaction_info(FILES), data) if data.draw(hs.booleans()) else data.draw(json_values)
    try:
        producer = TransactionInfo.yield_files(record)
    except RecordError:
        return
    _check_cart_files(list(producer()))


@fuzz(300)
@given(data=hs.data())
def test_cloud_event_yield_files_raises_only_record_error(data):
    event = _perturb(cloud_event(FILES), data) if data.draw(hs.booleans()) else data.draw(json_values)
    try:
        producer = CloudEvent.yield_files(event)
    except RecordError:
        return
    _check_cart_files(list(producer()))


# =========================================================================== the extractor
CART_FILES = {7: ('raw', 'a.txt', b'alpha\n' * 100), 8: ('', 'b.bin', bytes(range(256)) * 3)}
NAMES = ['data/raw/a.txt', 'data/b.bin', 'data/raw', 'data', 'data/../x', '/abs', 'data/raw/../b.bin',
         'data//raw/a.txt', 'data/raw/a.txt/', 'other/a.txt', 'data/raw/new.txt', './data/b.bin', 'data/' + 'n' * 150]
TYPES = [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
         tarfile.CHRTYPE, tarfile.FIFOTYPE, b'S', b'V', b'x']


@pytest.fixture(scope='module')
def fuzz_cart():
    workdir = tempfile.mkdtemp(prefix='fuzz-cartd-')
    server = LoopbackServer()
    cartd = CartServer(server, workdir)
    for file_id, (_, _, content) in CART_FILES.items():
        cartd.add_file(file_id, content)
    try:
        yield cartd
    finally:
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _good_tar() -> bytes:
    infos, contents = [], {}
    for _, (subdir, name, content) in CART_FILES.items():
        path = '/'.join(p for p in ('data', subdir, name) if p)
        infos.append(member(path))
        contents[path] = content
    return build_tar(infos, contents)


@hs.composite
def cart_streams(draw):
    kind = draw(hs.sampled_from(['mutated', 'members', 'truncated', 'random']))
    if kind == 'random':
        return draw(hs.binary(max_size=3000))
    if kind == 'members':
        infos, contents = [], {}
        for _ in range(draw(hs.integers(0, 4))):
            name = draw(hs.sampled_from(NAMES))
            info = member(name, draw(hs.sampled_from(TYPES)), linkname=draw(hs.sampled_from(['', '/etc/passwd',
                                                                                            'data/b.bin', '../x'])))
            infos.append(info)
            if info.type == tarfile.REGTYPE and name not in contents:
                contents[name] = draw(hs.sampled_from([b'alpha\n' * 100, bytes(range(256)) * 3, b'', b'x' * 700]))
        try:
            return build_tar(infos, contents)
        except (ValueError, tarfile.TarError):
            return _good_tar()
    data = bytearray(_good_tar())
    if kind == 'truncated':
        return bytes(data[:draw(hs.integers(0, len(data) - 1))])
    for _ in range(draw(hs.integers(1, 6))):
        position = draw(hs.integers(0, 2048))  # the headers and the first data blocks
        data[position] = draw(hs.integers(0, 255))
    return bytes(data)


def _files_under(path):
    return sorted(os.path.relpath(os.path.join(root, name), path)
                  for root, _, names in os.walk(path) for name in names)


@fuzz(120)
@given(stream=cart_streams())
def test_extractor_raises_only_archive_or_verification_errors(fuzz_cart, stream):
    fuzz_cart.behaviour.tar_bytes = stream
    base = tempfile.mkdtemp(prefix='fuzz-dl-')
    try:
        location = os.path.join(base, 'dl')
        try:
            downloader = Downloader(cart_api_url=fuzz_cart.url, config=FAST)
            downloader.transactioninfo(location, transaction_info(CART_FILES), timeout=5)
            paths = downloader.paths_written
        except (ArchiveError, UnsafeArchiveError, VerificationError):
            assert [p for p in _files_under(location) if not os.path.basename(p).startswith('.')] == []
        else:  # success only with exactly the requested, verified content
            expected = {os.path.basename(p): c for (_, p, c) in CART_FILES.values()}
            assert {os.path.basename(p): open(p, 'rb').read() for p in paths} == expected
        assert os.listdir(base) in ([], ['dl']), 'something was written beside the download location'
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_unmutated_cart_downloads(fuzz_cart, tmp_path):
    """The control for the fuzzing above: the good tar passes."""
    fuzz_cart.behaviour.tar_bytes = _good_tar()
    downloader = Downloader(cart_api_url=fuzz_cart.url, config=FAST)
    downloader.transactioninfo(str(tmp_path), transaction_info(CART_FILES), timeout=5)
    paths = downloader.paths_written
    assert len(paths) == 2 and io.open(paths[0], 'rb').read()
