"""Smooth weighted round robin (the nginx algorithm): weights honoured without bursts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smg.clusters.endpoint import EndpointState
from smg.clusters.lb._config import check_keys
from smg.clusters.lb.base import PickContext

# A dict entry outlives its endpoint until this much slack piles up, then gets pruned.
_PRUNE_SLACK = 64


class RoundRobin:
    """Smooth weighted round robin over available, non-excluded endpoints.

    Every pick adds each eligible endpoint's weight to its running score, takes the
    highest score (first one on ties) and subtracts the eligible total from it. Over
    any window of ``sum(weights)`` picks each endpoint is chosen ``weight`` times, and
    picks of a heavy endpoint are spread out (5,1,1 → a a b a c a a) instead of sent
    in a burst. Endpoints with ``weight <= 0`` are drained: they get nothing.

    Scores are kept per ``EndpointState`` object, not per list position, so the policy
    stays correct when it is handed a different (reloaded, filtered, reordered) list
    on every call; a newcomer starts at 0. One pick is one pass over the list and
    allocates nothing beyond the score integers. Not thread-safe: one event loop.
    """

    name: str = "round_robin"

    def __init__(self) -> None:
        self._score: dict[EndpointState, int] = {}
        self._largest = 0

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """The eligible endpoint with the highest running score."""
        score = self._score
        best: EndpointState | None = None
        best_score = 0
        total = 0
        for ep in endpoints:
            w = ep.weight
            if w <= 0 or not ep.available or (exclude and ep.endpoint.url in exclude):
                continue
            s = score.get(ep, 0) + w
            score[ep] = s
            total += w
            if best is None or s > best_score:
                best = ep
                best_score = s
        if best is None:
            return None
        score[best] = best_score - total
        n = len(endpoints)
        if n > self._largest:
            self._largest = n
        elif len(score) > 2 * self._largest + _PRUNE_SLACK:
            self._prune(endpoints)
        return best

    def _prune(self, endpoints: Sequence[EndpointState]) -> None:
        # Endpoints that left the cluster (reloads with churn) would otherwise pile up.
        # Live endpoints missing from this particular list just restart at 0.
        keep = set(endpoints)
        self._score = {ep: s for ep, s in self._score.items() if ep in keep}
        self._largest = len(endpoints)

    def reason(self) -> str:
        """Always ``round_robin``: the choice depends on no request property."""
        return "round_robin"


def create(config: Mapping[str, Any]) -> RoundRobin:
    """Build the policy; it takes no options."""
    check_keys("round_robin", config, ())
    return RoundRobin()
