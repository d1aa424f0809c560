"""The default executor of a sharded upload: a process pool whose workers die with the coordinator.

And the Bundler keywords of its shards: a shard's read-ahead process is
left off when the shards already fill the cores.
"""
from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import signal
import sys
from typing import Any, Dict, Optional

from pacifica.uploader import TransferConfig

__all__ = ['default_executor', 'start_processes', 'shard_bundler_kwargs']

#: Linux prctl option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def shard_bundler_kwargs(bundler_kwargs: Optional[Dict[str, Any]], running: int) -> Dict[str, Any]:
    """The Bundler keywords of every shard: the caller's, with read-ahead off when the shards fill the cores.

    The read-ahead process gains by using a second core (see
    :mod:`pacifica.uploader.bundler.readahead`); when ``running`` shards at
    once already occupy every core of this machine, it only competes with
    them. A ``config`` the caller gives is kept as it is.
    """
    kwargs = dict(bundler_kwargs or {})
    if 'config' not in kwargs and running >= (os.cpu_count() or 1):
        kwargs['config'] = TransferConfig(read_ahead=False)
    return kwargs


def default_executor(workers: int) -> cf.Executor:
    """A pool of ``workers`` processes for the shards, each ended by the kernel when the coordinator dies."""
    # spawn, not fork: the coordinator runs threads (the job followers), which a fork would copy mid-step.
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context('spawn'),
                                  initializer=_die_with_parent, initargs=(os.getpid(),))


def start_processes(pool: cf.Executor, workers: int) -> None:
    """Have the pool start its ``workers`` processes now, without waiting for them.

    A spawned process imports the library before it takes its first shard;
    started before the planning pass, that start-up overlaps it instead of
    following it. (A process pool starts one process for each task handed
    in while none is idle.)
    """
    for _ in range(workers):
        pool.submit(_started)


def _started() -> None:
    """A task that does nothing: the process that runs it has started, and imported this package."""


def _die_with_parent(parent: int) -> None:
    """Pool worker start-up (Linux): be killed when the coordinator dies, so no upload outlives its run.

    An upload cut short leaves Ingest no bundle; one that went on unseen
    after a SIGKILL could become a transaction after the re-run's resolution
    gave up on it.
    """
    if not sys.platform.startswith('linux'):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the coordinator died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)
