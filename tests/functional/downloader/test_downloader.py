"""Downloader end to end against the cartd stand-in: both conventions, resume, options, failures."""
from __future__ import annotations

import errno
import hashlib
import os
import pathlib
import subprocess
import sys

import pytest

import pacifica.downloader
from pacifica.downloader import (
    CartDownloadError, CartFailedError, Downloader, PacificaError, TransferConfig, UsageError, VerificationError,
)
from pacifica.downloader import _partwriter as partwriter_module
from pacifica.downloader.cartapi import CartAPI
from tests.helpers.cartd import CartServer, cloud_event, transaction_info

from .conftest import FAST, FILES, expected_tree, final_files, tree

#: Every test runs with small part files made here and by the part-file process (conftest).
pytestmark = pytest.mark.usefixtures('part_files')

SECRET = 'hunter2-secret'


def sent(cartd, method):
    return sum(1 for req in cartd.server.requests if req.method == method)


def rel_paths(paths, dest):
    return sorted(os.path.relpath(path, dest).replace(os.sep, '/') for path in paths)


def test_public_names():
    assert pacifica.downloader.TransferConfig is TransferConfig
    assert isinstance(pacifica.downloader.__version__, str)
    assert issubclass(pacifica.downloader.CartTimeoutError, pacifica.downloader.PacificaError)
    from pacifica.downloader.downloader import Downloader as inner
    assert inner is Downloader


def test_seed_convention(cartd, dest):
    down = Downloader(dest, cartd.url, config=FAST)
    assert down.location == dest and down.auth == {} and isinstance(down.cart_api, CartAPI)
    paths = down.transactioninfo(transaction_info(FILES))
    assert tree(dest) == expected_tree()
    assert rel_paths(paths, dest) == sorted(expected_tree())


def test_seed_convention_filename_positional_and_cloudevent(cartd, dest):
    down = Downloader(dest, cartd.url, config=FAST)
    down.cloudevent(cloud_event(FILES), 'other')
    assert tree(dest) == expected_tree(filename='other')


def test_pacifica_cli_call_shape(cartd, dest):
    """pacifica-cli 0.5.2: Downloader(cart_api_url=..., auth=...).transactioninfo(destination, json)."""
    auth = {'auth': ('user', SECRET)}
    down = Downloader(cart_api_url=cartd.url, auth=auth, config=FAST)
    assert down.cart_api.auth == auth
    down.transactioninfo(dest, transaction_info(FILES))
    assert tree(dest) == expected_tree()
    assert all('Authorization' in req.headers for req in cartd.server.requests)


def test_04_convention_with_keywords_and_pathlike(cartd, tmp_path):
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    down.cloudevent(location=tmp_path / 'ce', cloudevent=cloud_event(FILES), filename='x', timeout=5)
    assert tree(str(tmp_path / 'ce')) == expected_tree(filename='x')


def test_04_convention_on_seed_instance_uses_given_location(cartd, tmp_path):
    down = Downloader(str(tmp_path / 'seed'), cartd.url, config=FAST)
    down.transactioninfo(str(tmp_path / 'explicit'), transaction_info(FILES))
    assert not (tmp_path / 'seed').exists() and tree(str(tmp_path / 'explicit')) == expected_tree()


def test_env_url_and_parts(cartd, dest, monkeypatch):
    monkeypatch.setenv('CARTD_PORT', str(cartd.server.port))
    Downloader(config=FAST).transactioninfo(dest, transaction_info(FILES))
    assert tree(dest) == expected_tree()


@pytest.mark.parametrize('call', [
    lambda down: down.transactioninfo(transaction_info(FILES)),  # seed form, no location anywhere
    lambda down: down.transactioninfo(),
    lambda down: down.transactioninfo(42, transaction_info(FILES)),
    lambda down: down.transactioninfo('/tmp/x', transaction_info(FILES), 'data', 'extra'),
    lambda down: down.cloudevent(cloud_event(FILES), 'a', filename='b'),
])
def test_calls_that_fit_no_convention_are_type_errors(cartd, call):
    with pytest.raises(UsageError) as caught:
        call(Downloader(cart_api_url=cartd.url, config=FAST))
    assert isinstance(caught.value, TypeError)
    assert cartd.server.requests == []


def test_url_in_place_of_location_is_explained():
    with pytest.raises(TypeError, match='cart_api_url'):
        Downloader('http://127.0.0.1:8081')


@pytest.mark.parametrize('filename', ['', '../up', '/abs', 'a/../../b'])
def test_unsafe_filename_is_refused(cartd, dest, filename):
    with pytest.raises(ValueError):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES),
                                                                         filename=filename)
    assert cartd.server.requests == []


def test_filename_is_url_encoded_and_names_the_directory(cartd, dest):
    name = 'my data & more?#'
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES), filename=name)
    get = [req for req in cartd.server.requests if req.method == 'GET'][0]
    assert get.query == {'filename': name}
    assert tree(dest) == expected_tree(filename=name)


def test_tar_suffix_filename_as_cartd_names_it(cartd, dest):
    """cartd strips '.tar' from the member names; the files still land in <location>/<filename>."""
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES),
                                                                     filename='cart.tar')
    assert tree(dest) == expected_tree(filename='cart.tar')


def test_prebundled_cart_named_after_its_uuid(cartd, dest):
    down = Downloader(cart_api_url=cartd.url, extra_args={'bundle': True}, config=FAST)
    down.transactioninfo(dest, transaction_info(FILES))
    assert tree(dest) == expected_tree()
    assert list(cartd.carts.values())[0].body['bundle'] is True


def test_slow_cart_is_waited_for(cartd, dest):
    cartd.behaviour.staging_polls = 4
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES), timeout=10)
    assert tree(dest) == expected_tree()


def test_repeat_call_needs_no_cart(cartd, dest):
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    down.transactioninfo(dest, transaction_info(FILES))
    first = down.paths_written
    down.transactioninfo(dest, transaction_info(FILES))
    assert down.paths_written == first and len(first) == len(FILES)
    assert len(cartd.carts) == 1 and sent(cartd, 'POST') == 1
    assert tree(dest) == expected_tree()


def test_resume_asks_only_for_missing_and_wrong_files(cartd, dest):
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    down.transactioninfo(dest, transaction_info(FILES))
    os.remove(os.path.join(dest, 'data', 'top.bin'))
    with open(os.path.join(dest, 'data', 'a', 'b', 'foo.txt'), 'wb') as handle:
        handle.write(b'stale')
    down.transactioninfo(dest, transaction_info(FILES))
    second = list(cartd.carts.values())[1]
    assert sorted(item['id'] for item in second.fileids) == ['103', '104']
    assert tree(dest) == expected_tree()


def test_failed_download_leaves_nothing_under_final_names_and_resumes(cartd, dest):
    """One bad file: the good ones are parked (hidden), not in place; the next call fetches only the bad one."""
    cartd.add_file(105, b'corrupted in the archive')
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    with pytest.raises(VerificationError) as caught:
        down.transactioninfo(dest, transaction_info(FILES))
    assert [problem[0] for problem in caught.value.problems] == ['a/b/\u00e9/barr\u00e9.txt']
    assert isinstance(caught.value, AssertionError)
    left = tree(dest)
    assert not set(left) & set(expected_tree())
    assert all(name.rsplit('/', 1)[-1].startswith('.') and name.endswith('.pacifica-verified') for name in left)
    cartd.add_file(105, FILES[105][2])
    down.transactioninfo(dest, transaction_info(FILES))
    assert [item['id'] for item in list(cartd.carts.values())[1].fileids] == ['105']
    assert tree(dest) == expected_tree()


def test_all_mismatches_and_missing_reported_together(cartd, dest):
    cartd.add_file(103, b'wrong one')
    cartd.add_file(104, b'wrong two')
    info = transaction_info(FILES)
    info['files']['106'] = dict(info['files']['103'], name='never-sent.txt')
    cartd.behaviour.tar_bytes = None
    original_post = cartd._post

    def drop_106(request):  # the archive lost file 106: cartd's tar lacks it
        reply = original_post(request)
        uid = request.path.strip('/')
        os.remove(os.path.join(cartd.carts[uid].directory, 'a', 'b', 'never-sent.txt'))
        return reply
    cartd.server.route('POST', '*', drop_106)
    with pytest.raises(VerificationError) as caught:
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, info)
    problems = {problem[0]: problem for problem in caught.value.problems}
    assert set(problems) == {'a/b/foo.txt', 'top.bin', 'a/b/never-sent.txt'}
    assert problems['top.bin'][1:] == (info['files']['104']['hashsum'], hashlib.sha1(b'wrong two').hexdigest())
    assert problems['a/b/never-sent.txt'][2] == 'missing'
    assert 'a/b/never-sent.txt: expected' in str(caught.value)
    assert not set(tree(dest)) & set(expected_tree())


def test_previously_verified_files_survive_a_later_failure(cartd, dest):
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    one = {103: FILES[103]}
    down.transactioninfo(dest, transaction_info(one))
    cartd.behaviour.get_status = 500
    with pytest.raises(CartDownloadError):
        down.transactioninfo(dest, transaction_info(FILES))
    assert tree(dest) == expected_tree(one)


def test_delete_cart_after_verified_download(cartd, dest):
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    down.transactioninfo(dest, transaction_info(FILES))
    assert not list(cartd.carts.values())[0].deleted  # upstream never deleted: default off
    down.transactioninfo(os.path.join(dest, 'again'), transaction_info(FILES), delete_cart=True)
    assert list(cartd.carts.values())[1].deleted
    assert sent(cartd, 'DELETE') == 1


def test_delete_cart_not_done_after_failure(cartd, dest):
    cartd.add_file(104, b'bad')
    with pytest.raises(VerificationError):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES),
                                                                         delete_cart=True)
    assert sent(cartd, 'DELETE') == 0


def test_callback_reports_bytes_of_total(cartd, dest):
    calls = []
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(
        dest, transaction_info(FILES), callback=lambda done, total: calls.append((done, total)))
    total = sum(len(content) for _s, _n, content in FILES.values())
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_callback_total_is_none_without_sizes(cartd, dest):
    info = transaction_info(FILES)
    del info['files']['104']['size']
    calls = []
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(
        dest, info, callback=lambda done, total: calls.append((done, total)))
    assert calls[-1][1] is None and calls[-1][0] > 0


def test_callback_error_aborts_cleanly(cartd, dest):
    def broken(done, total):
        if done:
            raise RuntimeError('ui crashed')
    with pytest.raises(RuntimeError):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES),
                                                                         callback=broken)
    assert not set(tree(dest)) & set(expected_tree())


@pytest.mark.parametrize('status', [202, 404, 500, 401])
def test_get_failure_statuses(cartd, dest, status):
    cartd.behaviour.get_status = status
    with pytest.raises(CartDownloadError) as caught:
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES))
    assert caught.value.status_code == status and isinstance(caught.value, AssertionError)
    assert tree(dest) == {}


def test_cart_error_state(cartd, dest):
    cartd.behaviour.fail_message = 'archive offline'
    with pytest.raises(CartFailedError, match='archive offline'):
        Downloader(cart_api_url=cartd.url, config=FAST).cloudevent(dest, cloud_event(FILES))


def test_empty_record_needs_no_cart(cartd, dest):
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    assert down.transactioninfo(dest, {'files': {}}) is None
    assert down.paths_written == []
    assert cartd.server.requests == []


def test_conflicting_paths_in_record_are_refused(cartd, dest):
    info = transaction_info({1: ('a', 'x', b'1'), 2: ('a/', 'x', b'2')})
    with pytest.raises(ValueError, match='both go to'):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, info)


def test_download_from_url_both_conventions(cartd, tmp_path):
    api = CartAPI(cartd.url, config=FAST)
    cart_url = api.wait_for_cart(api.setup_cart(lambda: iter(
        [{'id': 103, 'path': 'a/b/foo.txt', 'hashtype': 'sha1', 'hashsum': 'x'}])))
    seed = Downloader(str(tmp_path / 'seed'), cartd.url, config=FAST)
    assert rel_paths(seed._download_from_url(cart_url, 'data'), str(tmp_path / 'seed')) == ['data/a/b/foo.txt']
    new = Downloader(cart_api_url=cartd.url, config=FAST)
    assert new._download_from_url(str(tmp_path / 'new'), cart_url, 'other') is None
    assert tree(str(tmp_path / 'new')) == {'other/a/b/foo.txt': FILES[103][2]}
    assert rel_paths(new.paths_written, str(tmp_path / 'new')) == ['other/a/b/foo.txt']


def test_secrets_never_in_logs_or_errors(cartd, dest, debug_logs):
    auth = {'auth': ('user', SECRET), 'cert': ('/c.pem', SECRET), 'headers': {'Authorization': 'Bearer ' + SECRET}}
    cartd.add_file(104, b'bad')
    down = Downloader(cart_api_url=cartd.url.replace('://', '://user:{}@'.format(SECRET)), auth=auth, config=FAST)
    errors = []
    for call in (lambda: down.transactioninfo(dest, transaction_info(FILES)),
                 lambda: down.cart_api.wait_for_cart(cartd.url + '/unknown')):
        try:
            call()
        except PacificaError as err:
            errors.append(err)
    assert len(errors) == 2
    for err in errors:
        assert SECRET not in str(err) and SECRET not in repr(err)
    assert SECRET not in debug_logs.text
    assert SECRET not in repr(down.__dict__.get('location'))


def test_paths_written_in_record_order(cartd, dest):
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    down.transactioninfo(dest, transaction_info(FILES))
    assert [pathlib.Path(path).name for path in down.paths_written] == ['foo.txt', 'top.bin', 'barr\u00e9.txt']


def test_0_4_convention_returns_none_seed_convention_returns_paths(cartd, dest):
    """0.4.x returned None (pacifica-cli hands it to sys.exit); the seed form keeps returning the paths."""
    new = Downloader(cart_api_url=cartd.url, config=FAST)
    assert new.transactioninfo(dest, transaction_info(FILES)) is None
    assert new.cloudevent(dest, cloud_event(FILES), filename='ce') is None
    assert rel_paths(new.paths_written, dest) == sorted(expected_tree(filename='ce'))
    seed = Downloader(dest, cartd.url, config=FAST)
    returned = seed.cloudevent(cloud_event(FILES), 'seed')
    assert returned == seed.paths_written and rel_paths(returned, dest) == sorted(expected_tree(filename='seed'))
    # a location passed to the call (even by keyword) is the 0.4.x form, whatever the constructor had
    assert seed.transactioninfo(transinfo=transaction_info(FILES), location=dest) is None
    assert rel_paths(seed.paths_written, dest) == sorted(expected_tree())


def test_paths_written_reset_when_a_call_fails(cartd, dest):
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    down.transactioninfo(dest, transaction_info(FILES))
    assert down.paths_written
    cartd.behaviour.fail_message = 'archive offline'
    with pytest.raises(CartFailedError):
        down.transactioninfo(dest, transaction_info({**FILES, 106: ('n', 'new.txt', b'new')}))
    assert down.paths_written == []


def test_pacifica_cli_sys_exit_of_the_result_is_success(cartd, dest):
    """pacifica-cli 0.5.2 runs sys.exit(main()) and main() returns the download method's result."""
    script = (
        'import sys\n'
        'from pacifica.downloader import Downloader\n'
        'from tests.helpers.cartd import transaction_info\n'
        'from tests.functional.downloader.conftest import FILES\n'
        'down = Downloader(cart_api_url=sys.argv[1])\n'
        'sys.exit(down.transactioninfo(sys.argv[2], transaction_info(FILES)))\n'
    )
    root = str(pathlib.Path(__file__).resolve().parents[3])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')])))
    done = subprocess.run([sys.executable, '-c', script, cartd.url, dest], env=env, cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '' and done.stderr == ''
    assert tree(dest) == expected_tree()


def test_auth_attribute_can_be_replaced_like_0_3(cartd, dest):
    down = Downloader(dest, cartd.url, config=FAST)
    down.auth = {'auth': ('user', SECRET)}
    assert down.cart_api.auth == {'auth': ('user', SECRET)}
    down.transactioninfo(transaction_info(FILES))
    assert all('Authorization' in req.headers for req in cartd.server.requests)


def test_top_level_file_without_subdir_downloads(cartd, dest):
    info = transaction_info(FILES)
    del info['files']['104']['subdir']
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    down.transactioninfo(dest, info)
    assert tree(dest) == expected_tree()
    assert rel_paths(down.paths_written, dest) == sorted(expected_tree())


def test_big_file_lands_whole_with_its_exact_size(server, tmp_path, dest):
    """A member big enough for the background writer (and a space reservation) keeps its exact bytes and size."""
    content = os.urandom(3 * (1 << 20) + 17)
    big = {201: ('big', 'blob.bin', content)}
    cart_server = CartServer(server, tmp_path / 'cartd-big')
    cart_server.add_file(201, content)
    Downloader(cart_api_url=cart_server.url, config=FAST).transactioninfo(dest, transaction_info(big))
    path = os.path.join(dest, 'data', 'big', 'blob.bin')
    assert os.path.getsize(path) == len(content)
    assert final_files(dest) == expected_tree(big)


def test_full_disk_fails_the_download_and_leaves_nothing(server, tmp_path, dest, monkeypatch):
    """No space for a big file: the OSError reaches the caller; no part file and no final name remain."""
    def disk_full(fd, size, path=None):
        raise OSError(errno.ENOSPC, 'No space left on device (reserving {} bytes)'.format(size), path)
    monkeypatch.setattr(partwriter_module, 'reserve_space', disk_full)
    content = os.urandom(2 << 20)
    big = {202: ('big', 'full.bin', content)}
    cart_server = CartServer(server, tmp_path / 'cartd-full')
    cart_server.add_file(202, content)
    with pytest.raises(OSError) as caught:
        Downloader(cart_api_url=cart_server.url, config=FAST).transactioninfo(dest, transaction_info(big))
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename.endswith(os.sep + 'full.bin')  # the staged file, below the hidden stage
    assert os.sep + '.pacifica-stage-' in caught.value.filename
    assert tree(dest) == {}
