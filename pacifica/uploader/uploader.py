"""Send bundles to the Ingest server and follow their jobs.

Ingest opens a new job for every upload POST it receives, so an upload is
never repeated behind the caller's back (the HTTP core retries a POST only
when the connection failed before anything was sent). The body streams in
``config.chunk_size`` pieces with an exact ``Content-Length``; a source that
delivers a different number of bytes is caught before the server has a
complete body.
"""
from __future__ import annotations

import io
import logging
import math
import os
import stat
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

from pacifica._client.exceptions import (
    BundleError, ConfigurationError, HTTPStatusError, IngestJobFailedError, InvalidResponseError,
    JobTimeoutError, RequestTimeout, ServerConnectionError, TransportError, UploadLengthError,
    UploadRejectedError, UploadStatusError,
)
from pacifica._client.redact import redact_auth, redact_document, redact_url
from pacifica._client.keywords import drop_unknown_keywords
from pacifica._client.rules import seconds, seconds_or_none
from pacifica._client.endpoints import INGEST_PATHS, INGEST_SERVER, complete_url
from pacifica._client.transport import HttpClient
from pacifica._client.datasets import DatasetLookup, ServerFile
from pacifica._client.ingestcheck import verify_transaction

from .common import CommonBase

LOGGER = logging.getLogger(__name__)

_URL_PARTS = [*INGEST_SERVER, *INGEST_PATHS, ('upload_url', None), ('status_url', None)]
_KEYWORDS = frozenset(part for part, _ in _URL_PARTS) | {'auth', 'timeout', 'config'}

#: The last task of a successful ingest job.
FINAL_TASK = 'ingest metadata'
#: A poll made when the wait's deadline is (nearly) reached may still take this long.
_LAST_POLL_SECONDS = 1.0


class _AbortUpload(Exception):
    """Carries an error out of the request body.

    urllib3 takes any OSError raised while sending for a broken connection
    (and requests turns it into ConnectionError); this class passes through
    both untouched, and :meth:`Uploader._post_upload` re-raises ``error``.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def _byte_view(chunk: Any) -> memoryview:
    """Return ``chunk`` as a flat byte view (str is encoded as UTF-8)."""
    if isinstance(chunk, str):
        chunk = chunk.encode('utf-8')
    view = memoryview(chunk)
    if view.format != 'B' or view.ndim != 1:
        view = view.cast('B')
    return view


class _StreamBody:
    """A request body read once from an iterable of byte chunks; requests sends it chunked.

    Each chunk is fully sent before the next one is asked for, so a source may
    reuse its buffer. Iterating a second time, after bytes went out, refuses.
    """

    def __init__(self, open_chunks: Callable[[], Iterable[Any]], length: Optional[int] = None) -> None:
        self._open_chunks = open_chunks
        self._length = length
        self._started = False

    def __iter__(self) -> Iterator[memoryview]:
        if self._started:
            raise _AbortUpload(UploadRejectedError('refusing to send an upload body a second time'))
        return self._stream()

    def _stream(self) -> Iterator[memoryview]:
        self._started = True
        source: Any = None
        try:
            source = self._open_chunks()
            yield from self._checked(iter(source))
        except _AbortUpload:
            raise
        except Exception as err:  # noqa: BLE001 - every source error must reach the caller as itself
            raise _AbortUpload(err) from err
        finally:
            close = getattr(source, 'close', None)
            if callable(close):
                close()

    def _checked(self, chunks: Iterator[Any]) -> Iterator[memoryview]:
        expected = self._length
        sent = 0
        for chunk in chunks:
            view = _byte_view(chunk)
            size = view.nbytes
            if not size:
                continue
            if expected is None:
                sent += size
                yield view
                continue
            if sent + size > expected:
                raise self._length_error(sent + size)
            sent += size
            if sent < expected:
                yield view
                continue
            # The announced length is reached: hold the last byte back until the
            # source proves it is exhausted, so a too-long source never leaves
            # the server with a complete body. Copy it first: the next chunk
            # may overwrite the buffer.
            last_byte = bytes(view[-1:])
            if size > 1:
                yield view[:-1]
            for extra in chunks:
                if _byte_view(extra).nbytes:
                    raise self._length_error(sent + _byte_view(extra).nbytes)
            yield memoryview(last_byte)
            return
        if expected is not None and sent != expected:
            raise self._length_error(sent)

    def _length_error(self, actual: int) -> UploadLengthError:
        assert self._length is not None
        more = 'at least ' if actual > self._length else ''
        return UploadLengthError('the upload source delivered {}{} bytes but {} were announced as Content-Length; '
                                 'the upload was abandoned before it completed'.format(more, actual, self._length),
                                 expected=self._length, actual=actual)


class _SizedStreamBody(_StreamBody):
    """A :class:`_StreamBody` of known length: requests sends ``Content-Length``."""

    _length: int

    def __len__(self) -> int:
        return self._length


def _declared_length(read_fd: Any) -> Optional[int]:
    """Return the bytes left in ``read_fd``, or None when it cannot tell (a pipe, a socket)."""
    length = getattr(read_fd, 'len', None)
    if isinstance(length, int):
        return length
    if hasattr(read_fd, '__len__'):
        return len(read_fd)
    try:
        info = os.fstat(read_fd.fileno())
        if stat.S_ISREG(info.st_mode):
            return max(0, info.st_size - read_fd.tell())
    except (AttributeError, OSError, ValueError):
        pass
    try:
        if read_fd.seekable():
            position = read_fd.tell()
            end = read_fd.seek(0, os.SEEK_END)
            read_fd.seek(position)
            return max(0, end - position)
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _is_transient(err: TransportError) -> bool:
    """True for errors a later poll may not see again (server restarting, network blip)."""
    if isinstance(err, (ServerConnectionError, RequestTimeout)):
        return True
    return isinstance(err, HTTPStatusError) and (err.status_code >= 500 or err.status_code == 429)


def _percent(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


class Uploader(CommonBase):
    """Client of one Ingest server: upload bundles and follow the jobs they start.

    Keywords: the endpoint parts ``proto`` (``http``), ``addr``
    (``127.0.0.1``), ``port`` (``8066``), ``upload_path`` (``/upload``),
    ``status_path`` (``/get_state``), or whole ``upload_url`` /
    ``status_url``; each falls back to env ``INGEST_<PART>``. ``auth``: a dict
    of extra requests keywords (``auth``, ``cert``, ``verify``, ``headers``,
    ...). ``timeout``: seconds or a (connect, read) pair. ``config``: a
    :class:`~pacifica._client.config.TransferConfig`.
    """

    _http: HttpClient
    _proto: Any = None
    _addr: Any = None
    _port: Any = None
    _upload_path: Any = None
    _status_path: Any = None
    _upload_url: Any = None
    _status_url: Any = None

    def __init__(self, **kwargs: Any) -> None:
        """Set the Ingest endpoints and this object's HTTP session."""
        kwargs = drop_unknown_keywords('Uploader()', kwargs, _KEYWORDS)
        self._http = HttpClient.from_keywords(kwargs)
        self._server_url(_URL_PARTS, 'INGEST', kwargs)
        where = (self._proto, self._addr, self._port)
        self._upload_url = complete_url(self._upload_url, *where, self._upload_path, 'Ingest upload URL')
        self._status_url = complete_url(self._status_url, *where, self._status_path, 'Ingest status URL')
        self._setup_requests_session()
        LOGGER.debug('Upload URL %s status URL %s auth %s', redact_url(self._upload_url),
                     redact_url(self._status_url), redact_auth(self._http.auth))

    # -- uploads ------------------------------------------------------------
    def upload(self, read_fd: Any, content_length: Optional[int] = None) -> Any:
        """Upload the bytes read from ``read_fd`` and return the new job's id.

        ``read_fd`` is a binary file-like object, or any object with
        ``read(size)`` (and, to announce its length, a ``len`` attribute).
        Without ``content_length`` the length comes from ``len`` or the file's
        size; when unknown the body is sent chunked. UploadLengthError when
        the source does not deliver exactly the announced bytes.
        """
        if isinstance(read_fd, (bytes, bytearray, memoryview)):  # 0.3.1 handed these to requests as they were
            read_fd = io.BytesIO(read_fd)
        elif not callable(getattr(read_fd, 'read', None)):
            raise ConfigurationError('upload needs a binary file-like object with read(size), not a {}'.format(
                type(read_fd).__name__))
        length = _declared_length(read_fd) if not content_length else self._byte_count(content_length)
        chunk_size = self._http.config.chunk_size

        def read_chunks() -> Iterator[Any]:
            while True:
                data = read_fd.read(chunk_size)
                if not data:
                    return
                yield data

        body = _SizedStreamBody(read_chunks, length) if length else _StreamBody(read_chunks)
        return self._post_upload(body, length or None)

    @staticmethod
    def _byte_count(content_length: Any) -> int:
        try:
            count = int(content_length)
        except (TypeError, ValueError):
            raise ConfigurationError('content_length must be a byte count, not {!r}'.format(content_length)) from None
        if count < 0:
            raise ConfigurationError('content_length must be >= 0, not {!r}'.format(content_length))
        return count

    def upload_bundle(self, bundler: Any, callback: Optional[Callable[[float], Any]] = None) -> Any:
        """Stream ``bundler``'s tar straight into the upload POST and return the job id.

        No temporary file and one pass over the files: the Content-Length is
        ``bundler.content_length()`` and the body ``bundler.iter_bytes(callback=callback)``.
        Errors of the bundler (a file that changed, ...) are raised as they are.
        """
        length = bundler.content_length()
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            raise BundleError('bundler.content_length() returned {!r}, not a positive byte count'.format(length))
        body = _SizedStreamBody(lambda: bundler.iter_bytes(callback=callback), length)
        return self._post_upload(body, length)

    def _post_upload(self, body: _StreamBody, length: Optional[int]) -> Any:
        LOGGER.debug('Uploading %s bytes to %s', length if length is not None else 'an unknown number of',
                     redact_url(self._upload_url))
        try:
            reply = self._http.call('POST', self._upload_url, document=True, bulk=True, data=body,
                                    headers={'Content-Type': 'application/octet-stream'},
                                    allow_redirects=False).document
        except _AbortUpload as abort:
            raise abort.error from abort.error.__cause__
        except HTTPStatusError as err:  # also the KeyError 0.3.1 raised on ingest's error page
            raise UploadStatusError(str(err), err.status_code, err.body, err.url) from None
        job_id = reply.get('job_id') if isinstance(reply, dict) else None
        if job_id is None:
            raise UploadRejectedError('Ingest answered the upload to {} without a job_id: {}'.format(
                redact_url(self._upload_url), self._http.redact(repr(reply), self._upload_url)))
        LOGGER.debug('Upload started ingest job %s', self._http.redact(job_id, self._upload_url))
        return job_id

    # -- job state ------------------------------------------------------------
    def getstate(self, job_id: Any) -> Dict[str, Any]:
        """Return the job's state document (``job_id``, ``state``, ``task``, ``task_percent``, ``exception``, ...)."""
        return self._fetch_state(job_id)

    def _fetch_state(self, job_id: Any, max_seconds: Optional[float] = None) -> Dict[str, Any]:
        state = self._http.call('GET', self._status_url, document=True, params={'job_id': job_id},
                                max_seconds=max_seconds).document
        if not isinstance(state, dict):
            raise InvalidResponseError('Ingest answered the state of job {} with a JSON {}, not an object'.format(
                job_id, type(state).__name__))
        LOGGER.debug('Ingest job %s: %s', job_id, self._http.redact('{} {} {}%'.format(
            state.get('state'), state.get('task'), state.get('task_percent')), self._status_url))
        return state

    def wait(self, job_id: Any, timeout: Optional[float] = None, interval: Optional[float] = None) -> Dict[str, Any]:
        """Poll the job every ``interval`` seconds until it ends; return its final state on success.

        ``interval`` defaults to the config's ``poll_interval``. ``timeout``
        None (or infinity) sets no limit. Success is task ``ingest metadata``
        at 100 percent. IngestJobFailedError (with the server's exception text)
        when the job ends FAILED; JobTimeoutError when ``timeout`` seconds pass
        first. A poll that fails on the network or with a 5xx (after the core's
        retries) is tried again until the deadline; without a timeout, two
        failed polls in a row raise.
        """
        # An interval of 0 would hammer the server: refused, as in TransferConfig.poll_interval.
        pause = self._http.config.poll_interval if interval is None else seconds(interval, name='interval')
        limit = seconds_or_none(timeout, name='timeout', none_means='no limit', infinite=True)
        deadline_at = None if limit is None or math.isinf(limit) else time.monotonic() + limit
        state: Optional[Dict[str, Any]] = None
        last_error: Optional[TransportError] = None
        while True:
            limit = None if deadline_at is None else max(deadline_at - time.monotonic(), _LAST_POLL_SECONDS)
            try:
                state = self._fetch_state(job_id, max_seconds=limit)
            except TransportError as err:
                if not _is_transient(err) or (deadline_at is None and last_error is not None):
                    raise
                last_error = err
                LOGGER.warning('Polling ingest job %s failed, polling again: %s', job_id, err)
            else:
                last_error = None
                if state.get('state') == 'FAILED':
                    raise self._failed(job_id, self._shown(state))
                if state.get('task') == FINAL_TASK and _percent(state.get('task_percent')) >= 100:
                    return state
            now = time.monotonic()
            if deadline_at is not None and now >= deadline_at:
                raise self._timed_out(job_id, timeout, self._shown(state), last_error) from last_error
            next_poll = pause if deadline_at is None else min(pause, deadline_at - now)
            LOGGER.debug('Ingest job %s has not finished; next poll in %.1f s', job_id, next_poll)
            time.sleep(next_poll)

    def verify_ingest(self, job_id: Any, md_obj: Iterable[Any], metadata_url: Optional[str] = None) -> List[ServerFile]:
        """After the job ended: check that its transaction holds exactly the files ``md_obj`` lists.

        ``md_obj`` is the MetaData the Bundler sent (it appended one ``Files``
        record per file). The transaction's files are read from the metadata
        service (``metadata_url``, else env ``METADATA_PROTO``/``_ADDR``/``_PORT``),
        with this object's ``auth`` and ``config``. Returns the server's
        records (:class:`~pacifica._client.datasets.ServerFile`); raises
        IngestVerificationError naming every file that is missing, differs
        in size or hash, or was not sent (ingest's transaction id is the job id).
        """
        lookup = DatasetLookup(metadata_url, config=self._http.config, auth=self._http.auth)
        return verify_transaction(lookup, job_id, md_obj)

    def _shown(self, state: Any) -> Any:
        """A state document as an exception may keep and show it: every text in it redacted."""
        return redact_document(state, self._http.secrets(self._status_url))

    @staticmethod
    def _failed(job_id: Any, state: Dict[str, Any]) -> IngestJobFailedError:
        return IngestJobFailedError('ingest job {} FAILED in task {!r}: {}'.format(
            job_id, state.get('task'), str(state.get('exception') or 'no exception text')), job_id, state)

    @staticmethod
    def _timed_out(job_id: Any, timeout: Any, state: Optional[Dict[str, Any]],
                   last_error: Optional[TransportError]) -> JobTimeoutError:
        if state is None:
            where = 'no state could be read'
        else:
            where = 'last state {} in task {!r} at {}%'.format(state.get('state'), state.get('task'),
                                                               state.get('task_percent'))
        if last_error is not None:
            where += '; the last poll: {}'.format(last_error)
        return JobTimeoutError('ingest job {} did not finish within {:g} s ({})'.format(job_id, float(timeout), where),
                               job_id, state)
