"""Bundle files and their metadata into the tar stream the Pacifica Ingest server accepts.

See :class:`Bundler`: ``Bundler(md_obj, file_data).stream(fileobj)`` writes the
archive; ``content_length()`` tells its exact size beforehand and
``iter_bytes()`` yields it in chunks, for an HTTP body.
"""
from .bundler import Bundler

__all__ = ['Bundler']
