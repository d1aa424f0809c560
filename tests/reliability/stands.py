"""The loopback deployment the reliability tests run against: ingest, policy and cartd stand-ins,
each behind its own fault proxy, and one client of each kind configured to go through the proxies."""
from __future__ import annotations

import dataclasses
import io
import os
from typing import Any, Dict, List

from pacifica.downloader import CartAPI, Downloader
from pacifica.uploader import Uploader
from pacifica.uploader.bundler import Bundler
from pacifica.uploader.metadata import MetaData, MetaObj
from pacifica.uploader.metadata.policyquery import PolicyQuery
from tests.helpers.cartd import CartServer, transaction_info
from tests.helpers.faults import FaultProxy
from tests.helpers.ingestd import IngestServer
from tests.helpers.server import LoopbackServer, Reply

#: The files of the transaction every cart test downloads: id -> (subdir, name, content).
CART_FILES = {
    101: ('raw', 'a.txt', b'alpha\n' * 500),
    102: ('raw/deep', 'b.bin', bytes(range(256)) * 40),
    103: ('', 'c.txt', b''),
}
POLICY_ROWS = [{'_id': 10, 'network_id': 'dmlb2001'}]


def metadata() -> MetaData:
    """The smallest valid upload metadata."""
    return MetaData([MetaObj(destinationTable='Transactions.submitter', value='10', metaID='submitter'),
                     MetaObj(destinationTable='Transactions.project', value='1234a', metaID='project')])


def file_data() -> List[Dict[str, Any]]:
    return [
        {'name': 'data/a.txt', 'size': 6, 'mtime': 1_600_000_000, 'fileobj': io.BytesIO(b'hello\n')},
        {'name': 'data/sub/b.bin', 'size': 3000, 'mtime': 1_600_000_001, 'fileobj': io.BytesIO(b'\x01' * 3000)},
    ]


def tar_of_bundle() -> bytes:
    out = io.BytesIO()
    Bundler(metadata(), file_data()).stream(out)
    return out.getvalue()


@dataclasses.dataclass
class Stands:
    ingest: IngestServer
    ingest_proxy: FaultProxy
    policy: LoopbackServer
    policy_proxy: FaultProxy
    cartd: CartServer
    cart_proxy: FaultProxy
    workdir: str
    config: Any
    auth: Dict[str, Any]
    #: Proxies the clients must not find: their URL becomes a port nobody listens on.
    dead: Dict[str, str] = dataclasses.field(default_factory=dict)

    #: ``user:password@`` put into every URL the clients get (for the secrets tests).
    userinfo: str = ''
    #: The ingest, policy and cartd loopback servers behind the proxies.
    servers: List[LoopbackServer] = dataclasses.field(default_factory=list)

    def base(self, proxy_name: str) -> str:
        """The URL clients use for the server behind ``proxy_name``."""
        url = self.dead.get(proxy_name) or getattr(self, proxy_name).url
        return url.replace('http://', 'http://' + self.userinfo, 1)

    def uploader(self) -> Uploader:
        base = self.base('ingest_proxy')
        return Uploader(upload_url=base + '/upload', status_url=base + '/get_state', config=self.config,
                        auth=self.auth)

    def policy_query(self) -> PolicyQuery:
        return PolicyQuery(10, columns=['_id'], from_table='users', where={'network_id': 'dmlb2001'},
                           uploader_url=self.base('policy_proxy') + '/uploader',
                           ingest_url=self.base('policy_proxy') + '/ingest', config=self.config, auth=self.auth)

    def cart_api(self) -> CartAPI:
        return CartAPI(self.base('cart_proxy'), config=self.config, auth=self.auth)

    def downloader(self) -> Downloader:
        return Downloader(cart_api_url=self.base('cart_proxy'), config=self.config, auth=self.auth)

    def direct_job(self) -> int:
        """A finished ingest job, created behind the proxy's back."""
        direct = Uploader(upload_url=self.ingest.url + '/upload', status_url=self.ingest.url + '/get_state',
                          config=self.config)
        return direct.upload(io.BytesIO(tar_of_bundle()))

    def direct_cart(self) -> str:
        """A staged cart of CART_FILES, created behind the proxy's back; its URL through the proxy."""
        direct = CartAPI(self.cartd.url, config=self.config)
        url = direct.setup_cart(lambda: iter([{'id': fid, 'path': '{}/{}'.format(sub, name).lstrip('/'),
                                               'hashtype': 'sha1', 'hashsum': ''}
                                              for fid, (sub, name, _) in CART_FILES.items()]))
        return self.base('cart_proxy') + '/' + url.rsplit('/', 1)[-1]

    def transinfo(self) -> Dict[str, Any]:
        return transaction_info(CART_FILES)

    def download_dir(self) -> str:
        path = os.path.join(self.workdir, 'download')
        os.makedirs(path, exist_ok=True)
        return path


def _serve(stands: 'Stands', servers: List[LoopbackServer]) -> None:
    """(Re)install the stand-ins' routes and state on the three servers."""
    ingest_server, policy_server, cart_server = servers
    stands.ingest = IngestServer(ingest_server)
    policy_server.route('POST', '/uploader', lambda req: POLICY_ROWS)
    policy_server.route('POST', '/ingest', lambda req: Reply.json({'status': 'success'}))
    stands.cartd = CartServer(cart_server, os.path.join(stands.workdir, 'cartd'))
    for file_id, (_, _, content) in CART_FILES.items():
        stands.cartd.add_file(file_id, content)


def start(workdir: str, config: Any, auth: Dict[str, Any]) -> 'tuple[Stands, list]':
    """Start the stand-ins and proxies; returns them and the closers to call at the end."""
    servers = [LoopbackServer(), LoopbackServer(), LoopbackServer()]
    proxies = [FaultProxy(server.url, lifetime=600) for server in servers]
    stands = Stands(None, proxies[0], servers[1], proxies[1], None, proxies[2], workdir, config, auth,  # type: ignore
                    servers=servers)
    _serve(stands, servers)
    closers = [p.close for p in proxies] + [s.close for s in servers]
    return stands, closers


def reset(stands: 'Stands', workdir: str, config: Any, auth: Dict[str, Any]) -> 'Stands':
    """The same servers and proxies, with fresh stand-ins, settings and counts (one per test)."""
    for proxy in (stands.ingest_proxy, stands.policy_proxy, stands.cart_proxy):
        proxy.reset()
    fresh = dataclasses.replace(stands, workdir=workdir, config=config, auth=auth, dead={}, userinfo='')
    _serve(fresh, stands.servers)
    return fresh
