"""The one exception tree of the Pacifica client library.

Every error the library raises on purpose derives from :class:`PacificaError`.
Each class *also* derives from the built-in (or ``requests``, ``tarfile``)
exception that pacifica-uploader 0.3 and pacifica-downloader 0.3/0.4 raised in
the same situation (``docs/compatibility.rst`` lists each situation and what
was raised there), so ``except ValueError:`` or ``except AssertionError:``
clauses written against those packages keep working::

    PacificaError
    ├── ConfigurationError (ValueError)           bad URL, timeout, hash name
    │   ├── UnsupportedHashError
    │   └── UsageError (TypeError)                 arguments fit neither calling convention
    ├── MetadataError
    │   ├── MetadataEncodeError (TypeError)        not a MetaData, no destinationTable
    │   ├── MetadataDecodeError (TypeError, ValueError)  not JSON, wrong shape
    │   ├── UnknownMetaIDError (IndexError)        md['nope'], md['x'] = no_meta_id
    │   └── InvalidMetadataError (ValueError)      md.is_valid() is false
    │       └── MissingQueryResultsError (IndexError, TypeError)  directory_prefix() before update_parents()
    ├── BundleError
    │   ├── FileDataError (ValueError, KeyError, TypeError, AttributeError)  a file_data entry is unusable
    │   └── FileChangedError (OSError)             a file shrank or grew mid-bundle
    ├── RecordError (ValueError, TypeError, AttributeError)  bad transaction info / cloud event
    ├── TransportError (requests.RequestException)
    │   ├── ServerConnectionError (requests.ConnectionError)
    │   ├── RequestTimeout (requests.Timeout, TimeoutError via PacificaTimeoutError)
    │   └── HTTPStatusError (requests.HTTPError, ValueError)  status_code, body, url
    │       └── every error below marked [status]: a failure an HTTP status caused
    ├── InvalidResponseError (ValueError, KeyError, requests.InvalidJSONError)  reply not JSON or wrong shape
    ├── PacificaTimeoutError (TimeoutError)
    │   ├── RequestTimeout
    │   ├── JobTimeoutError                        Uploader.wait deadline
    │   └── CartTimeoutError                       wait_for_cart deadline
    ├── PolicyError
    │   ├── UnknownUserError (IndexError)          network id not in metadata
    │   ├── UnknownTransactionError (LookupError)  policy knows no such transaction
    │   │   └── UnknownTransactionStatusError      [status] policy answered 404
    │   └── PolicyRejectedError (ValueError)       policy refused the metadata
    ├── IngestError
    │   ├── UploadRejectedError (KeyError, TypeError)  no job_id in ingest's answer
    │   │   └── UploadStatusError                  [status] ingest refused the POST
    │   ├── UploadLengthError (ValueError)         body not the announced Content-Length
    │   ├── IngestJobFailedError (RuntimeError)    the job ended FAILED
    │   ├── JobTimeoutError
    │   └── IngestVerificationError                the transaction does not hold what was sent
    │                                              (problems: ChecksumMismatch, SizeMismatch, FileMissing,
    │                                              UnexpectedFile)
    └── DownloadError (AssertionError)
        ├── CartRequestError                       [status] cart POST not answered 201
        ├── CartFailedError                        [status] state error, HEAD not 204 (404: lost), DELETE refused
        ├── CartTimeoutError
        ├── CartDownloadError (tarfile.ReadError)  [status] GET not answered 200
        ├── ArchiveError (tarfile.ReadError)       malformed or truncated tar
        │   └── UnsafeArchiveError                 member would escape or is not a plain file
        └── VerificationError                      every file missing, of the wrong size or hash
                                                   (problems: ChecksumMismatch, SizeMismatch, FileMissing)

Messages never contain credentials: see :mod:`pacifica._client.redact`.
Each category carries the commands' exit code in ``exit_code`` (inherited in
method resolution order): usage, server, refused/unverified, or local.
"""
from __future__ import annotations

import tarfile
from typing import Any, Dict, Iterable, List, Optional, Tuple

import requests

from .redact import EXCERPT_LIMIT
from .verification import (ChecksumMismatch, FileMissing, SizeMismatch, UnexpectedFile, VerificationDetail,
                           as_detail)

__all__ = [
    'PacificaError', 'ConfigurationError', 'UnsupportedHashError', 'UsageError',
    'MetadataError', 'MetadataEncodeError', 'MetadataDecodeError',
    'UnknownMetaIDError', 'InvalidMetadataError', 'MissingQueryResultsError',
    'BundleError', 'FileDataError', 'FileChangedError', 'RecordError',
    'TransportError', 'ServerConnectionError', 'RequestTimeout', 'HTTPStatusError',
    'InvalidResponseError', 'PacificaTimeoutError', 'JobTimeoutError', 'CartTimeoutError', 'PolicyError',
    'UnknownUserError', 'UnknownTransactionError', 'UnknownTransactionStatusError', 'PolicyRejectedError',
    'IngestError', 'UploadRejectedError', 'UploadStatusError', 'UploadLengthError', 'IngestJobFailedError',
    'IngestVerificationError', 'DownloadError', 'CartRequestError', 'CartFailedError', 'CartDownloadError',
    'ArchiveError', 'UnsafeArchiveError', 'VerificationError',
    'VerificationDetail', 'ChecksumMismatch', 'SizeMismatch', 'FileMissing', 'UnexpectedFile',
]

#: The commands' exit codes (each command's ``--help`` lists them).
EXIT_OK = 0
EXIT_LOCAL = 1
EXIT_USAGE = 2
EXIT_SERVER = 3
EXIT_FAILED = 4


class PacificaError(Exception):
    """Root of every exception this library raises on purpose."""

    #: The commands' exit code for this category of failure.
    exit_code = EXIT_LOCAL

    def __str__(self) -> str:
        # KeyError (a base of some subclasses) would show repr(message).
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ConfigurationError(PacificaError, ValueError):
    """An argument or environment variable cannot be used as given."""
    exit_code = EXIT_USAGE


class UnsupportedHashError(ConfigurationError):
    """The ``hashfunc`` is not in :data:`hashlib.algorithms_available`."""


class UsageError(ConfigurationError, TypeError):
    """A call's arguments fit none of the supported calling conventions.

    Python itself raised TypeError for such calls against the old signatures.
    """


class MetadataError(PacificaError):
    """Base of the metadata (MetaData, MetaObj, FileObj) errors."""
    exit_code = EXIT_USAGE


class MetadataEncodeError(MetadataError, TypeError):
    """The object cannot be encoded as Pacifica metadata."""


class MetadataDecodeError(MetadataError, TypeError, ValueError):
    """The text is not Pacifica metadata (not JSON, not a list of objects, unknown keys)."""


class UnknownMetaIDError(MetadataError, IndexError):
    """No item with that ``metaID``, or a string-keyed assignment without one."""


class InvalidMetadataError(MetadataError, ValueError):
    """The metadata is not complete enough to bundle (``is_valid()`` is false)."""


class MissingQueryResultsError(InvalidMetadataError, IndexError, TypeError):
    """An item that places the upload (``directoryOrder``) has no ``query_results`` yet.

    pacifica-uploader 0.3.1 failed there with IndexError (an empty list) or
    TypeError (None); this class is both, so old ``except`` clauses still work.
    """


class BundleError(PacificaError):
    """Base of the errors found while bundling files (exit code: a local problem)."""


class FileDataError(BundleError, ValueError, KeyError, TypeError, AttributeError):
    """A ``file_data`` entry is missing a key or holds an unusable value.

    pacifica-uploader 0.3.1 raised KeyError for a missing key, TypeError for
    a value of the wrong type and AttributeError for a missing ``fileobj``;
    this class is all of them.

    ``problems`` lists every ``(index, description)`` found, also those the
    message leaves out to stay short.
    """

    def __init__(self, message: str, problems: Iterable[Tuple[int, str]] = ()) -> None:
        super().__init__(message)
        self.problems: List[Tuple[int, str]] = list(problems)


class FileChangedError(BundleError, OSError):
    """A file's length differed from its declared ``size`` while it was bundled."""


class RecordError(PacificaError, ValueError, TypeError, AttributeError):
    """A transaction info or cloud event lacks a field, or has one of the wrong type.

    pacifica-downloader 0.4 called ``.get`` / ``.items`` on the record's
    parts, which raised AttributeError for a part that is not a dict.
    """
    exit_code = EXIT_FAILED


class TransportError(PacificaError, requests.RequestException):
    """Base of the errors talking to a server."""
    exit_code = EXIT_SERVER


class ServerConnectionError(TransportError, requests.ConnectionError):
    """The server could not be reached, or the connection broke."""


class PacificaTimeoutError(PacificaError, TimeoutError):
    """Base of the errors for a deadline that passed."""


class RequestTimeout(TransportError, PacificaTimeoutError, requests.Timeout):
    """A request did not complete within its timeout or deadline."""


class HTTPStatusError(TransportError, requests.HTTPError, ValueError):
    """The server answered with a status the call cannot accept: ``status_code``, ``body`` (an excerpt of the
    reply) and ``url`` (without credentials). Also a ValueError: the old clients parsed every reply as JSON
    whatever its status, and an error page that is not JSON raised ValueError there."""

    def __init__(self, message: str, status_code: int, body: str = '', url: str = '') -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body[:EXCERPT_LIMIT]  # the one excerpt length
        self.url = url

    def __reduce__(self) -> Tuple[Any, ...]:  # copy and pickle keep the status, body and url of every subclass
        return _rebuilt, (type(self), self.args, dict(self.__dict__))


def _rebuilt(cls: type, args: Tuple[Any, ...], state: Dict[str, Any]) -> HTTPStatusError:
    err: HTTPStatusError = OSError.__new__(cls)  # at heart an OSError (requests.RequestException)
    err.args = args
    err.__dict__.update(state)
    return err


class InvalidResponseError(PacificaError, ValueError, KeyError, requests.exceptions.InvalidJSONError):
    """The server's reply is not JSON, or lacks what the call needs.

    The old clients called ``reply.json()``, whose error is a ValueError
    (with requests 2.27 or later a ``requests.exceptions.JSONDecodeError``,
    also a ``requests.RequestException``), and then took keys of it (KeyError).
    """
    exit_code = EXIT_SERVER


class PolicyError(PacificaError):
    """Base of the errors reported by the Policy server."""
    exit_code = EXIT_FAILED


class UnknownUserError(PolicyError, IndexError):
    """The network id matches no user known to Policy."""


class UnknownTransactionError(PolicyError, LookupError):
    """Policy knows no transaction with the id asked for; ``transaction_id`` is that id."""
    exit_code = EXIT_USAGE  # the id given is wrong

    def __init__(self, message: str, transaction_id: Any = None) -> None:
        super().__init__(message)
        self.transaction_id = transaction_id


class UnknownTransactionStatusError(UnknownTransactionError, HTTPStatusError):
    """Policy said so with a status (404): also an :class:`HTTPStatusError`."""

    def __init__(self, message: str, transaction_id: Any = None, *, status_code: int, body: str = '',
                 url: str = '') -> None:
        HTTPStatusError.__init__(self, message, status_code, body, url)
        self.transaction_id = transaction_id


class PolicyRejectedError(PolicyError, ValueError):
    """Policy refused the metadata; ``reply`` holds what it said."""

    def __init__(self, message: str, reply: Any = None) -> None:
        super().__init__(message)
        self.reply = reply


class IngestError(PacificaError):
    """Base of the errors of an upload to, or a job on, the Ingest server."""
    exit_code = EXIT_FAILED


class UploadRejectedError(IngestError, KeyError, TypeError):
    """Ingest did not accept the upload (no job id in its answer).

    pacifica-uploader 0.3.1 took ``reply['job_id']``: KeyError for a JSON
    object without it, TypeError for other JSON. This class is both.
    """
    exit_code = EXIT_SERVER


class UploadStatusError(UploadRejectedError, HTTPStatusError):
    """Ingest answered the upload with an error status: its error pages are JSON objects without ``job_id``,
    on which 0.3.1 raised KeyError (ValueError for a page that is not JSON); this class is those too."""


class UploadLengthError(IngestError, ValueError):
    """The upload body was not the announced number of bytes.

    The body is cut off before its last byte, so the server never sees a
    complete (and wrong) upload. ``expected`` and ``actual`` are byte counts;
    ``actual`` is a lower bound when the source had too many.
    """

    def __init__(self, message: str, expected: int, actual: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class IngestJobFailedError(IngestError, RuntimeError):
    """The ingest job ended in state ``FAILED``.

    ``job_id`` is the job, ``state`` the last status document and
    ``server_exception`` the server's exception text.
    """

    def __init__(self, message: str, job_id: Any, state: Optional[dict] = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.state = state or {}
        self.server_exception = str(self.state.get('exception') or '')


class JobTimeoutError(IngestError, PacificaTimeoutError):
    """The ingest job did not finish before the deadline; ``state`` is the last status."""

    def __init__(self, message: str, job_id: Any, state: Optional[dict] = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.state = state or {}


class IngestVerificationError(IngestError):
    """The transaction an ingest job made does not hold the files that were sent (names, sizes, hashes).

    ``transaction_id`` is the transaction; ``problems`` lists every file as a
    typed detail: :class:`FileMissing` (sent, not on the server),
    :class:`SizeMismatch`, :class:`ChecksumMismatch` (``expected`` is what
    was sent, ``found`` what the server records) and :class:`UnexpectedFile`
    (on the server, never sent).
    """

    def __init__(self, transaction_id: Any, problems: Iterable[VerificationDetail] = ()) -> None:
        self.transaction_id = transaction_id
        self.problems: List[VerificationDetail] = list(problems)
        lines = [problem.describe_ingest() for problem in self.problems]
        super().__init__('transaction {}: {} file(s) differ from what was sent:\n  {}'.format(
            transaction_id, len(self.problems), '\n  '.join(lines)))

    def __reduce__(self) -> Tuple[Any, ...]:
        return type(self), (self.transaction_id, self.problems)


class DownloadError(PacificaError, AssertionError):
    """Base of the download errors (AssertionError, as the old downloader raised)."""
    exit_code = EXIT_FAILED  # VerificationError, ArchiveError and any future check


class CartRequestError(DownloadError, HTTPStatusError):
    """The cart server did not answer the cart request with 201 (``status_code`` is what it answered)."""
    exit_code = EXIT_SERVER


class CartFailedError(DownloadError, HTTPStatusError):
    """The cart's HEAD said state ``error`` or answered neither 204 nor a busy status (404: cartd lost the
    cart), or its DELETE was refused; ``status_code`` is what that request answered."""
    exit_code = EXIT_SERVER


class CartTimeoutError(DownloadError, PacificaTimeoutError):
    """The cart was not ready before the deadline."""
    exit_code = EXIT_SERVER


class CartDownloadError(DownloadError, tarfile.ReadError, HTTPStatusError):
    """The cart GET answered with an error status (``status_code``, ``body``).

    Also a :class:`tarfile.ReadError`: pacifica-downloader 0.4 handed the
    error page to :mod:`tarfile`, which raised that.
    """
    exit_code = EXIT_SERVER


class ArchiveError(DownloadError, tarfile.ReadError):
    """The cart's tar stream is malformed or ended early (:mod:`tarfile` raised ReadError there)."""


class UnsafeArchiveError(ArchiveError):
    """A tar member would be written outside the target or is not a requested plain file."""

    def __init__(self, message: str, member: str = '') -> None:
        super().__init__(message)
        self.member = member


class VerificationError(DownloadError):
    """Downloaded files that are missing, of the wrong size, or whose hash differs.

    ``problems`` lists every one as a :class:`ChecksumMismatch`,
    :class:`SizeMismatch` or :class:`FileMissing` (each also the
    ``(path, expected, found)`` triple of earlier releases).
    """

    def __init__(self, problems: Iterable[Any]) -> None:
        self.problems: List[VerificationDetail] = [as_detail(problem) for problem in problems]
        lines = [problem.describe() for problem in self.problems]
        super().__init__('{} file(s) failed verification:\n  {}'.format(len(self.problems), '\n  '.join(lines)))

    def __reduce__(self) -> Tuple[Any, ...]:  # rebuilt from the details, not from the message
        return type(self), (self.problems,)
