"""Retry decisions: which failures are retried, how long to back off, and the retry budget.

A retry happens only before the first byte reached the client, only to an endpoint that
has not failed this request, and only while the cluster's budget allows: each original
request deposits ``ratio`` retry tokens and a floor of ``min_retries_per_second`` refills
on its own, so a failing cluster sees at most ``ratio`` extra load plus a small constant
(linkerd's retry-budget idea) instead of a retry storm.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from smg.errors import (
    GatewayError,
    UpstreamConnectError,
    UpstreamReset,
    UpstreamStatus,
    UpstreamTimeout,
)

# The budget's memory: deposits older than this are as good as spent.
_BUDGET_WINDOW = 10.0


def failure_class(err: GatewayError) -> str | None:
    """The ``retry_on`` class of an upstream failure, or None if it is not retryable."""
    if isinstance(err, UpstreamConnectError):
        return "connect_failure"
    if isinstance(err, UpstreamReset):
        return "reset"
    if isinstance(err, UpstreamTimeout):
        return "timeout"
    if isinstance(err, UpstreamStatus):
        if err.status == 429:
            return "429"
        if err.status >= 500:
            return "5xx"
    return None


def should_retry(err: GatewayError, retry_on: frozenset[str], codes: frozenset[int]) -> bool:
    """Does the policy retry this failure."""
    cls = failure_class(err)
    if cls is not None and cls in retry_on:
        return True
    return (
        isinstance(err, UpstreamStatus)
        and "retriable_status_codes" in retry_on
        and err.status in codes
    )


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    multiplier: float,
    jitter: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, jittered ±."""
    delay = min(cap, base * multiplier ** (attempt - 1))
    if jitter:
        delay *= 1.0 + jitter * (2.0 * rand() - 1.0)
    return max(0.0, delay)


class RetryBudget:
    """Bounds retries to a share of requests plus a small floor per second."""

    __slots__ = (
        "_clock",
        "_floor",
        "_floor_cap",
        "_last",
        "_min",
        "_ratio",
        "_ratio_cap",
        "_tokens",
    )

    def __init__(
        self,
        ratio: float,
        min_per_second: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ratio = ratio
        self._clock = clock
        self._tokens = 0.0
        self._ratio_cap = max(1.0, ratio * 1000.0)
        self._floor_cap = min_per_second * _BUDGET_WINDOW
        self._floor = self._floor_cap
        self._last = clock()
        self._min = min_per_second

    def deposit(self) -> None:
        """An original request was sent."""
        self._tokens = min(self._ratio_cap, self._tokens + self._ratio)

    def withdraw(self) -> bool:
        """Take one retry from the budget; False if it is exhausted."""
        now = self._clock()
        elapsed = now - self._last
        self._last = now
        if elapsed > 0:
            self._floor = min(self._floor_cap, self._floor + elapsed * self._min)
            # Ratio tokens fade over the window so old traffic does not bank retries forever.
            self._tokens *= max(0.0, 1.0 - elapsed / _BUDGET_WINDOW)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        if self._floor >= 1.0:
            self._floor -= 1.0
            return True
        return False
