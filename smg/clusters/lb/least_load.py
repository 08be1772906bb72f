"""Least load: the endpoint with the fewest requests, as the engines report them."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from smg.clusters.endpoint import EndpointState
from smg.clusters.lb._config import check_keys, get_duration, get_optional_int, get_str
from smg.clusters.lb._load import engine_load, least_by
from smg.clusters.lb.base import PickContext


class LeastLoad:
    """Scans every eligible endpoint for the lowest ``(load + 1) / weight``; ties at random.

    Load is the larger of the gateway's in-flight count and the engine's running +
    queued requests (``vllm:num_requests_*`` / ``sglang:num_*_reqs``, scraped every
    ``metrics_interval``). Ties go to a random one of the tied endpoints. O(n) per
    pick; prefer ``power_of_two`` when many gateways share a fleet (it does not herd).
    """

    name: str = "least_load"

    def __init__(
        self, metrics_interval: float = 1.0, metrics_path: str = "/metrics", seed: int | None = None
    ) -> None:
        self.engine_metrics_interval = metrics_interval
        self.engine_metrics_path = metrics_path
        self._rand = random.Random(seed).random
        self._load = 0.0

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """The least loaded eligible endpoint."""
        best = least_by(endpoints, exclude, engine_load, self._rand)
        if best is not None:
            self._load = engine_load(best)
        return best

    def reason(self) -> str:
        """``least_load; load=N``."""
        return f"least_load; load={self._load:g}"


def create(config: Mapping[str, Any]) -> LeastLoad:
    """Build from ``metrics_interval`` (1s; 0: in-flight only), ``metrics_path``, ``seed``."""
    p = "least_load"
    check_keys(p, config, ("metrics_interval", "metrics_path", "seed"))
    return LeastLoad(
        metrics_interval=get_duration(p, config, "metrics_interval", 1.0),
        metrics_path=get_str(p, config, "metrics_path", "/metrics") or "/metrics",
        seed=get_optional_int(p, config, "seed"),
    )
