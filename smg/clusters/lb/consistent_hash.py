"""Consistent hashing on a routing key: weighted rendezvous (highest random weight) hashing."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from smg.clusters.endpoint import EndpointState
from smg.clusters.lb._config import check_keys, get_str
from smg.clusters.lb.base import PickContext
from smg.clusters.lb.least_request import least_loaded

DEFAULT_HEADER = "x-smg-routing-key"

_MASK64 = (1 << 64) - 1
# Odd 64-bit constant (2**64 / golden ratio): multiplying by it spreads every input bit
# into the high bits, which are the ones that decide the score order.
_MIX = 0x9E3779B97F4A7C15
_INV_2_64 = 1.0 / float(1 << 64)
# The endpoint → hash memo is dropped once it holds this many more entries than the list.
_MEMO_SLACK = 256


def stable_hash64(data: bytes) -> int:
    """A 64-bit hash that is the same in every process and run (unlike ``hash()``)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class ConsistentHash:
    """Sends every request with the same routing key to the same endpoint.

    Why rendezvous hashing rather than a ring: each endpoint scores the key and the
    best eligible score wins, so

    * nothing derived from the endpoint list is cached, hence nothing can go stale.
      ``EndpointState.weight`` is changed in place on reload and the list may differ
      between calls; a ring would need a per-pick staleness check (membership and
      weights) and an O(n * vnodes) rebuild, paid by the first request after a change;
    * shares follow weights exactly (score ``ln(u) / weight``, the exponential-race
      form of weighted HRW) with no virtual-node count to tune;
    * movement is minimal by construction: removing (or marking unavailable, or
      excluding) an endpoint only moves the keys it was winning, each to its
      runner-up; every other key stays. Skipping ineligible endpoints *is* taking the
      next best score, at no extra cost.

    The price is O(n) interpreted work per pick (one blake2b of the key, then a xor,
    multiply and mask per endpoint; endpoint hashes are memoised), against O(log n)
    for a ring: see ``benchmarks/lb_decision``. While all eligible weights are equal
    the raw 64-bit scores are compared and no logarithm is taken. Should clusters of
    hundreds of endpoints need it, a ring cached on the (immutable) endpoint tuple is
    the upgrade path; the key extraction and fallback here would stay as they are.

    The key comes from the ``header`` (default ``x-smg-routing-key``), else from
    ``body_field`` (a dotted path into the JSON body, e.g. ``metadata.session_id``;
    string or integer values). A request without a key goes to the least loaded
    endpoint. Endpoints with ``weight <= 0`` are drained and never chosen.
    """

    name: str = "consistent_hash"

    def __init__(self, header: str = DEFAULT_HEADER, body_field: str | None = None) -> None:
        self.header = header.lower()
        self.body_path: tuple[str, ...] | None = None
        if body_field is not None:
            parts = tuple(body_field.split("."))
            if not all(parts):
                raise ValueError(
                    f"body_field must be a dotted path like 'a.b' (got {body_field!r})"
                )
            self.body_path = parts
        self._ep_hash: dict[EndpointState, int] = {}
        self._random = random.Random().random
        self._reason = "consistent_hash"

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """The best-scoring eligible endpoint for the request's key."""
        key, source = self.routing_key(ctx)
        if key is None:
            self._reason = "consistent_hash; no_key->least_request"
            return least_loaded(endpoints, exclude, self._random)
        self._reason = source
        if len(self._ep_hash) > len(endpoints) + _MEMO_SLACK:
            self._ep_hash.clear()
        return self._rendezvous(endpoints, stable_hash64(key), exclude)

    def routing_key(self, ctx: PickContext) -> tuple[bytes | None, str]:
        """The key bytes and a reason naming where they came from (None: no key)."""
        value = ctx.headers.get(self.header)
        if value is None:
            value = _header_any_case(ctx.headers, self.header)
        if value:
            return value.encode("utf-8", "surrogatepass"), "consistent_hash; key=header"
        if self.body_path is not None and ctx.body is not None:
            node: Any = ctx.body
            for part in self.body_path:
                if not isinstance(node, Mapping):
                    return None, ""
                node = node.get(part)
            if isinstance(node, str):
                if node:
                    return node.encode("utf-8", "surrogatepass"), "consistent_hash; key=body"
            elif isinstance(node, int) and not isinstance(node, bool):
                return str(node).encode(), "consistent_hash; key=body"
        return None, ""

    def _rendezvous(
        self, endpoints: Sequence[EndpointState], key: int, exclude: frozenset[str]
    ) -> EndpointState | None:
        memo = self._ep_hash
        best: EndpointState | None = None
        best_score = -1
        first_weight = 0
        for ep in endpoints:
            w = ep.weight
            if w <= 0 or not ep.available or (exclude and ep.endpoint.url in exclude):
                continue
            if w != first_weight:
                if first_weight:
                    return self._rendezvous_weighted(endpoints, key, exclude)
                first_weight = w
            h = memo.get(ep)
            if h is None:
                h = memo[ep] = _endpoint_hash(ep)
            score = ((key ^ h) * _MIX) & _MASK64
            if score > best_score:
                best = ep
                best_score = score
        return best

    def _rendezvous_weighted(
        self, endpoints: Sequence[EndpointState], key: int, exclude: frozenset[str]
    ) -> EndpointState | None:
        # With u uniform in (0, 1], -ln(u)/w is exponential with rate w; the smallest of
        # such draws belongs to endpoint i with probability w_i / sum(w).
        memo = self._ep_hash
        log = math.log
        best: EndpointState | None = None
        best_score = -math.inf
        for ep in endpoints:
            w = ep.weight
            if w <= 0 or not ep.available or (exclude and ep.endpoint.url in exclude):
                continue
            h = memo.get(ep)
            if h is None:
                h = memo[ep] = _endpoint_hash(ep)
            score = log(((((key ^ h) * _MIX) & _MASK64) + 1) * _INV_2_64) / w
            if score > best_score:
                best = ep
                best_score = score
        return best

    def reason(self) -> str:
        """``consistent_hash; key=header|body`` or ``consistent_hash; no_key->least_request``."""
        return self._reason


def _endpoint_hash(ep: EndpointState) -> int:
    # Keyed by URL, the endpoint's identity, so every process and reload agrees.
    return stable_hash64(ep.endpoint.url.encode("utf-8", "surrogatepass"))


def _header_any_case(headers: Mapping[str, str], lower_name: str) -> str | None:
    # Listeners lower-case header names; this covers a mapping that did not.
    for name, value in headers.items():
        if name.lower() == lower_name:
            return value
    return None


def create(config: Mapping[str, Any]) -> ConsistentHash:
    """Build the policy from ``header`` (default ``x-smg-routing-key``) and ``body_field``."""
    check_keys("consistent_hash", config, ("header", "body_field"))
    header = get_str("consistent_hash", config, "header", None) or DEFAULT_HEADER
    body_field = get_str("consistent_hash", config, "body_field", None)
    try:
        return ConsistentHash(header=header, body_field=body_field)
    except ValueError as exc:
        raise ValueError(f"consistent_hash: {exc}") from exc
