"""JSON encoder and decoder factories for namedtuple records.

Kept for programs written against pacifica-uploader 0.3, which build their own
encoders with these helpers. The metadata list itself is encoded by the faster
one-pass code in :mod:`.metadata`, which produces the same text.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Type

from pacifica._client.exceptions import MetadataDecodeError, MetadataEncodeError


def strip_obj(obj: Dict[str, Any]) -> None:
    """Delete, in place, the keys of ``obj`` whose value is None (absent fields stay out of the JSON)."""
    for key in [key for key, value in obj.items() if value is None]:
        del obj[key]


def generate_namedtuple_encoder(cls: type, mangle: Callable[[Dict[str, Any]], None] = strip_obj
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
            fields = o._asdict()  # type: ignore[attr-defined]
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
