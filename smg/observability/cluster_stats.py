"""Per-cluster event metrics: upstream attempts, retries, LB decisions."""

from __future__ import annotations

from smg.observability import metrics
from smg.observability.fast import CounterChild, HistogramChild

_MAX_REASONS = 256
"""Reasons carry figures (``in_flight=3``): past this many, kinds are looked up each time."""


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


class Decisions:
    """``smg_lb_decisions_total`` of one policy instance, labelled with its cluster."""

    __slots__ = ("_by_reason", "cluster", "policy")

    def __init__(self, policy: str, cluster: str = "") -> None:
        self.policy = policy
        self.cluster = cluster
        self._by_reason: dict[str, CounterChild] = {}
        """Counter by LB reason: reasons repeat, so each kind is worked out once."""

    def bind(self, cluster: str) -> None:
        """Label the counts with the cluster's name."""
        self.cluster = cluster
        self._by_reason.clear()

    def count(self, kind: str) -> None:
        """One more decision of ``kind`` (``hit``, ``miss``, ``sticky``, ``pick``, ...)."""
        metrics.LB_DECISIONS.labels(self.cluster, self.policy, kind).inc()

    def count_reason(self, reason: str) -> None:
        """One more decision, of the kind of ``reason`` (see ``reason_kind``)."""
        child = self._by_reason.get(reason)
        if child is None:
            child = metrics.LB_DECISIONS.labels(self.cluster, self.policy, reason_kind(reason))
            if len(self._by_reason) < _MAX_REASONS:
                self._by_reason[reason] = child
        child.inc()


class ClusterStats:
    """The cluster's counters and histograms (label children come from the families)."""

    __slots__ = ("_attempts", "_decisions", "_pick_time", "cluster")

    def __init__(self, cluster: str, policy: str, policy_counts_itself: bool) -> None:
        self.cluster = cluster
        self._pick_time = metrics.LB_DECISION_DURATION.labels(cluster, policy)
        # Policies with their own ``Decisions`` count richer kinds themselves.
        self._decisions = None if policy_counts_itself else Decisions(policy, cluster)
        self._attempts: dict[tuple[str, str], tuple[CounterChild, HistogramChild]] = {}

    def decision(self, reason: str, seconds: float) -> None:
        """One routing decision and how long it took."""
        self._pick_time.observe(seconds)
        if self._decisions is not None:
            self._decisions.count_reason(reason)

    def attempt(self, endpoint: str, outcome: str, seconds: float) -> None:
        """One upstream attempt: to ``endpoint``, ``ok`` or an error kind, time to head."""
        pair = self._attempts.get((endpoint, outcome))
        if pair is None:
            pair = self._attempts[endpoint, outcome] = (
                metrics.UPSTREAM_ATTEMPTS.labels(self.cluster, endpoint, outcome),
                metrics.UPSTREAM_ATTEMPT_DURATION.labels(self.cluster, outcome),
            )
        pair[0].inc()
        pair[1].observe(seconds)

    def retry(self, kind: str) -> None:
        """A retry caused by an error of ``kind``."""
        metrics.RETRIES.labels(self.cluster, kind).inc()

    def exhausted(self, reason: str) -> None:
        """A retryable failure that was not retried, and why."""
        metrics.RETRIES_EXHAUSTED.labels(self.cluster, reason).inc()

    def cancelled(self) -> None:
        """The client went away and the upstream request was cancelled."""
        metrics.UPSTREAM_CANCELLATIONS.labels(self.cluster).inc()
