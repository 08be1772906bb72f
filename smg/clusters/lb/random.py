"""Weighted random choice among available endpoints."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from smg.clusters.endpoint import EndpointState
from smg.clusters.lb._config import check_keys, get_optional_int
from smg.clusters.lb.base import PickContext


class WeightedRandom:
    """Picks an available, non-excluded endpoint with probability proportional to weight.

    Two passes over the list (sum the eligible weights, then walk to the drawn point)
    and one random draw; nothing is cached, so any list may be passed on any call.
    Endpoints with ``weight <= 0`` are drained: they get nothing.
    """

    name: str = "random"

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed).random

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """A weighted random eligible endpoint, or None if there is none."""
        total = 0
        for ep in endpoints:
            w = ep.weight
            if w > 0 and ep.available and not (exclude and ep.endpoint.url in exclude):
                total += w
        if total == 0:
            return None
        point = self._random() * total
        last: EndpointState | None = None
        for ep in endpoints:
            w = ep.weight
            if w > 0 and ep.available and not (exclude and ep.endpoint.url in exclude):
                point -= w
                if point < 0:
                    return ep
                last = ep
        # Only reached if float rounding left ``point`` at exactly 0 after the last one.
        return last

    def reason(self) -> str:
        """Always ``random``."""
        return "random"


def create(config: Mapping[str, Any]) -> WeightedRandom:
    """Build the policy; ``seed`` (int, optional) makes the sequence reproducible."""
    check_keys("random", config, ("seed",))
    return WeightedRandom(get_optional_int("random", config, "seed"))
