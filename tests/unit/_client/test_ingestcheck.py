"""The check after ingest compares a transaction's rows with what was sent, a file recorded twice included."""
from __future__ import annotations

from typing import Any, List

import pytest

from pacifica._client.datasets import ServerFile
from pacifica._client.ingestcheck import SentFile, verify_transaction
from pacifica.uploader import IngestVerificationError, UnexpectedFile


class _Rows:
    """What DatasetLookup.files answers, held in memory: the check asks nothing else."""

    def __init__(self, rows: List[ServerFile]) -> None:
        self.rows = rows

    def files(self, transaction_id: Any) -> List[ServerFile]:
        return sorted(self.rows)


def _held(path: str, size: int = 3, file_id: int = 1) -> ServerFile:
    return ServerFile(path, size, 'sha1', 'ab', path.rpartition('/')[2], path.rpartition('/')[0], file_id)


def test_the_same_files_pass() -> None:
    sent = [SentFile('a/{}'.format(index), 3, 'sha1', 'AB') for index in range(500)]
    held = verify_transaction(_Rows([_held('a/{}'.format(index), file_id=index) for index in range(500)]), 7, sent)
    assert len(held) == 500


def test_every_later_copy_of_a_path_is_unexpected() -> None:
    sent = [SentFile('a/one', 3, 'sha1', 'ab'), SentFile('a/two', 3, 'sha1', 'ab')]
    rows = [_held('a/one', file_id=1), _held('a/one', file_id=2), _held('a/one', file_id=3), _held('a/two', file_id=4)]
    with pytest.raises(IngestVerificationError) as raised:
        verify_transaction(_Rows(rows), 7, sent)
    assert [(type(problem), problem.path) for problem in raised.value.problems] == [(UnexpectedFile, 'a/one')] * 2
