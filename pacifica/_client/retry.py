"""The retry policy: one budget for every call, as named constants and one formula.

Each client's session mounts adapters with a :class:`PacificaRetry` (urllib3
``Retry``), built once per configuration by :func:`retry_policy`; urllib3
derives each next state with :meth:`Retry.new <urllib3.util.retry.Retry.new>`,
which keeps this class's extra settings. The numbers are fields of
:class:`~pacifica._client.config.TransferConfig` (``retries``,
``backoff_factor``, ``backoff_max``, ``retry_after_max``).

- A failure before any byte of the request was sent (connection refused,
  host name not resolved, no connection within ``connect_timeout``) is
  retried for every call and every method, bulk or not: the server never saw
  the request. Up to ``retries`` retries, and never past the call's deadline.
  A TLS failure is not retried: a retry cannot change certificates or ports.
- After the request was sent, only a repeatable request is retried
  (:data:`IDEMPOTENT_METHODS`; POST only where the caller declares it
  read-only, the Policy queries). Statuses in :data:`RETRY_STATUSES` are
  retried, obeying ``Retry-After`` up to ``retry_after_max`` seconds.
- The pause after the ``n``-th failed attempt (:func:`backoff_seconds`)::

      0                                                for n == 1
      min(backoff_max, backoff_factor * 2 ** (n - 1))  for n >= 2

  With the defaults (5 retries, factor 0.5): 0, 1, 2, 4 and 8 s.
- Each retry is logged at INFO on ``pacifica._client.retry`` (:data:`LOGGER`)
  with its cause and pause.
"""
from __future__ import annotations

import itertools
import logging
import time
from typing import Any, Collection, Optional

from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from .config import DEFAULT_BACKOFF_FACTOR, DEFAULT_BACKOFF_MAX, DEFAULT_RETRIES, TransferConfig
from .deadline import DeadlineExpired, current_call
from .failures import cause_text

#: Where every retry is logged (INFO), whichever layer retries.
LOGGER = logging.getLogger(__name__)

#: Methods whose repetition cannot change the server's state twice.
IDEMPOTENT_METHODS = frozenset({'GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'})
#: Statuses that mean "try again later".
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def backoff_seconds(config: TransferConfig, failures: int) -> float:
    """Seconds to wait after the ``failures``-th failed attempt: the formula of the module docstring."""
    if failures < 2:
        return 0.0
    return min(config.backoff_max, config.backoff_factor * 2 ** (failures - 1))


class PacificaRetry(Retry):
    """urllib3 ``Retry`` with this library's budget: the backoff of :func:`backoff_seconds`,
    ``Retry-After`` capped at ``retry_after_max``, no sleep past the call's deadline, each retry logged.

    :func:`retry_policy` makes the one instance of a configuration; urllib3
    derives each next state with :meth:`new`, which keeps the extra settings.
    """

    def __init__(self, *args: Any, config: Optional[TransferConfig] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = config if config is not None else TransferConfig()

    def new(self, **kwargs: Any) -> 'PacificaRetry':
        kwargs.setdefault('config', self.config)
        return super().new(**kwargs)

    def get_backoff_time(self) -> float:
        failures = len(list(itertools.takewhile(lambda item: item.redirect_location is None, reversed(self.history))))
        return backoff_seconds(self.config, failures)

    def get_retry_after(self, response: Any) -> Optional[float]:
        try:
            seconds = super().get_retry_after(response)
        except InvalidHeader:  # "0.5", "soon": not RFC 9110, so back off as if it were absent
            return None
        return None if seconds is None else min(seconds, self.config.retry_after_max)

    def pause(self, response: Any = None) -> float:
        """Seconds :meth:`sleep` waits before the next attempt."""
        wanted = self.get_retry_after(response) if (response is not None and self.respect_retry_after_header) else None
        return self.get_backoff_time() if wanted is None else wanted

    def increment(self, method: Optional[str] = None, url: Optional[str] = None, response: Any = None,
                  error: Optional[Exception] = None, _pool: Any = None, _stacktrace: Any = None) -> 'PacificaRetry':
        state = current_call()
        if state is not None:
            state.failed(error if error is not None else response)
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        assert isinstance(retry, PacificaRetry)
        if state is not None:
            failure = 'HTTP {}'.format(response.status) if error is None and response is not None else (
                cause_text(error) if error is not None else 'failed')
            LOGGER.info('%s: %s; attempt %d failed, trying again in %.2f s', state.what, failure, state.attempts,
                         retry.pause(response))
        return retry

    def sleep(self, response: Any = None) -> None:
        state = current_call()
        wanted = self.pause(response)
        if state is not None and wanted >= state.remaining():
            raise DeadlineExpired()  # the retry budget is spent: no time for another attempt
        if wanted > 0:
            time.sleep(wanted)


#: The policy of the default :class:`TransferConfig`, as urllib3 keeps ``Retry.DEFAULT``: after a failure
#: before the request went out any method is retried, after it only :data:`IDEMPOTENT_METHODS`; statuses in
#: :data:`RETRY_STATUSES` honour ``Retry-After``; no redirect is followed; a status that stays is returned
#: (the client maps it to HTTPStatusError). Every other policy is a variant of it made with ``new()``.
DEFAULT_POLICY = PacificaRetry(
    total=DEFAULT_RETRIES, connect=DEFAULT_RETRIES, read=DEFAULT_RETRIES, status=DEFAULT_RETRIES, other=0,
    redirect=0, allowed_methods=IDEMPOTENT_METHODS, status_forcelist=RETRY_STATUSES,
    backoff_factor=DEFAULT_BACKOFF_FACTOR, backoff_max=DEFAULT_BACKOFF_MAX, raise_on_status=False,
    raise_on_redirect=False, respect_retry_after_header=True, config=TransferConfig(),
)


def retry_policy(config: TransferConfig, repeatable_methods: Collection[str] = IDEMPOTENT_METHODS) -> Retry:
    """The variant of :data:`DEFAULT_POLICY` for a session of ``config``.

    ``repeatable_methods`` are retried after read errors and retry statuses;
    every method is retried after a failure before the request was sent.
    """
    budget = config.retries
    return DEFAULT_POLICY.new(
        total=budget, connect=budget, read=budget, status=budget,
        allowed_methods=frozenset(method.upper() for method in repeatable_methods),
        backoff_factor=config.backoff_factor, backoff_max=config.backoff_max, config=config,
    )
