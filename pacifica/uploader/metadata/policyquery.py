"""Queries to the Policy server: look-ups for the upload form, and metadata validation.

Policy answers ``POST <uploader_url>`` with the rows of a table a user may
see, and ``POST <ingest_url>`` with whether an upload's metadata is
acceptable. Both POSTs only read, so they are retried like GETs.
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, NamedTuple, Optional

from pacifica._client.endpoints import POLICY_PATHS, POLICY_SERVER, complete_url
from pacifica._client.exceptions import (InvalidResponseError, MetadataDecodeError, PolicyRejectedError,
                                         UnknownUserError, UsageError)
from pacifica._client.failures import describe, reply_redact, status_error
from pacifica._client.redact import excerpt, redact_auth, redact_document, redact_url
from pacifica._client.retry import IDEMPOTENT_METHODS
from pacifica._client.transport import HttpClient

from ..common import CommonBase
from .metadata import MetaData, metadata_encode
from .mjson import generate_namedtuple_decoder, generate_namedtuple_encoder, plain_namedtuple

LOGGER = logging.getLogger(__name__)


class _PolicyQueryData(NamedTuple):
    """The fields of :class:`PolicyQueryData`, in 0.3.1's order, each None by default.

    For type checkers; at run time a plain namedtuple, as in 0.3.1.
    """

    user: Any = None
    columns: Any = None
    from_table: Any = None
    where: Any = None


if not TYPE_CHECKING:
    _PolicyQueryData = plain_namedtuple(_PolicyQueryData, 'PolicyQueryData', __name__)
#: The query fields in order, as 0.3.1 exported them.
QUERY_KEYS = list(_PolicyQueryData._fields)

#: The user id that means "no user" (the network id look-up runs as it).
NO_USER = -1

#: Keywords of PolicyQuery that set the endpoint, with their defaults (env prefix POLICY).
_URL_PARTS = [*POLICY_SERVER, *POLICY_PATHS, ('uploader_url', None), ('ingest_url', None)]
#: Keywords that configure the transport rather than the query.
_CLIENT_KEYWORDS = frozenset(part for part, _ in _URL_PARTS) | {'auth', 'timeout', 'config'}


class PolicyQueryData(_PolicyQueryData):
    """The fields of one Policy uploader query: ``user``, ``columns``, ``from_table``, ``where``."""


class PolicyQuery(CommonBase):
    """One query to the Policy server, and the metadata check before an upload.

    ``PolicyQuery(user, columns=None, from_table=None, where=None, **options)``:
    ``user`` is a user id (int or digit string), a network id (looked up in
    Policy) or -1 for no user. Options: the endpoint keywords ``proto``,
    ``addr``, ``port``, ``uploader_path``, ``ingest_path``, ``uploader_url``,
    ``ingest_url`` (else env ``POLICY_<PART>``, else the defaults), ``auth``
    (a dict of extra requests keywords), ``timeout`` and ``config``.
    """

    _http: HttpClient
    pq_data: Optional[PolicyQueryData] = None
    user_id: Any = None
    _proto: Any = None
    _addr: Any = None
    _port: Any = None
    _uploader_path: Any = None
    _ingest_path: Any = None
    _uploader_url: Any = None
    _ingest_url: Any = None

    def __init__(self, user: Any, *args: Any, **kwargs: Any) -> None:
        """Set the endpoint from keywords or environment, resolve ``user`` and keep the query fields."""
        query_fields = {key: value for key, value in kwargs.items() if key not in _CLIENT_KEYWORDS}
        # Both POSTs only read: they are repeated like GETs.
        self._http = HttpClient.from_keywords(kwargs, repeatable_methods=IDEMPOTENT_METHODS | {'POST'})
        self._server_url(_URL_PARTS, 'POLICY', kwargs)
        where = (self._proto, self._addr, self._port)
        self._uploader_url = complete_url(self._uploader_url, *where, self._uploader_path, 'Policy uploader URL')
        self._ingest_url = complete_url(self._ingest_url, *where, self._ingest_path, 'Policy ingest URL')
        self._setup_requests_session()
        LOGGER.debug('Policy URLs %s %s auth %s', redact_url(self._uploader_url), redact_url(self._ingest_url),
                     redact_auth(self._http.auth))
        try:
            self.pq_data = PolicyQueryData(NO_USER, *args, **query_fields)
        except TypeError as err:
            raise TypeError('PolicyQuery: {} (query fields are {}; endpoint keywords are {})'.format(
                err, ', '.join(QUERY_KEYS[1:]), ', '.join(sorted(_CLIENT_KEYWORDS)))) from None
        self.set_user(user)

    # -- the user -----------------------------------------------------------
    def set_user(self, user: Any) -> None:
        """Set the user id: an int or digit string as is, -1 for none, any other string looked up by network id."""
        user_id = _user_id_or_none(user)
        if user_id is None:
            user_id = self._user_id_for_network_id(user)
        self.user_id = user_id
        if self.pq_data is not None:
            self.pq_data = self.pq_data._replace(user=user_id)

    def get_user(self) -> Any:
        """Return the user id the queries run as."""
        return self.user_id

    def _user_id_for_network_id(self, network_id: str) -> Any:
        lookup = PolicyQueryData(user=NO_USER, columns=['_id'], from_table='users', where={'network_id': network_id})
        rows = self._post_query(lookup)
        if not rows:
            raise UnknownUserError('Policy knows no user with network id {!r}'.format(network_id))
        first = rows[0]
        if not isinstance(first, Mapping) or '_id' not in first:
            raise InvalidResponseError('Policy answered the look-up of network id {!r} without an _id: {!r}'.format(
                network_id, first))
        return first['_id']

    # -- JSON form ------------------------------------------------------------
    def tojson(self) -> str:
        """Return the query as Policy reads it: ``user, columns, where, from``, None kept as null."""
        return json.dumps(self.pq_data, cls=PolicyQueryDataEncoder)

    @staticmethod
    def fromjson(json_str: str) -> 'PolicyQuery':
        """Return the PolicyQuery of a :meth:`tojson` text (user -1 when absent)."""
        try:
            pq_data = json.loads(json_str, cls=PolicyQueryDataDecoder)
        except RecursionError:
            raise MetadataDecodeError('the policy query is nested too deeply to decode') from None
        except (TypeError, ValueError) as err:
            if isinstance(err, MetadataDecodeError):
                raise
            raise MetadataDecodeError('not a policy query: {}'.format(err)) from None
        fields = pq_data._asdict()
        user = fields.pop('user')
        try:
            return PolicyQuery(NO_USER if user is None else user, **fields)
        except UsageError as err:
            raise MetadataDecodeError('not a policy query: {}'.format(err)) from None

    # -- requests ---------------------------------------------------------------
    def _post_query(self, pq_data: PolicyQueryData) -> List[Any]:
        body = json.dumps(pq_data, cls=PolicyQueryDataEncoder)
        LOGGER.debug('Policy query %s', body)
        rows = self._http.call('POST', self._uploader_url, document=True, data=body.encode('utf-8'),
                               headers={'Content-Type': 'application/json'}).document
        if not isinstance(rows, list):
            raise InvalidResponseError('Policy answered the query {} with a JSON {}, not a list: {}'.format(
                body, type(rows).__name__, self._http.redact(repr(rows), self._uploader_url)))
        LOGGER.debug('Policy query returned %d row(s)', len(rows))
        return rows

    def get_results(self) -> List[Any]:
        """Run the query and return the rows (a list of objects); HTTPStatusError unless Policy answers 200."""
        assert self.pq_data is not None
        return self._post_query(self.pq_data)

    def valid_metadata(self, md_obj: MetaData) -> Dict[str, Any]:
        """Ask Policy whether ``md_obj`` may be uploaded and return its JSON answer.

        ``{"status": "success"}`` when it may. A refusal is returned too, as
        Policy's error document (``status`` such as ``'412 Precondition
        Failed'``, ``message``, ``traceback``), because programs inspect it;
        :meth:`validate_metadata` raises instead. A reply that is not such a
        JSON object raises HTTPStatusError or InvalidResponseError.
        """
        body = metadata_encode(md_obj)
        LOGGER.debug('Policy metadata check of %d item(s)', len(md_obj))
        answer = self._http.call('POST', self._ingest_url, accept=range(200, 600), document=True,
                                 data=body.encode('utf-8'), headers={'Content-Type': 'application/json'})
        resp, reply = answer.response, answer.document
        what = describe('POST', self._ingest_url)
        if resp.status_code != 200:
            if not (isinstance(reply, dict) and 'status' in reply and 'message' in reply):
                raise status_error(resp, what)
            LOGGER.debug('Policy refused the metadata: HTTP %s %s', resp.status_code,
                         reply_redact(resp, reply.get('message')))
            return reply
        if not isinstance(reply, dict):
            raise InvalidResponseError('{} answered a JSON {}, not an object: {}'.format(
                what, type(reply).__name__, reply_redact(resp, repr(reply))))
        return reply

    def validate_metadata(self, md_obj: MetaData) -> None:
        """Return None when Policy accepts ``md_obj``; raise PolicyRejectedError with its message otherwise."""
        reply = self.valid_metadata(md_obj)
        if reply.get('status') == 'success':
            return
        secrets = self._http.secrets(self._ingest_url)
        message = excerpt(reply.get('message') or reply.get('status') or 'no reason given', secrets)
        raise PolicyRejectedError('Policy rejected the metadata ({}): {}'.format(
            excerpt(reply.get('status'), secrets), message), reply=redact_document(reply, secrets))


def _user_id_or_none(user: Any) -> Optional[int]:
    """The user id ``user`` names directly (an int or a digit string), or None for a network id.

    Anything else (a bool, a fractional or infinite number, a list) raises
    UsageError, a TypeError like the one pacifica-uploader 0.3.1 let escape.
    """
    if isinstance(user, str):
        text = user.strip()
        digits = text[1:] if text.startswith('-') else text
        return int(text) if digits.isdigit() and digits.isascii() else None
    if isinstance(user, int) and not isinstance(user, bool):
        return user
    if isinstance(user, float) and user.is_integer():
        return int(user)
    raise UsageError('a user is an id (int or digit string) or a network id (string), not {!r}'.format(user))


# The JSON key is "from", a Python keyword, so the namedtuple field is from_table.
def _mangle_encode(obj: Dict[str, Any]) -> None:
    """Rename ``from_table`` to ``from``, which moves it last."""
    obj['from'] = obj.pop('from_table')


def _mangle_decode(**json_data: Any) -> PolicyQueryData:
    """Return the PolicyQueryData of a decoded query object (``from`` becomes ``from_table``)."""
    json_data['from_table'] = json_data.pop('from', None)
    return PolicyQueryData(**json_data)


PolicyQueryDataEncoder = generate_namedtuple_encoder(PolicyQueryData, _mangle_encode)
PolicyQueryDataDecoder = generate_namedtuple_decoder(_mangle_decode)

__all__ = ['PolicyQuery', 'PolicyQueryData', 'QUERY_KEYS', 'PolicyQueryDataEncoder', 'PolicyQueryDataDecoder',
           'LOGGER']
