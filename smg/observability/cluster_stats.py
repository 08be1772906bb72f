"""Per-cluster event metrics with their label children looked up once (not per request)."""

from __future__ import annotations

from typing import Any

from smg.observability import metrics


def reason_kind(reason: str) -> str:
    """The label-safe kind of an LB reason: ``cache_aware; hit=0.82`` → ``hit``.

    Reasons without a qualifier, or whose qualifier is a number (``in_flight=3``,
    ``load=2``), count as ``pick``; ``bucket; 2`` keeps the bucket index.
    """
    _, sep, rest = reason.partition("; ")
    if not sep:
        return "pick"
    kind = rest
    for stop in ("=", " ", "->"):
        kind = kind.partition(stop)[0]
    if kind in ("in_flight", "load"):
        return "pick"
    return kind or "pick"


class ClusterStats:
    """The cluster's counters and histograms, keyed by the few label values that vary."""

    __slots__ = (
        "_attempt_durations",
        "_attempts",
        "_cancellations",
        "_decisions",
        "_exhausted",
        "_pick_time",
        "_retries",
        "cluster",
        "counts_decisions",
        "policy",
    )

    def __init__(self, cluster: str, policy: str, policy_counts_itself: bool) -> None:
        self.cluster = cluster
        self.policy = policy
        self.counts_decisions = not policy_counts_itself
        """Policies with their own ``Decisions`` count richer reasons themselves."""
        self._decisions: dict[str, Any] = {}
        self._pick_time = metrics.LB_DECISION_DURATION.labels(cluster, policy)
        self._attempts: dict[tuple[str, str], Any] = {}
        self._attempt_durations: dict[str, Any] = {}
        self._retries: dict[str, Any] = {}
        self._exhausted: dict[str, Any] = {}
        self._cancellations: Any = None

    def decision(self, reason: str, seconds: float) -> None:
        """One routing decision and how long it took."""
        self._pick_time.observe(seconds)
        if not self.counts_decisions:
            return
        kind = reason_kind(reason)
        child = self._decisions.get(kind)
        if child is None:
            child = self._decisions[kind] = metrics.LB_DECISIONS.labels(
                self.cluster, self.policy, kind
            )
        child.inc()

    def attempt(self, endpoint: str, outcome: str, seconds: float) -> None:
        """One upstream attempt: to ``endpoint``, ``ok`` or an error kind, time to head."""
        key = (endpoint, outcome)
        child = self._attempts.get(key)
        if child is None:
            child = self._attempts[key] = metrics.UPSTREAM_ATTEMPTS.labels(
                self.cluster, endpoint, outcome
            )
        child.inc()
        hist = self._attempt_durations.get(outcome)
        if hist is None:
            hist = self._attempt_durations[outcome] = metrics.UPSTREAM_ATTEMPT_DURATION.labels(
                self.cluster, outcome
            )
        hist.observe(seconds)

    def retry(self, kind: str) -> None:
        """A retry caused by an error of ``kind``."""
        child = self._retries.get(kind)
        if child is None:
            child = self._retries[kind] = metrics.RETRIES.labels(self.cluster, kind)
        child.inc()

    def exhausted(self, reason: str) -> None:
        """A retryable failure that was not retried, and why."""
        child = self._exhausted.get(reason)
        if child is None:
            child = self._exhausted[reason] = metrics.RETRIES_EXHAUSTED.labels(
                self.cluster, reason
            )
        child.inc()

    def cancelled(self) -> None:
        """The client went away and the upstream request was cancelled."""
        if self._cancellations is None:
            self._cancellations = metrics.UPSTREAM_CANCELLATIONS.labels(self.cluster)
        self._cancellations.inc()
