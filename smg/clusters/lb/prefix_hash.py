"""Prefix hash: consistent hashing on the prompt's first characters, with bounded load."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from smg.clusters.endpoint import EndpointState
from smg.clusters.lb._config import check_keys, get_float, get_int
from smg.clusters.lb.base import PickContext
from smg.clusters.lb.consistent_hash import _MASK64, _MEMO_SLACK, _MIX, stable_hash64
from smg.clusters.lb.least_request import least_loaded
from smg.observability.cluster_stats import Decisions


class PrefixHash:
    """Requests whose first ``prefix_chars`` characters agree go to the same endpoint.

    The key is the head of the routed text (the conversation as the engine sees it:
    system prompt and first turns), hashed with rendezvous hashing like
    ``consistent_hash``, so every gateway process agrees without shared state and an
    endpoint leaving moves only its own keys. Bounded load (consistent hashing with
    bounded loads): an endpoint may hold at most ``ceil(load_factor * (total + 1) *
    weight / total_weight)`` requests in flight; a fuller one passes the request to the
    next endpoint in the key's rendezvous order. Cheaper than ``cache_aware`` and
    stateless, but it cannot follow a conversation whose head changed.
    """

    name: str = "prefix_hash"

    def __init__(self, prefix_chars: int = 1024, load_factor: float = 1.25) -> None:
        self.prefix_chars = prefix_chars
        self.load_factor = load_factor
        self.decisions = Decisions(self.name)
        self._ep_hash: dict[EndpointState, int] = {}
        self._random = random.Random().random
        self._reason = self.name

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """The key's highest-scoring endpoint that is not over its load bound."""
        text = ctx.routed_text()
        if not text:
            self._reason = "prefix_hash; no_text->least_request"
            self.decisions.count("no_text")
            return least_loaded(endpoints, exclude, self._random)
        key = stable_hash64(text[: self.prefix_chars].encode("utf-8", "surrogatepass"))
        memo = self._ep_hash
        if len(memo) > len(endpoints) + _MEMO_SLACK:
            memo.clear()
        total = 0
        weights = 0
        best: EndpointState | None = None
        best_score = -1
        for ep in endpoints:
            w = ep.weight
            if w <= 0 or not ep.available or (exclude and ep.endpoint.url in exclude):
                continue
            h = memo.get(ep)
            if h is None:
                h = memo[ep] = stable_hash64(ep.endpoint.url.encode("utf-8", "surrogatepass"))
            score = ((key ^ h) * _MIX) & _MASK64
            total += ep.in_flight
            weights += w
            if score > best_score:
                best, best_score = ep, score
        if best is None:
            self._reason = "prefix_hash; no_endpoint"
            return None
        share = self.load_factor * (total + 1) / weights
        if best.in_flight + 1 <= math.ceil(share * best.weight):
            self._reason = "prefix_hash"
            self.decisions.count("hash")
            return best
        # The owner is full: the next in the key's rendezvous order with room is the
        # highest-scoring endpoint that has room. One more pass, no sorting.
        room: EndpointState | None = None
        room_score = -1
        full_scores: list[int] = []
        for ep in endpoints:
            h = memo.get(ep)
            if (
                h is None
                or ep.weight <= 0
                or not ep.available
                or (exclude and ep.endpoint.url in exclude)
            ):
                continue
            score = ((key ^ h) * _MIX) & _MASK64
            if ep.in_flight + 1 <= math.ceil(share * ep.weight):
                if score > room_score:
                    room, room_score = ep, score
            else:
                full_scores.append(score)
        if room is not None:
            walked = sum(1 for sc in full_scores if sc > room_score)
            self._reason = f"prefix_hash; bounded_load walked={walked}"
            self.decisions.count("bounded_load")
            return room
        self._reason = "prefix_hash; all_full->least_request"
        self.decisions.count("all_full")
        return least_loaded(endpoints, exclude, self._random)

    def bind(self, cluster: str, endpoints: Sequence[EndpointState]) -> None:
        """Label decision counts with the cluster's name."""
        self.decisions.bind(cluster)

    def reason(self) -> str:
        """``prefix_hash``, ``prefix_hash; bounded_load walked=N`` ..."""
        return self._reason


def create(config: Mapping[str, Any]) -> PrefixHash:
    """Build from ``prefix_chars`` (default 1024, about 256 tokens) and ``load_factor`` (1.25)."""
    p = "prefix_hash"
    check_keys(p, config, ("prefix_chars", "load_factor"))
    return PrefixHash(
        prefix_chars=get_int(p, config, "prefix_chars", 1024, minimum=1),
        load_factor=get_float(p, config, "load_factor", 1.25, 1.0),
    )
