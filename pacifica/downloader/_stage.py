"""The staging folder of one cart: its files are written there, then put in place a subtree at a time.

A cart's files are written under one hidden folder inside the download
folder, ``<target>/.pacifica-stage-<host>-<pid>-<token>/<path>``, with their
final names below it. After every file verified, :meth:`Stage.place` moves
each top-level subtree whose final name does not exist yet with one rename;
where a folder exists already, it goes down into it and moves the children
that do not exist (files replace stale ones, as before). So a fresh download
costs one rename per top-level name, not one per file. The rules:

- every folder of the target a subtree goes into is checked with ``lstat``
  at that moment (the cached checks of the download are forgotten first):
  a symbolic link or a non-directory where a folder belongs is refused, so
  the moved tree never lands outside the target;
- a rename onto a folder that exists (made meanwhile by another cart, or on
  Windows, where a folder cannot replace one) falls back to the merge;
- :meth:`Stage.place` lists what it moved; the caller undoes it file by file
  (never a whole folder back: another cart may have merged files into it);
- a stage left by a killed run on this host (its process is gone) is
  removed when this process makes its first stage in that target; stages of other
  hosts (a shared file system) and, on Windows, all others are left alone,
  as nothing there tells a live stage from a dead one.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import socket
import threading
from typing import Dict, List, Optional, Sequence, Set

from ._target import Parts, Target

LOGGER = logging.getLogger(__name__)

STAGE_PREFIX = '.pacifica-stage-'
_STAGE_NAME = re.compile(r'^\.pacifica-stage-([A-Za-z0-9]*)-([0-9]+)-[0-9a-f]{16}$')
#: Errors of a rename onto a folder that exists (Linux, BSD, Windows).
_EXISTS = (errno.EEXIST, errno.ENOTEMPTY)


def _host() -> str:
    return re.sub('[^A-Za-z0-9]', '', socket.gethostname())[:32]


def stage_name(pid: Optional[int] = None) -> str:
    """A new stage's name: this host, this process, a random token."""
    return '{}{}-{}-{}'.format(STAGE_PREFIX, _host(), os.getpid() if pid is None else pid, os.urandom(8).hex())


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (True when that cannot be known)."""
    if os.name != 'posix' or pid == os.getpid():
        return True  # os.kill ends processes on Windows: a stage there is never judged dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, for example
        return True
    return True


def is_dead_stage(name: str) -> bool:
    """Whether ``name`` is a stage made on this host by a process that is gone."""
    match = _STAGE_NAME.match(name)
    return match is not None and match.group(1) == _host() and not _alive(int(match.group(2)))


def remove_tree(path: str) -> None:
    """Delete a stage and all it holds (links are removed, never followed); problems are logged."""
    def failed(_function: object, failed_path: str, _info: object) -> None:
        if os.path.lexists(failed_path):
            LOGGER.warning('could not remove %s from a download stage', failed_path)
    shutil.rmtree(path, onerror=failed)


#: Download folders this process has cleaned already: a folder is listed once, not once per cart.
_cleaned: Set[str] = set()
_cleaned_lock = threading.Lock()


def clean_dead_stages(root: str) -> None:
    """Remove the stages a killed run on this host left in ``root`` (once per process and folder)."""
    with _cleaned_lock:
        if root in _cleaned:
            return
        _cleaned.add(root)
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        if name.startswith(STAGE_PREFIX) and is_dead_stage(name):
            LOGGER.info('removing %s, left by a download that was killed', os.path.join(root, name))
            remove_tree(os.path.join(root, name))


def by_name(files: Sequence[Parts], depth: int) -> Dict[str, List[Parts]]:
    """``files`` grouped by their name at ``depth``, in their order (references to the same tuples)."""
    groups: Dict[str, List[Parts]] = {}
    for parts in files:
        group = groups.get(parts[depth])
        if group is None:
            groups[parts[depth]] = [parts]
        else:
            group.append(parts)
    return groups


class Stage:
    """The hidden folder one cart's files are written into before they take their final names."""

    def __init__(self, target: Target) -> None:
        target.directory((), create=True)
        clean_dead_stages(target.root)
        while True:
            name = stage_name()
            try:
                os.mkdir(os.path.join(target.root, name))
            except FileExistsError:
                continue
            break
        self.target = target
        #: The stage as a target of its own: its folders are checked and made as the download folder's are.
        self.files = Target(target.root, (name,))

    def path(self, parts: Parts) -> str:
        """Where the file ``parts`` is written."""
        return self.files.path(parts)

    def place(self, files: Sequence[Parts], moved: List[Parts]) -> None:
        """Move the staged ``files`` to their final names; each file or folder moved is added to ``moved``."""
        self.target.forget()
        if not self.target.directory((), create=False):
            raise FileNotFoundError(errno.ENOENT, 'the download folder is gone', self.target.root)
        self._place(files, 0, moved)

    def _place(self, files: Sequence[Parts], depth: int, moved: List[Parts]) -> None:
        """Place ``files``, which share their first ``depth`` names, by their name at ``depth``."""
        for group in by_name(files, depth).values():
            parts = group[0][:depth + 1]
            if len(group[0]) == depth + 1:  # a file (no folder has its path)
                os.replace(self.files.path(parts), self.target.path(parts))
                moved.append(parts)
            elif not self.target.directory(parts, create=False) and self._rename(parts):
                moved.append(parts)
            else:
                self._place(group, depth + 1, moved)

    def _rename(self, parts: Parts) -> bool:
        """Move the staged folder ``parts`` to its final name; False when a folder got there first (merge)."""
        final = self.target.path(parts)
        try:
            os.rename(self.files.path(parts), final)
        except OSError as err:
            if err.errno not in _EXISTS or not os.path.lexists(final):  # FileExistsError is EEXIST, Windows too
                raise
            self.target.forget()
            if not self.target.directory(parts, create=False):  # raises for a link or a non-directory
                raise
            return False
        return True

    def remove(self) -> None:
        """Delete the stage and whatever it still holds."""
        remove_tree(self.files.root)
