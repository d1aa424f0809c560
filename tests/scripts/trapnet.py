"""Run commands in a private network namespace whose default Pacifica ports are traps.

    python tests/scripts/trapnet.py < plan.json > report.json

The plan names the ports to trap and the commands to run, in order, then the
clean-up commands, which run whatever happened. Each trap is a listener of
this process on 127.0.0.1 and ::1 that records every connection it accepts:
a command that sends anything to a default port (because it ignored the
ports it was given, or fell back to a default) shows up in the report.

The namespace (unshare(CLONE_NEWNET), then loopback up) needs root or
CAP_SYS_ADMIN. Without it the commands run in the machine's own network,
with traps on the default ports that are free; the report says which.
Only the standard library is used: this runs outside the test process.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Set

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFREQ = '16sH14s'
TCP_LISTEN = '0A'


def enter_private_network() -> bool:
    """Move this process into a network namespace of its own with loopback up; False if not allowed."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack(IFREQ, fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack(IFREQ, b'lo', 0, b'')))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(IFREQ, b'lo', flags | IFF_UP, b''))
    return True


class Traps:
    """Listeners on the given ports that record who connected and what they sent first."""

    def __init__(self, ports: List[int]) -> None:
        self.hits: List[Dict[str, Any]] = []
        self.ports: Dict[int, List[str]] = {}
        self._lock = threading.Lock()
        for port in ports:
            for family, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    sock.bind((host, port))
                except OSError:
                    sock.close()  # taken (no namespace) or no IPv6: nothing of ours to trap there
                    continue
                sock.listen(16)
                self.ports.setdefault(port, []).append(host)
                threading.Thread(target=self._accept, args=(sock, port), daemon=True).start()

    def _accept(self, sock: socket.socket, port: int) -> None:
        while True:
            conn, peer = sock.accept()
            conn.settimeout(1.0)
            try:
                first = conn.recv(200)
            except OSError:
                first = b''
            conn.close()
            with self._lock:
                self.hits.append({'port': port, 'peer': str(peer[0]), 'first_bytes': first.decode('latin-1')})


def listening_ports() -> Set[int]:
    """Every TCP port something listens on in this network namespace."""
    found = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == TCP_LISTEN:
                found.add(int(fields[1].rsplit(':', 1)[1], 16))
    return found


def run_step(step: Dict[str, Any]) -> Dict[str, Any]:
    env = dict(os.environ, **step.get('env', {}))
    for name in step.get('unset', []):
        env.pop(name, None)
    try:
        proc = subprocess.run(step['argv'], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=step.get('timeout', 300), check=False)
    except subprocess.TimeoutExpired as exc:
        return {'rc': None, 'stdout': str(exc.stdout or ''), 'stderr': f'{exc.stderr or ""}\n(timed out)'}
    return {'rc': proc.returncode, 'stdout': proc.stdout, 'stderr': proc.stderr}


def main() -> int:
    plan = json.load(sys.stdin)
    private = enter_private_network()
    traps = Traps(plan['ports'])
    report: Dict[str, Any] = {'private_network': private, 'trapped': traps.ports, 'steps': {}}
    try:
        for step in plan['steps']:
            report['steps'][step['name']] = run_step(step)
        report['listening_after_steps'] = sorted(listening_ports() - set(traps.ports))
    finally:
        for step in plan.get('cleanup', []):
            report['steps'][step['name']] = run_step(step)
        report['connections'] = traps.hits
        json.dump(report, sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main())
