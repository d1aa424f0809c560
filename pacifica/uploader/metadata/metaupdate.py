"""MetaUpdate: the upload form's metadata, filled in from Policy queries."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Set

from pacifica._client.exceptions import InvalidResponseError, MissingQueryResultsError
from pacifica._client.redact import excerpt, secrets_of

from .metadata import MetaData
from .policyquery import _CLIENT_KEYWORDS, PolicyQuery


class MetaUpdate(MetaData):
    """A MetaData whose MetaObj items are resolved against the Policy server as ``user``.

    ``MetaUpdate(user, items=(), auth=None, **policy_options)``. ``auth`` (a
    dict of extra requests keywords) goes with every Policy query;
    ``policy_options`` are PolicyQuery's endpoint and transport keywords
    (``addr``, ``port``, ``uploader_url``, ``timeout``, ``config``, ...).
    ``copy.deepcopy`` copies the items but shares ``auth``: it may hold
    objects that cannot be copied (a Kerberos auth, a session).
    """

    _shared_on_copy = frozenset({'_auth', '_policy_options'})

    def __init__(self, user: Any, *args: Any, auth: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        """Keep ``user`` and ``auth`` for the Policy queries; ``args`` are the list's items."""
        unknown = sorted(set(kwargs) - _CLIENT_KEYWORDS)
        if unknown:
            raise TypeError('MetaUpdate got unexpected keyword argument(s) {}; it takes auth and the '
                            'PolicyQuery keywords {}'.format(', '.join(unknown), ', '.join(sorted(_CLIENT_KEYWORDS))))
        super().__init__(*args)
        self._user = user
        self._auth = {} if auth is None else auth
        self._policy_options = kwargs

    def get_auth(self) -> Dict[str, Any]:
        """Return the ``auth`` dict (the same object, for the Uploader of this upload)."""
        return self._auth

    def _policy_query(self, **fields: Any) -> PolicyQuery:
        return PolicyQuery(self._user, auth=self._auth, **fields, **self._policy_options)

    @staticmethod
    def _dependencies(item: Any) -> Mapping[str, Any]:
        return getattr(item, 'queryDependency', None) or {}

    def query_results(self, meta_id: Any) -> List[Any]:
        """Query Policy for the rows ``self[meta_id]`` may take and return them.

        Columns are its ``queryFields``, the table its ``sourceTable`` and the
        where clause maps each ``queryDependency`` column to the current
        ``value`` of the item it names.
        """
        item = self[meta_id]
        where = {column: self[dep_meta_id].value for column, dep_meta_id in self._dependencies(item).items()}
        query = self._policy_query(columns=item.queryFields, from_table=item.sourceTable, where=where)
        return query.get_results()

    def dependent_meta_id(self, meta_id: Any) -> List[Any]:
        """Return the metaIDs ``self[meta_id]`` depends on (its queryDependency values), itself excluded."""
        return [dep for dep in self._dependencies(self[meta_id]).values() if dep != meta_id]

    def update_parents(self, meta_id: Any) -> None:
        """Refresh ``self[meta_id]`` from Policy, after the items it depends on (each once, cycles allowed).

        Its ``query_results`` become the rows; a falsy ``value`` becomes the
        first row's ``valueField`` column.
        """
        self._update(meta_id, set())

    def _update(self, meta_id: Any, done: Set[Any]) -> None:
        done.add(meta_id)
        for dep_meta_id in self.dependent_meta_id(meta_id):
            if dep_meta_id not in done:
                self._update(dep_meta_id, done)
        results = self.query_results(meta_id)
        item = self[meta_id]._replace(query_results=results)
        if results and not item.value:
            row = results[0]
            try:
                value = row[item.valueField]
            except (KeyError, IndexError, TypeError):
                raise InvalidResponseError('Policy rows for metaID {!r} lack its valueField {!r}: {}'.format(
                    meta_id, item.valueField, excerpt(repr(row), secrets_of(self.get_auth())))) from None
            item = item._replace(value=value)
        self[meta_id] = item

    def directory_prefix(self) -> str:
        """Return the upload's directory: the items with a ``directoryOrder``, in that order, joined by ``/``.

        Each is its ``displayFormat`` filled from its first query result.
        """
        ordered = sorted((item for item in self if getattr(item, 'directoryOrder', None) is not None),
                         key=lambda item: item.directoryOrder)
        parts = []
        for item in ordered:
            if not item.query_results:
                raise MissingQueryResultsError('metaID {!r} has a directoryOrder but no query_results; '
                                               'call update_parents({!r}) first'.format(item.metaID, item.metaID))
            parts.append(item.displayFormat.format(**item.query_results[0]))
        return '/'.join(parts)
