"""Least request: the power of two (or ``choice_count``) random choices on in-flight load."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from smg.clusters.endpoint import EndpointState
from smg.clusters.lb._config import check_keys, get_int, get_optional_int
from smg.clusters.lb.base import PickContext

# Random probes per wanted candidate before giving up on probing (most endpoints are
# unavailable or excluded) and sampling from an explicit list of eligible ones.
_PROBES_PER_CHOICE = 4


def least_loaded(
    endpoints: Sequence[EndpointState],
    exclude: frozenset[str],
    rand: Callable[[], float],
) -> EndpointState | None:
    """The eligible endpoint with the lowest ``(in_flight + 1) / weight``; ties at random.

    ``in_flight + 1`` is the load the endpoint would carry after taking this request:
    among equally busy endpoints the heavier one wins, so weights shape the split even
    while everything is idle. With equal weights this is plain "fewest in flight".
    Endpoints with ``weight <= 0`` are drained and never chosen.
    """
    best: EndpointState | None = None
    best_load = 0
    best_weight = 1
    ties = 0
    for ep in endpoints:
        w = ep.weight
        if w <= 0 or not ep.available or (exclude and ep.endpoint.url in exclude):
            continue
        load = ep.in_flight + 1
        if best is not None:
            # Compare load/w with best_load/best_weight without dividing.
            lhs = load * best_weight
            rhs = best_load * w
            if lhs > rhs:
                continue
            if lhs == rhs:
                ties += 1
                # Reservoir sampling: each of the tied endpoints ends up chosen with 1/ties.
                if rand() * ties >= 1.0:
                    continue
            else:
                ties = 1
        else:
            ties = 1
        best = ep
        best_load = load
        best_weight = w
    return best


class LeastRequest:
    """Samples ``choice_count`` distinct eligible endpoints at random, takes the least loaded.

    Comparing a few random candidates instead of scanning for the global minimum keeps
    several gateway processes (each with its own, partial view of in-flight counts)
    from all piling onto the same "least loaded" worker. When the cluster has no more
    endpoints than ``choice_count`` every one is a candidate. A pick probes random
    positions, so it costs O(choice_count) when most endpoints are eligible; if the
    probes keep hitting unavailable or excluded endpoints it falls back to one pass.
    """

    name: str = "least_request"

    def __init__(self, choice_count: int = 2, seed: int | None = None) -> None:
        if choice_count < 2:
            raise ValueError(f"choice_count must be an integer >= 2 (got {choice_count!r})")
        self.choice_count = choice_count
        self._rng = random.Random(seed)
        self._rand = self._rng.random
        self._in_flight = 0

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """The least loaded of ``choice_count`` random eligible endpoints."""
        if len(endpoints) <= self.choice_count:
            best = least_loaded(endpoints, exclude, self._rand)
        else:
            best = self._probe(endpoints, exclude)
            if best is None:
                eligible = [
                    ep
                    for ep in endpoints
                    if ep.weight > 0
                    and ep.available
                    and not (exclude and ep.endpoint.url in exclude)
                ]
                if len(eligible) > self.choice_count:
                    eligible = self._rng.sample(eligible, self.choice_count)
                best = least_loaded(eligible, frozenset(), self._rand)
        if best is not None:
            self._in_flight = best.in_flight
        return best

    def _probe(
        self, endpoints: Sequence[EndpointState], exclude: frozenset[str]
    ) -> EndpointState | None:
        """Least loaded of ``choice_count`` distinct eligible endpoints found by random probing.

        None when the probe budget ran out first (the caller then samples exactly).
        """
        n = len(endpoints)
        want = self.choice_count
        rand = self._rand
        candidates: list[EndpointState] = []
        for _ in range(want * _PROBES_PER_CHOICE):
            ep = endpoints[int(rand() * n)]
            if (
                ep.weight <= 0
                or not ep.available
                or (exclude and ep.endpoint.url in exclude)
                or ep in candidates
            ):
                continue
            candidates.append(ep)
            if len(candidates) == want:
                return least_loaded(candidates, frozenset(), rand)
        return None

    def reason(self) -> str:
        """``least_request; in_flight=N``: the chosen endpoint's load when it was chosen."""
        return f"least_request; in_flight={self._in_flight}"


def create(config: Mapping[str, Any]) -> LeastRequest:
    """Build the policy from ``choice_count`` (int >= 2, default 2) and ``seed`` (optional)."""
    check_keys("least_request", config, ("choice_count", "seed"))
    return LeastRequest(
        choice_count=get_int("least_request", config, "choice_count", 2, minimum=2),
        seed=get_optional_int("least_request", config, "seed"),
    )
