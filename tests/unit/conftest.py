"""The unit suite opens no sockets: a test here that binds or connects one fails.

Unit tests run the code in memory and on local files only, so they stay fast
and cannot hang on a network. A test that needs a server of its own (a
loopback one from ``tests.helpers.server``) belongs in ``tests/functional``.

The guard patches ``socket.socket.bind``, ``connect`` and ``connect_ex`` from
the start of each test's setup (so fixtures of any scope are covered) to the
end of its teardown. An attempt raises :class:`SocketInUnitTest` and is also
recorded, so a test fails even when the code under test swallows the error
(a client that maps it to a connection failure, a thread that dies). It
guards this process only, not the subprocesses a test starts.
"""
from __future__ import annotations

import socket
from typing import Any, Callable, Generator, List, Optional

import pytest

#: The socket methods that reach a network: the guard replaces these.
GUARDED = ('bind', 'connect', 'connect_ex')


class SocketInUnitTest(RuntimeError):
    """A unit test bound or connected a socket."""


class SocketGuard:
    """Refuse and record every bind/connect while installed."""

    def __init__(self) -> None:
        self.attempts: List[str] = []
        self._saved: Optional[dict] = None

    def install(self) -> None:
        if self._saved is None:
            self._saved = {name: vars(socket.socket).get(name) for name in GUARDED}
            for name in GUARDED:
                setattr(socket.socket, name, self._refusal(name))

    def uninstall(self) -> None:
        if self._saved is not None:
            for name, original in self._saved.items():
                if original is None:
                    delattr(socket.socket, name)  # the C base class's method shows through again
                else:
                    setattr(socket.socket, name, original)
            self._saved = None

    def _refusal(self, name: str) -> Callable[..., Any]:
        def refused(sock: socket.socket, address: Any, *args: Any, **kwargs: Any) -> Any:
            attempt = '{}({!r})'.format(name, address)
            self.attempts.append(attempt)
            raise SocketInUnitTest('{}: unit tests open no sockets; move this test to tests/functional'.format(
                attempt))
        return refused

    def check(self, when: str) -> None:
        """Fail the current test if anything bound or connected a socket so far."""
        if self.attempts:
            found, self.attempts = self.attempts, []
            pytest.fail('socket use in a unit test ({}): {}; tests with servers belong in tests/functional'.format(
                when, ', '.join(found)), pytrace=False)


GUARD = SocketGuard()


def _checked(when: str) -> Generator[None, None, None]:
    """Run one phase; fail it for socket use unless it failed already (then its own error tells)."""
    try:
        result = yield
    except BaseException:
        GUARD.attempts.clear()
        raise
    GUARD.check(when)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    GUARD.attempts.clear()
    GUARD.install()
    result = yield from _checked('setup')
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = yield from _checked('call')
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: Optional[pytest.Item]) -> Generator[None, None, None]:
    try:
        result = yield
    finally:
        GUARD.uninstall()
    GUARD.check('teardown')
    return result
