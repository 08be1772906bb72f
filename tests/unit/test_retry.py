"""Retry classification, exponential backoff with jitter, and the retry budget."""

from __future__ import annotations

from smg.errors import (
    BadRequest,
    UpstreamConnectError,
    UpstreamReset,
    UpstreamStatus,
    UpstreamTimeout,
)
from smg.routing.retry import RetryBudget, backoff_delay, failure_class, should_retry

DEFAULT = frozenset({"connect_failure", "reset", "5xx"})


def status(code: int) -> UpstreamStatus:
    return UpstreamStatus(code, b"{}", "application/json")


def test_failure_classes() -> None:
    assert failure_class(UpstreamConnectError("x")) == "connect_failure"
    assert failure_class(UpstreamReset("x")) == "reset"
    assert failure_class(UpstreamTimeout("x")) == "timeout"
    assert failure_class(status(503)) == "5xx"
    assert failure_class(status(429)) == "429"
    assert failure_class(status(404)) is None
    assert failure_class(BadRequest("x")) is None


def test_retry_on_selects_classes_and_listed_codes() -> None:
    assert should_retry(status(502), DEFAULT, frozenset())
    assert not should_retry(status(429), DEFAULT, frozenset())
    assert not should_retry(UpstreamTimeout("x"), DEFAULT, frozenset())
    listed = frozenset({"retriable_status_codes"})
    assert should_retry(status(409), listed, frozenset({409}))
    assert not should_retry(status(409), listed, frozenset({410}))


def test_backoff_grows_exponentially_and_is_capped() -> None:
    mid = lambda: 0.5  # noqa: E731 - jitter term cancels out
    delays = [backoff_delay(n, 0.05, 1.0, 2.0, 0.2, mid) for n in range(1, 7)]
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]


def test_jitter_stays_within_its_fraction() -> None:
    lo = backoff_delay(3, 0.1, 10, 2, 0.2, lambda: 0.0)
    hi = backoff_delay(3, 0.1, 10, 2, 0.2, lambda: 1.0)
    assert abs(lo - 0.32) < 1e-9 and abs(hi - 0.48) < 1e-9


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_budget_allows_ratio_of_requests_plus_floor() -> None:
    clock = Clock()
    b = RetryBudget(ratio=0.25, min_per_second=0, clock=clock)
    for _ in range(100):
        b.deposit()
    granted = sum(b.withdraw() for _ in range(100))
    assert granted == 25


def test_budget_floor_refills_with_time_and_is_bounded() -> None:
    clock = Clock()
    b = RetryBudget(ratio=0.0, min_per_second=2, clock=clock)
    assert sum(b.withdraw() for _ in range(100)) == 20  # a full 10 s window of floor
    clock.t += 1.0
    assert sum(b.withdraw() for _ in range(100)) == 2
    clock.t += 1000.0
    assert sum(b.withdraw() for _ in range(100)) == 20


def test_retry_storm_is_cut_off() -> None:
    clock = Clock()
    b = RetryBudget(ratio=0.2, min_per_second=1, clock=clock)
    granted = 0
    for _ in range(1000):  # 1000 failing requests in one second, each wanting 3 retries
        b.deposit()
        granted += sum(b.withdraw() for _ in range(3))
    assert granted <= 0.2 * 1000 + 10 + 1
