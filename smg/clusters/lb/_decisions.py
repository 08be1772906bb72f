"""``smg_lb_decisions_total`` for one policy instance, with its label children looked up once."""

from __future__ import annotations

from typing import Any

from smg.observability import metrics


class Decisions:
    """Counts a policy's decisions by a short reason (``hit``, ``miss``, ...)."""

    __slots__ = ("_children", "cluster", "policy")

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.cluster = ""
        self._children: dict[str, Any] = {}

    def bind(self, cluster: str) -> None:
        """Label the counts with the cluster's name."""
        if cluster != self.cluster:
            self.cluster = cluster
            self._children.clear()

    def count(self, reason: str) -> None:
        """One more decision for ``reason``."""
        child = self._children.get(reason)
        if child is None:
            child = self._children[reason] = metrics.LB_DECISIONS.labels(
                self.cluster, self.policy, reason
            )
        child.inc()
