"""Power of two choices on engine-reported load (in-flight requests when there is no report)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from smg.clusters.endpoint import EndpointState
from smg.clusters.lb._config import check_keys, get_duration, get_optional_int, get_str
from smg.clusters.lb._load import engine_load, least_by
from smg.clusters.lb.base import PickContext

# Random probes per wanted candidate before falling back to an explicit eligible list.
_PROBES = 8


class PowerOfTwo:
    """Two distinct random eligible endpoints; the one with less load wins.

    Load is the larger of the gateway's in-flight count and the engine's running +
    queued requests from its ``/metrics`` (scraped every ``metrics_interval`` by the
    cluster), so requests sent by other gateways count too. Sampling two rather than
    scanning for the global minimum keeps many gateways with stale views from herding
    onto the same worker. O(1) per pick while most endpoints are eligible.
    """

    name: str = "power_of_two"

    def __init__(
        self, metrics_interval: float = 1.0, metrics_path: str = "/metrics", seed: int | None = None
    ) -> None:
        self.engine_metrics_interval = metrics_interval
        self.engine_metrics_path = metrics_path
        self._rng = random.Random(seed)
        self._rand = self._rng.random
        self._load = 0.0

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """The less loaded of two random eligible endpoints."""
        n = len(endpoints)
        rand = self._rand
        first: EndpointState | None = None
        if n > 2:
            for _ in range(_PROBES):
                ep = endpoints[int(rand() * n)]
                if ep is first or not _eligible(ep, exclude):
                    continue
                if first is None:
                    first = ep
                    continue
                a, b = engine_load(first), engine_load(ep)
                best = first if a * ep.weight <= b * first.weight else ep
                self._load = a if best is first else b
                return best
        eligible = [ep for ep in endpoints if _eligible(ep, exclude)]
        if len(eligible) > 2:
            eligible = self._rng.sample(eligible, 2)
        best_ep = least_by(eligible, frozenset(), engine_load, rand)
        if best_ep is not None:
            self._load = engine_load(best_ep)
        return best_ep

    def reason(self) -> str:
        """``power_of_two; load=N``: the chosen endpoint's load when it was chosen."""
        return f"power_of_two; load={self._load:g}"


def _eligible(ep: EndpointState, exclude: frozenset[str]) -> bool:
    return ep.weight > 0 and ep.available and not (exclude and ep.endpoint.url in exclude)


def create(config: Mapping[str, Any]) -> PowerOfTwo:
    """Build from ``metrics_interval`` (1s; 0: in-flight only), ``metrics_path``, ``seed``."""
    p = "power_of_two"
    check_keys(p, config, ("metrics_interval", "metrics_path", "seed"))
    return PowerOfTwo(
        metrics_interval=get_duration(p, config, "metrics_interval", 1.0),
        metrics_path=get_str(p, config, "metrics_path", "/metrics") or "/metrics",
        seed=get_optional_int(p, config, "seed"),
    )
