"""The functional suite: the public API against loopback HTTP servers of the tests' own.

The stand-ins of the commands' servers (``services``: ingest and policy;
``cart``: cartd and the policy record look-up) are shared by the command
tests of both packages and of ``pacifica._client``.
"""
from tests.helpers.commands import cart, services  # noqa: F401 - fixtures for the tests below
