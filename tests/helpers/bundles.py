"""Helpers of the bundler tests: valid metadata, reading a bundle back."""
from __future__ import annotations

import io
import tarfile
from typing import Any, List, Tuple

from pacifica.uploader.metadata import MetaData, MetaObj

MTIME = 1545127200  # 2018-12-18T10:00:00 UTC


def valid_metadata() -> MetaData:
    """Metadata that passes is_valid(): two MetaObjs with values."""
    return MetaData([
        MetaObj(sourceTable='Instruments', destinationTable='Transactions.instrument', metaID='instrumentByID',
                value='54'),
        MetaObj(destinationTable='TransactionKeyValue', key='Tag', value='Ünïcode', metaID='tag'),
    ])


def read_members(tar_bytes: bytes) -> List[Tuple[tarfile.TarInfo, bytes]]:
    """Every member of a tar and its data, in order."""
    members = []
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode='r:') as archive:
        for info in archive:
            data = archive.extractfile(info).read() if info.isfile() else b''
            members.append((info, data))
    return members


def bundle_bytes(bundler: Any, **kwargs: Any) -> bytes:
    """What bundler.stream() writes."""
    out = io.BytesIO()
    bundler.stream(out, **kwargs)
    return out.getvalue()
