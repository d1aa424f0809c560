"""Downloaded files get their recorded modification time; a failed download takes its new folders away.

Against the cartd stand-in, which stages the files when the cart is asked
for and tars them as cartd does, so the tar's own times are the staging
times, as with the real service.
"""
from __future__ import annotations

import calendar
import os
from typing import Any, Dict

import pytest

from pacifica.downloader import ArchiveError, CartDownloadError, Downloader, VerificationError
from pacifica.downloader._records import modification_time
from tests.helpers.cartd import CartServer, cloud_event, stream_directory, transaction_info

from .conftest import FAST, FILES, final_files, tree

#: Every test runs with small part files made here and by the part-file process (conftest).
pytestmark = pytest.mark.usefixtures('part_files')

BIG = ('', 'big.bin', bytes(range(256)) * 8192)  # 2 MiB: written on the background writer thread
RECORDED = {
    103: '2019-03-04T05:06:07',                    # what metadata serves: UTC, no zone
    104: '2001-02-03T04:05:06.250000+02:00',
    105: 1234567890.5,
    106: '2010-10-10T10:10:10Z',
}
EXPECTED = {
    103: calendar.timegm((2019, 3, 4, 5, 6, 7)),
    104: calendar.timegm((2001, 2, 3, 2, 5, 6)) + 0.25,
    105: 1234567890.5,
    106: calendar.timegm((2010, 10, 10, 10, 10, 10)),
}
FILES_WITH_BIG = {**FILES, 106: BIG}


def _path(dest: str, files: Dict[Any, tuple], file_id: Any) -> str:
    subdir, name, _content = files[file_id]
    return os.path.join(dest, 'data', *[part for part in subdir.split('/') if part], name)


def _with_mtimes(record: Dict[str, Any], mtimes: Dict[Any, Any]) -> Dict[str, Any]:
    for file_id, mtime in mtimes.items():
        if str(file_id) in record['files']:
            record['files'][str(file_id)]['mtime'] = mtime
    return record


@pytest.mark.parametrize('recorded, seconds', [
    ('2019-03-04T05:06:07', EXPECTED[103]),
    ('2019-03-04 05:06:07', EXPECTED[103]),
    ('2019-03-04T05:06:07+00:00', EXPECTED[103]),
    ('2019-03-04T07:06:07+02:00', EXPECTED[103]),
    ('1969-12-31T23:59:00', -60.0),
    (1545127200, 1545127200.0),
    ('yesterday', None), ('', None), (None, None), (True, None), (float('nan'), None), ({'t': 1}, None),
])
def test_recorded_times_are_read_as_utc(recorded: Any, seconds: Any) -> None:
    assert modification_time(recorded) == seconds


def test_files_get_the_mtime_of_the_transaction_record(cartd: CartServer, dest: str) -> None:
    cartd.add_file(106, BIG[2])
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(
        dest, _with_mtimes(transaction_info(FILES_WITH_BIG), RECORDED))
    for file_id, seconds in EXPECTED.items():
        assert os.stat(_path(dest, FILES_WITH_BIG, file_id)).st_mtime == pytest.approx(seconds, abs=1e-3), file_id


def test_files_get_the_mtime_of_the_cloud_event(cartd: CartServer, dest: str) -> None:
    event = cloud_event(FILES)
    for item in event['data']:
        if item.get('destinationTable') == 'Files':
            item['mtime'] = RECORDED[item['_id']]
    Downloader(cart_api_url=cartd.url, config=FAST).cloudevent(dest, event)
    for file_id in FILES:
        assert os.stat(_path(dest, FILES, file_id)).st_mtime == pytest.approx(EXPECTED[file_id], abs=1e-3)


def test_without_a_usable_recorded_time_a_file_keeps_the_time_of_its_cart_member(cartd: CartServer,
                                                                                 dest: str) -> None:
    """As ``tar -x`` of the cart would: cartd's member time (here, as there, when the cart was staged)."""
    record = _with_mtimes(transaction_info(FILES), {103: 'not a time', 104: None})
    Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, record)
    staged = next(iter(cartd.carts.values())).directory
    for file_id in FILES:
        subdir, name, _content = FILES[file_id]
        member_time = os.stat(os.path.join(staged, *[part for part in subdir.split('/') if part], name)).st_mtime
        assert os.stat(_path(dest, FILES, file_id)).st_mtime == pytest.approx(member_time, abs=1e-3)


def test_a_resumed_file_keeps_its_recorded_mtime(cartd: CartServer, dest: str) -> None:
    """A verified file parked by a failed call takes its final name later with the recorded time."""
    cartd.add_file(105, b'corrupted in the archive')
    down = Downloader(cart_api_url=cartd.url, config=FAST)
    with pytest.raises(VerificationError):
        down.transactioninfo(dest, _with_mtimes(transaction_info(FILES), RECORDED))
    cartd.add_file(105, FILES[105][2])
    down.transactioninfo(dest, _with_mtimes(transaction_info(FILES), RECORDED))
    for file_id in FILES:
        assert os.stat(_path(dest, FILES, file_id)).st_mtime == pytest.approx(EXPECTED[file_id], abs=1e-3)


# --------------------------------------------------------------------------- cleanup after a failure
def _fail_mid_stream(cartd: CartServer) -> None:
    """The cart's tar ends inside the first file: its part file and folders exist when the download fails."""
    def cut(cart: Any) -> bytes:
        data = b''.join(stream_directory(cart.directory, 'data'))
        return data[:data.index(FILES[103][2]) + 4]
    cartd.behaviour.tar_bytes = cut


def test_a_failed_download_removes_the_folders_it_made(cartd: CartServer, tmp_path: Any) -> None:
    _fail_mid_stream(cartd)
    dest = str(tmp_path / 'new' / 'deeper' / 'dest')
    with pytest.raises(ArchiveError):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES))
    assert os.listdir(str(tmp_path)) == ['cartd']


def test_a_failed_download_keeps_folders_that_existed_or_hold_something(cartd: CartServer, tmp_path: Any) -> None:
    dest = tmp_path / 'dest'
    (dest / 'data' / 'a').mkdir(parents=True)
    (dest / 'mine.txt').write_bytes(b'not the download\'s')
    _fail_mid_stream(cartd)
    with pytest.raises(ArchiveError):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(str(dest), transaction_info(FILES))
    assert tree(str(dest)) == {'mine.txt': b'not the download\'s'}
    assert sorted(os.listdir(str(dest))) == ['data', 'mine.txt']
    assert os.listdir(str(dest / 'data')) == ['a'] and os.listdir(str(dest / 'data' / 'a')) == []


def test_folders_holding_verified_files_stay_for_the_next_call(cartd: CartServer, dest: str) -> None:
    cartd.add_file(105, b'corrupted in the archive')
    with pytest.raises(VerificationError):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES))
    left = tree(dest)
    assert left and all(path.endswith('.pacifica-verified') for path in left)
    assert not os.path.exists(os.path.join(dest, 'data', 'a', 'b', '\u00e9'))  # only the bad file was there
    assert final_files(dest) == {}


def test_a_cart_that_fails_before_streaming_makes_no_folder(cartd: CartServer, dest: str) -> None:
    cartd.behaviour.get_status = 500
    with pytest.raises(CartDownloadError):
        Downloader(cart_api_url=cartd.url, config=FAST).transactioninfo(dest, transaction_info(FILES))
    assert not os.path.exists(dest)
