"""The one exception tree of the Pacifica client library.

Every error the library raises on purpose derives from :class:`PacificaError`.
Each class *also* derives from the built-in (or ``requests``) exception that
pacifica-uploader 0.3 and pacifica-downloader 0.3/0.4 raised in the same
situation, so ``except ValueError:`` or ``except AssertionError:`` clauses
written against those packages keep working::

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
    │   ├── FileDataError (ValueError, KeyError)   a file_data entry is unusable
    │   └── FileChangedError (OSError)             a file shrank or grew mid-bundle
    ├── RecordError (ValueError, TypeError)        bad transaction info / cloud event
    ├── TransportError (requests.RequestException)
    │   ├── ServerConnectionError (requests.ConnectionError)
    │   ├── RequestTimeout (requests.Timeout, TimeoutError via PacificaTimeoutError)
    │   └── HTTPStatusError (requests.HTTPError)   status_code, body, url
    ├── InvalidResponseError (ValueError, KeyError)  reply not JSON or wrong shape
    ├── PacificaTimeoutError (TimeoutError)
    │   ├── RequestTimeout
    │   ├── JobTimeoutError                        Uploader.wait deadline
    │   └── CartTimeoutError                       wait_for_cart deadline
    ├── PolicyError
    │   ├── UnknownUserError (IndexError)          network id not in metadata
    │   └── PolicyRejectedError (ValueError)       policy refused the metadata
    ├── IngestError
    │   ├── UploadRejectedError                    ingest did not accept the POST
    │   ├── UploadLengthError (ValueError)         body not the announced Content-Length
    │   ├── IngestJobFailedError (RuntimeError)    the job ended FAILED
    │   └── JobTimeoutError
    └── DownloadError (AssertionError)
        ├── CartRequestError                       cart POST not answered 201
        ├── CartFailedError                        cart state error, HEAD 404/500
        ├── CartTimeoutError
        ├── CartDownloadError                      GET answered 4xx/5xx
        ├── ArchiveError                           malformed or truncated tar
        │   └── UnsafeArchiveError                 member would escape or is not a plain file
        └── VerificationError                      hash mismatches and missing files

Messages never contain credentials: see :mod:`pacifica._client.redact`.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Optional, Tuple

import requests

from .redact import EXCERPT_LIMIT

__all__ = [
    'PacificaError', 'ConfigurationError', 'UnsupportedHashError', 'UsageError',
    'MetadataError', 'MetadataEncodeError', 'MetadataDecodeError',
    'UnknownMetaIDError', 'InvalidMetadataError', 'MissingQueryResultsError',
    'BundleError', 'FileDataError', 'FileChangedError', 'RecordError',
    'TransportError', 'ServerConnectionError', 'RequestTimeout', 'HTTPStatusError',
    'InvalidResponseError', 'PacificaTimeoutError', 'JobTimeoutError', 'CartTimeoutError',
    'PolicyError', 'UnknownUserError', 'PolicyRejectedError',
    'IngestError', 'UploadRejectedError', 'UploadLengthError', 'IngestJobFailedError',
    'DownloadError', 'CartRequestError', 'CartFailedError', 'CartDownloadError',
    'ArchiveError', 'UnsafeArchiveError', 'VerificationError',
]

#: How much of a server's reply body an exception keeps (and shows): the one excerpt length.
BODY_EXCERPT_LIMIT = EXCERPT_LIMIT


class PacificaError(Exception):
    """Root of every exception this library raises on purpose."""

    def __str__(self) -> str:
        # KeyError (a base of some subclasses) would show repr(message).
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ConfigurationError(PacificaError, ValueError):
    """An argument or environment variable cannot be used as given."""


class UnsupportedHashError(ConfigurationError):
    """The ``hashfunc`` is not in :data:`hashlib.algorithms_available`."""


class UsageError(ConfigurationError, TypeError):
    """A call's arguments fit none of the supported calling conventions.

    Python itself raised TypeError for such calls against the old signatures.
    """


class MetadataError(PacificaError):
    """Base of the metadata (MetaData, MetaObj, FileObj) errors."""


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
    """Base of the errors found while bundling files."""


class FileDataError(BundleError, ValueError, KeyError):
    """A ``file_data`` entry is missing a key or holds an unusable value.

    ``problems`` lists every ``(index, description)`` found, also those the
    message leaves out to stay short.
    """

    def __init__(self, message: str, problems: Iterable[Tuple[int, str]] = ()) -> None:
        super().__init__(message)
        self.problems: List[Tuple[int, str]] = list(problems)


class FileChangedError(BundleError, OSError):
    """A file's length differed from its declared ``size`` while it was bundled."""


class RecordError(PacificaError, ValueError, TypeError):
    """A transaction info or cloud event lacks a field, or has one of the wrong type."""


class TransportError(PacificaError, requests.RequestException):
    """Base of the errors talking to a server."""


class ServerConnectionError(TransportError, requests.ConnectionError):
    """The server could not be reached, or the connection broke."""


class PacificaTimeoutError(PacificaError, TimeoutError):
    """Base of the errors for a deadline that passed."""


class RequestTimeout(TransportError, PacificaTimeoutError, requests.Timeout):
    """A request did not complete within its timeout or deadline."""


class HTTPStatusError(TransportError, requests.HTTPError):
    """The server answered with a status the call cannot accept.

    ``status_code`` is the HTTP status, ``body`` an excerpt of the reply text
    and ``url`` the URL without credentials.
    """

    def __init__(self, message: str, status_code: int, body: str = '', url: str = '') -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body[:BODY_EXCERPT_LIMIT]
        self.url = url


class InvalidResponseError(PacificaError, ValueError, KeyError):
    """The server's reply is not JSON, or lacks what the call needs."""


class PolicyError(PacificaError):
    """Base of the errors reported by the Policy server."""


class UnknownUserError(PolicyError, IndexError):
    """The network id matches no user known to Policy."""


class PolicyRejectedError(PolicyError, ValueError):
    """Policy refused the metadata; ``reply`` holds what it said."""

    def __init__(self, message: str, reply: Any = None) -> None:
        super().__init__(message)
        self.reply = reply


class IngestError(PacificaError):
    """Base of the errors of an upload to, or a job on, the Ingest server."""


class UploadRejectedError(IngestError):
    """Ingest did not accept the upload (no job id in its answer)."""


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


class DownloadError(PacificaError, AssertionError):
    """Base of the download errors (AssertionError, as the old downloader raised)."""


class CartRequestError(DownloadError):
    """The cart server did not answer the cart request with 201."""


class CartFailedError(DownloadError):
    """The cart ended in state ``error``, or the cart server lost it (HEAD 404/500)."""


class CartTimeoutError(DownloadError, PacificaTimeoutError):
    """The cart was not ready before the deadline."""


class CartDownloadError(DownloadError):
    """The cart GET answered with an error status."""

    def __init__(self, message: str, status_code: int, body: str = '') -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body[:BODY_EXCERPT_LIMIT]


class ArchiveError(DownloadError):
    """The cart's tar stream is malformed or ended early."""


class UnsafeArchiveError(ArchiveError):
    """A tar member would be written outside the target or is not a requested plain file."""

    def __init__(self, message: str, member: str = '') -> None:
        super().__init__(message)
        self.member = member


Problem = Tuple[str, str, str]


class VerificationError(DownloadError):
    """Downloaded files that are missing or whose hash differs.

    ``problems`` lists every ``(path, expected, found)``; ``found`` is the
    computed digest, or ``'missing'`` for a file the cart did not deliver.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: List[Problem] = list(problems)
        lines = ['{}: expected {}, found {}'.format(*problem) for problem in self.problems]
        super().__init__('{} file(s) failed verification:\n  {}'.format(
            len(self.problems), '\n  '.join(lines)))
