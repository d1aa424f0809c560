"""The typed details of a VerificationError: what went wrong with one file is its type, as in bagit.

Kept apart from the exception tree so that each module does one job; the tree
re-exports them, and ``pacifica.downloader`` exports them to callers.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

__all__ = ['VerificationDetail', 'ChecksumMismatch', 'SizeMismatch', 'FileMissing', 'UnexpectedFile', 'as_detail']


class VerificationDetail(tuple):
    """One file that failed verification: a typed detail of :class:`VerificationError`.

    ``path`` is the file's ``<subdir>/<name>``; ``hashtype`` and ``expected``
    the record's hash; ``found`` the digest of what arrived (None when nothing
    did); ``expected_size`` the record's size and ``actual_size`` the bytes
    that arrived (None where unknown). What went wrong is the detail's type,
    never a text; it is also the ``(path, expected, found)`` triple that
    ``problems`` held before these types existed, with
    :attr:`LEGACY_NOT_FOUND` in the third place for a file that never arrived.
    """

    #: ``found`` in the triple view when nothing arrived (what earlier releases put there).
    LEGACY_NOT_FOUND = 'missing'

    path: str
    hashtype: str
    expected: str
    found: Optional[str]
    expected_size: Optional[int]
    actual_size: Optional[int]

    def __new__(cls, path: str, hashtype: str, expected: str, found: Optional[str] = None,
                expected_size: Optional[int] = None, actual_size: Optional[int] = None) -> 'VerificationDetail':
        detail = super().__new__(cls, (path, expected, cls.LEGACY_NOT_FOUND if found is None else found))
        detail.path, detail.hashtype, detail.expected, detail.found = path, hashtype, expected, found
        detail.expected_size, detail.actual_size = expected_size, actual_size
        return detail

    def __getnewargs__(self) -> Tuple[Any, ...]:  # copy and pickle rebuild it with every field
        return self.path, self.hashtype, self.expected, self.found, self.expected_size, self.actual_size

    def __repr__(self) -> str:
        return '{}(path={!r}, hashtype={!r}, expected={!r}, found={!r}, expected_size={!r}, actual_size={!r})'.format(
            type(self).__name__, *self.__getnewargs__())

    def _expected_hash(self) -> str:
        return ' '.join(text for text in (self.hashtype, self.expected) if text)

    def describe(self) -> str:
        """One line for the error message."""
        return '{}: expected {}, found {}'.format(self.path, self._expected_hash(), self.found)

    def describe_ingest(self) -> str:
        """One line for an :class:`IngestVerificationError`: what was sent against what the server records."""
        return '{}: sent {}, the server records {} {}'.format(self.path, self._expected_hash(), self.hashtype,
                                                            self.found)


class ChecksumMismatch(VerificationDetail):
    """The file arrived (at the declared size, or with no size declared) but its digest differs."""


class SizeMismatch(VerificationDetail):
    """The cart's member holds a different number of bytes than the record declares.

    It was read to its end and hashed, but none of it was written to disk.
    """

    def describe(self) -> str:
        return '{}: expected {} bytes, the cart holds {} (expected {}, found {})'.format(
            self.path, self.expected_size, self.actual_size, self._expected_hash(), self.found)

    def describe_ingest(self) -> str:
        return '{}: sent {} bytes, the server records {} bytes'.format(self.path, self.expected_size,
                                                                      self.actual_size)


class FileMissing(VerificationDetail):
    """The cart did not deliver the file at all."""

    def describe(self) -> str:
        return '{}: expected {}, but the cart did not deliver it'.format(self.path, self._expected_hash())

    def describe_ingest(self) -> str:
        return '{}: sent ({} bytes, {}), the transaction does not hold it'.format(
            self.path, self.expected_size, self._expected_hash())


class UnexpectedFile(VerificationDetail):
    """The transaction holds a file that was not sent (``found`` is its recorded hash)."""

    def describe(self) -> str:
        return '{}: not expected, found {} {}'.format(self.path, self.hashtype, self.found)

    def describe_ingest(self) -> str:
        return '{}: the transaction holds it ({} bytes, {} {}), it was not sent'.format(
            self.path, self.actual_size, self.hashtype, self.found)


def as_detail(problem: Any) -> VerificationDetail:
    """A typed detail; a plain ``(path, expected, found)`` triple of earlier code is converted."""
    if isinstance(problem, VerificationDetail):
        return problem
    path, expected, found = problem
    if found == VerificationDetail.LEGACY_NOT_FOUND:
        return FileMissing(path, '', expected)
    return ChecksumMismatch(path, '', expected, found)
