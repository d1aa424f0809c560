"""What the sharded-upload tests share: the dataset's metadata, the Uploader's keywords, reading what arrived."""
from __future__ import annotations

from typing import Any, Dict, List

from pacifica.uploader import TransferConfig
from pacifica.uploader.dataset import dataset_tags
from pacifica.uploader.metadata import MetaData, MetaObj
from tests.helpers.ingestd import IngestServer, read_metadata
from tests.helpers.server import Request

#: Quick polls and short timeouts: the stand-in answers at once.
CONFIG = TransferConfig(connect_timeout=2, read_timeout=10, backoff_factor=0.01, poll_interval=0.05)


def metadata() -> MetaData:
    return MetaData([MetaObj(destinationTable='Transactions.submitter', value=10),
                     MetaObj(destinationTable='Transactions.project', value='1234a'),
                     MetaObj(destinationTable='Transactions.instrument', value=54)])


def uploader_kwargs(ingest: IngestServer) -> Dict[str, Any]:
    return {'upload_url': ingest.url + '/upload', 'status_url': ingest.url + '/get_state', 'config': CONFIG}


def uploads(ingest: IngestServer) -> List[Request]:
    """The upload requests that reached the stand-in, in order of arrival."""
    return [request for request in ingest.server.requests if request.method == 'POST' and request.path == '/upload']


def part_of(request: Request) -> int:
    """The ``i`` of an upload's ``pacifica.dataset.part`` tag."""
    tags = dataset_tags(read_metadata(request.body))
    assert tags is not None
    return tags.part


def files_listed(metadata_items: Any) -> List[str]:
    """The archive names of a bundle's Files records (the stand-in checked their bytes and hashes)."""
    return ['/'.join(part for part in ('data', item.get('subdir'), item['name']) if part)
            for item in metadata_items if item.get('destinationTable') == 'Files']
