"""Where a server is when nothing says otherwise, for servers that clients of both packages reach.

Each table lists ``(part, default)`` pairs for :meth:`CommonBase._server_url`,
which takes every part from a keyword, else from the environment variable
``<PREFIX>_<PART>``, else from the table. Keeping one table per server means
the uploader's policy queries and the downloader's record look-ups cannot
disagree about where the policy server is.
"""
from __future__ import annotations

from typing import Any, Tuple

#: The policy server's address parts (environment prefix ``POLICY``).
POLICY_SERVER: Tuple[Tuple[str, Any], ...] = (('proto', 'http'), ('addr', '127.0.0.1'), ('port', 8181))
