"""Upload metadata: the MetaData list of MetaObj/FileObj records, its JSON text, and Policy look-ups.

:class:`MetaUpdate` resolves the MetaObj values against the Policy server;
:func:`metadata_encode` / :func:`metadata_decode` convert to and from the
``metadata.txt`` text that Ingest reads.
"""
from .metadata import FileObj, MetaData, MetaObj, metadata_decode, metadata_encode
from .metaupdate import MetaUpdate

__all__ = ['MetaData', 'MetaObj', 'FileObj', 'MetaUpdate', 'metadata_encode', 'metadata_decode']
