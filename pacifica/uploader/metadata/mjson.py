"""JSON encoder and decoder factories for namedtuple records.

Kept for programs written against pacifica-uploader 0.3, which build their own
encoders with these helpers. The metadata list itself is encoded by the faster
one-pass code in :mod:`pacifica.uploader.metadata.metadata`, which produces the same text.
"""
from __future__ import annotations

import json
from collections import namedtuple
from typing import Any, Callable, Dict, Type

from pacifica._client.exceptions import MetadataDecodeError, MetadataEncodeError


def plain_namedtuple(declared: Type[Any], name: str, module: str) -> Any:
    """The ``collections.namedtuple`` class 0.3.1 built: ``declared``'s fields, each None by default.

    The records are declared as ``typing.NamedTuple`` classes so that type
    checkers see their fields; at run time they are replaced by this plain
    namedtuple, named after the public class, because a typed one also
    carries ``__annotations__``, which tools such as hypothesis' ``builds()``
    read and 0.3.1's classes never had.
    """
    fields = declared._fields
    return namedtuple(name, fields, defaults=(None,) * len(fields), module=module)


def strip_obj(obj: Dict[str, Any]) -> None:
    """Delete, in place, the keys of ``obj`` whose value is None (absent fields stay out of the JSON)."""
    for key in [key for key, value in obj.items() if value is None]:
        del obj[key]


def generate_namedtuple_encoder(cls: Type[Any], mangle: Callable[[Dict[str, Any]], None] = strip_obj
                                ) -> Type[json.JSONEncoder]:
    """Return a JSONEncoder class turning one ``cls`` instance into a JSON object.

    The object is ``o._asdict()`` after ``mangle`` changed it in place.
    """

    class NamedTupleEncoder(json.JSONEncoder):
        """Encode one record as a JSON object."""

        def encode(self, o: Any) -> str:
            """Return the JSON object text of ``o``; MetadataEncodeError (a TypeError) for other types."""
            if not isinstance(o, cls):
                raise MetadataEncodeError('cannot encode {} as {}: wrong type'.format(
                    type(o).__name__, cls.__name__))
            fields = o._asdict()
            mangle(fields)
            return super().encode(fields)

    NamedTupleEncoder.__qualname__ = NamedTupleEncoder.__name__ = '{}Encoder'.format(cls.__name__)
    return NamedTupleEncoder


def generate_namedtuple_decoder(cls: Callable[..., Any]) -> Type[json.JSONDecoder]:
    """Return a JSONDecoder class whose ``decode(s)`` returns ``cls(**obj)`` for a JSON object."""
    name = getattr(cls, '__name__', type(cls).__name__)

    class NamedTupleDecoder(json.JSONDecoder):
        """Decode a JSON object into a record."""

        def decode(self, s: str, *args: Any, **kwargs: Any) -> Any:
            """Return ``cls(**obj)``; MetadataDecodeError (a TypeError) when the text is no JSON object."""
            try:
                obj = super().decode(s, *args, **kwargs)
            except ValueError as err:
                raise MetadataDecodeError('not JSON: {}'.format(err)) from None
            if not isinstance(obj, dict):
                raise MetadataDecodeError('expected a JSON object for {}, got {}'.format(
                    name, type(obj).__name__))
            return cls(**obj)

    NamedTupleDecoder.__qualname__ = NamedTupleDecoder.__name__ = '{}Decoder'.format(name)
    return NamedTupleDecoder
