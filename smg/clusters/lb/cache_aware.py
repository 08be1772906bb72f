"""Cache-aware routing: send a prompt where its longest prefix is probably cached already.

A radix tree (``clusters/prefix/tree.py``) remembers which endpoint each routed prompt
went to. For a new request:

1. Load is the in-flight count (exact on every path, see ``EndpointState.acquire``),
   or with ``engine_load`` the larger of it and the engine's running + queued requests.
   Endpoint weights only drain (``weight <= 0``); they do not scale load.
2. The pool is *balanced* when ``max - min <= balance_abs_threshold`` or
   ``max <= balance_rel_threshold * min`` over the eligible endpoints. An endpoint is
   *overloaded* when it alone breaks both bounds against the least loaded one.
3. Balanced: the endpoint holding the longest prefix wins if the matched share of the
   prompt is at least ``cache_threshold`` (ties: least loaded). Otherwise the least
   loaded endpoint (ties: the smallest share of the tree, which spreads cache use).
4. Imbalanced: the same, but only endpoints that are not overloaded may win on a
   match, so affinity survives among them instead of everything jumping to the
   global least loaded; without a good match there, the least loaded one.
5. The prompt is inserted under the chosen endpoint. Retries pass the failed
   endpoints in ``exclude``; they are never chosen again for that request.

The routing key is the whole conversation: in gRPC mode the prompt's token ids as the
tokenize filter produced them (exactly the engine's prefix, so predicted cached tokens
are exact), otherwise the routed text (``PickContext.routed_key()``), computed only
when this policy asks for it. ``observe`` compares the prediction with the engine's
reported cached tokens (``clusters/prefix/validation.py``).

The tree is bounded by ``max_tree_size`` characters (or tokens) in total (all endpoints together).
Eviction is inline and O(1) per node on the insert that crosses the bound; every
``eviction_interval`` a background task also trims the tree to 90% of the bound in
small slices, so that steady traffic rarely pays for eviction on the request path.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from smg.clusters.endpoint import EndpointState
from smg.clusters.health import Spawner
from smg.clusters.lb._config import (
    check_keys,
    get_bool,
    get_duration,
    get_float,
    get_int,
    get_optional_int,
    get_str,
)
from smg.clusters.lb.base import LoadBalancer, PickContext
from smg.clusters.prefix.text import estimated_tokens
from smg.clusters.prefix.tree import PrefixTree
from smg.clusters.prefix.validation import CacheValidator, cached_tokens_in
from smg.observability.cluster_stats import Decisions

DEFAULT_MAX_TREE_SIZE = 1 << 26
# The background pass trims to this share of the bound.
_LOW_WATER = 0.9
# Nodes evicted per slice before the background pass yields to the event loop.
_EVICT_SLICE = 2000

CONFIG_KEYS = (
    "cache_threshold",
    "balance_abs_threshold",
    "balance_rel_threshold",
    "max_tree_size",
    "eviction_interval",
    "engine_load",
    "metrics_interval",
    "metrics_path",
    "seed",
)


class Prediction:
    """What a pick expected: ``tokens`` of the prompt cached on ``url``."""

    __slots__ = ("tokens", "url")

    def __init__(self, url: str, tokens: int) -> None:
        self.url = url
        self.tokens = tokens


class CacheAware:
    """Longest-prefix affinity under load thresholds; keeps affinity when imbalanced."""

    name: str = "cache_aware"

    def __init__(
        self,
        cache_threshold: float = 0.3,
        balance_abs_threshold: int = 64,
        balance_rel_threshold: float = 1.5,
        max_tree_size: int = DEFAULT_MAX_TREE_SIZE,
        eviction_interval: float = 60.0,
        engine_load: bool = False,
        metrics_interval: float = 1.0,
        metrics_path: str = "/metrics",
        seed: int | None = None,
    ) -> None:
        self.cache_threshold = cache_threshold
        self.abs_threshold = balance_abs_threshold
        self.rel_threshold = balance_rel_threshold
        self.eviction_interval = eviction_interval
        self.use_engine_load = engine_load
        self.engine_metrics_interval = metrics_interval if engine_load else 0.0
        """Seconds between engine ``/metrics`` scrapes the cluster runs for us (0: none)."""
        self.engine_metrics_path = metrics_path
        self.tree = PrefixTree(max_tree_size)
        self.validator = CacheValidator(self.name)
        self.decisions = Decisions(self.name)
        self._rand = random.Random(seed).random
        self._reason = "cache_aware"
        self._task: asyncio.Task[None] | None = None
        self._members: frozenset[str] = frozenset()
        self._eps: Sequence[EndpointState] = ()
        self._urls_map: dict[str, EndpointState] = {}

    # -- the decision ---------------------------------------------------------

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """The endpoint with the best cached prefix that the load thresholds allow."""
        use_engine = self.use_engine_load
        owned = self.tree.owned_map().get
        rand = self._rand
        lo = math.inf
        hi = -math.inf
        least: EndpointState | None = None
        least_owned = 0
        ties = 0
        # One lean pass for the balance figures and the least loaded endpoint; the
        # endpoints named in the tree are looked up by URL afterwards.
        for ep in endpoints:
            # ``available`` inlined for a closed circuit (the common case): this loop is
            # the O(n) part of a decision.
            if ep.circuit:
                if not ep.available:
                    continue
            elif not ep.healthy:
                continue
            if ep.weight <= 0 or (exclude and ep.endpoint.url in exclude):
                continue
            load: float = ep.in_flight
            if use_engine:
                e = ep.engine
                if e is not None and e.running + e.waiting > load:
                    load = e.running + e.waiting
            if load > hi:
                hi = load
            if load < lo:
                lo = load
                least, least_owned, ties = ep, owned(ep.endpoint.url, 0), 1
            elif load == lo:
                size = owned(ep.endpoint.url, 0)
                if size < least_owned:
                    least, least_owned, ties = ep, size, 1
                elif size == least_owned:
                    ties += 1
                    if rand() * ties < 1.0:
                        least = ep
        if least is None:
            self._reason = "cache_aware; no_endpoint"
            return None
        retry = f"; retry {len(exclude)}" if exclude else ""
        text = ctx.routed_key()
        if not text:
            ctx.note = None
            return self._decide(least, "no_text", f"cache_aware; no_text{retry}")
        balanced = hi - lo <= self.abs_threshold or hi <= self.rel_threshold * lo
        # Past the thresholds an endpoint may not win on a match (infinite: no limit).
        ceiling = math.inf if balanced else max(lo + self.abs_threshold, lo * self.rel_threshold)
        by_url = self._by_url(endpoints)

        def fit(url: str) -> tuple[EndpointState, float] | None:
            ep = by_url.get(url)
            if ep is None or ep.weight <= 0 or not ep.available or (exclude and url in exclude):
                return None
            load: float = ep.in_flight
            if use_engine:
                e = ep.engine
                if e is not None and e.running + e.waiting > load:
                    load = e.running + e.waiting
            return None if load > ceiling else (ep, load)

        path = self.tree.match(text)
        matched, found = path.best(fit)
        ratio = matched / len(text)
        if found and ratio >= self.cache_threshold:
            chosen, best_load = found[0]
            for ep, load in found[1:]:
                if load < best_load:
                    chosen, best_load = ep, load
            kind = "hit" if balanced else "imbalanced_hit"
            reason = f"cache_aware; hit={ratio:.2f}{'; imbalanced' if not balanced else ''}{retry}"
        else:
            chosen = least
            matched = path.matched(chosen.endpoint.url)
            kind = "miss" if balanced else "load_fallback"
            reason = f"cache_aware; {kind}{retry}"
        url = chosen.endpoint.url
        self.tree.insert_at(path, url)
        ctx.note = Prediction(url, estimated_tokens(matched, isinstance(text, str)))
        return self._decide(chosen, kind, reason)

    def _by_url(self, endpoints: Sequence[EndpointState]) -> dict[str, EndpointState]:
        # The cluster hands over the same immutable tuple on every call; rebuild on change.
        if endpoints is not self._eps or len(endpoints) != len(self._urls_map):
            self._eps = endpoints
            self._urls_map = {ep.endpoint.url: ep for ep in endpoints}
        return self._urls_map

    def _decide(self, ep: EndpointState, kind: str, reason: str) -> EndpointState:
        self._reason = reason
        self.decisions.count(kind)
        return ep

    def reason(self) -> str:
        """``cache_aware; hit=0.82``, ``cache_aware; miss``, ``cache_aware; load_fallback`` ..."""
        return self._reason

    # -- hooks the cluster calls ---------------------------------------------------

    def bind(self, cluster: str, endpoints: Sequence[EndpointState]) -> None:
        """Learn the cluster's name (metric labels) and its endpoints."""
        self.decisions.bind(cluster)
        self.validator.bind(cluster)
        self._members = frozenset(ep.endpoint.url for ep in endpoints)

    def inherit(self, previous: LoadBalancer) -> None:
        """Keep the predecessor's tree across a reload; forget endpoints that left."""
        if not isinstance(previous, CacheAware):
            return
        tree = previous.tree
        tree.max_size = self.tree.max_size
        for url in previous._members - self._members:
            tree.forget(url)
        if tree.size > tree.max_size:
            tree.evict(tree.max_size)
        self.tree = tree

    def observe(self, ep: EndpointState, ctx: PickContext, usage: bytes | None) -> None:
        """Compare the pick's prediction with the cached tokens the engine reported."""
        note = ctx.note
        if not isinstance(note, Prediction) or note.url != ep.endpoint.url:
            return
        if ctx.kind == "embeddings":
            return  # no usage details to compare (and no KV reuse to predict)
        self.validator.record(note.url, note.tokens, cached_tokens_in(usage))

    def start(self, tasks: Spawner) -> None:
        """Start the background eviction pass."""
        if self._task is None and self.eviction_interval > 0:
            self._task = tasks.spawn("cache-aware-eviction", self._evict_loop())

    async def stop(self) -> None:
        """Stop the background eviction pass."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _evict_loop(self) -> None:
        while True:
            await asyncio.sleep(self.eviction_interval)
            await self.trim()

    async def trim(self) -> None:
        """Trim the tree to 90% of its bound, yielding to the loop between slices."""
        tree = self.tree
        target = int(tree.max_size * _LOW_WATER)
        while True:
            if tree.size <= target or not tree.evict(target, _EVICT_SLICE):
                return
            await asyncio.sleep(0)  # let requests run between slices


def create(config: Mapping[str, Any]) -> CacheAware:
    """Build the policy from its config (see the module docstring for the keys)."""
    p = "cache_aware"
    check_keys(p, config, CONFIG_KEYS)
    return CacheAware(
        cache_threshold=get_float(p, config, "cache_threshold", 0.3, 0.0, 1.0),
        balance_abs_threshold=get_int(p, config, "balance_abs_threshold", 64, minimum=0),
        balance_rel_threshold=get_float(p, config, "balance_rel_threshold", 1.5, 1.0),
        max_tree_size=get_int(p, config, "max_tree_size", DEFAULT_MAX_TREE_SIZE, minimum=1),
        eviction_interval=get_duration(p, config, "eviction_interval", 60.0),
        engine_load=get_bool(p, config, "engine_load", False),
        metrics_interval=get_duration(p, config, "metrics_interval", 1.0),
        metrics_path=get_str(p, config, "metrics_path", "/metrics") or "/metrics",
        seed=get_optional_int(p, config, "seed"),
    )
