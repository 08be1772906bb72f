"""Load as load-aware policies see it: in-flight requests, blended with the engine's report."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from smg.clusters.endpoint import EndpointState

LoadFn = Callable[[EndpointState], float]


def in_flight(ep: EndpointState) -> float:
    """Requests this gateway process has in flight on ``ep`` (exact on every path)."""
    return ep.in_flight


def engine_load(ep: EndpointState) -> float:
    """The larger of our in-flight count and the engine's running + queued requests.

    The engine's figure also counts other gateways' requests but is up to one scrape
    interval old; our own count is instant. Without a report it is the in-flight count.
    """
    e = ep.engine
    if e is None:
        return ep.in_flight
    reported = e.running + e.waiting
    return reported if reported > ep.in_flight else ep.in_flight


def least_by(
    endpoints: Sequence[EndpointState],
    exclude: frozenset[str],
    load: LoadFn,
    rand: Callable[[], float],
) -> EndpointState | None:
    """The eligible endpoint with the lowest ``(load + 1) / weight``; ties at random."""
    best: EndpointState | None = None
    best_score = 0.0
    ties = 0
    for ep in endpoints:
        w = ep.weight
        if w <= 0 or not ep.available or (exclude and ep.endpoint.url in exclude):
            continue
        score = (load(ep) + 1.0) / w
        if best is None or score < best_score:
            best, best_score, ties = ep, score, 1
        elif score == best_score:
            ties += 1
            # Reservoir sampling: each tied endpoint ends up chosen with 1/ties.
            if rand() * ties < 1.0:
                best = ep
    return best
