"""A cluster: endpoints with live state, a load-balancing policy and an upstream adapter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from smg.clusters.endpoint import Endpoint, EndpointState
from smg.clusters.lb import LB_POLICIES
from smg.clusters.lb.base import LoadBalancer, PickContext
from smg.config.model import ClusterConfig
from smg.upstreams import UPSTREAMS
from smg.upstreams.base import Upstream

log = logging.getLogger("smg.clusters")


class Cluster:
    """One configured cluster as it lives in a snapshot."""

    def __init__(
        self, config: ClusterConfig, previous_states: Mapping[str, EndpointState] | None = None
    ) -> None:
        self.config = config
        self.name = config.name
        prev = previous_states or {}
        states: list[EndpointState] = []
        for ec in config.endpoints:
            st = prev.get(Endpoint.parse(ec.url).url)
            if st is None:
                st = EndpointState(Endpoint.parse(ec.url))
            st.weight = ec.weight
            states.append(st)
        self.endpoints: tuple[EndpointState, ...] = tuple(states)
        self.by_url = {s.url: s for s in states}
        self.lb: LoadBalancer = LB_POLICIES.get(config.lb_policy.type)(config.lb_policy.config)
        self.upstream: Upstream = UPSTREAMS.get(config.protocol)(config)

    def pick(self, ctx: PickContext, exclude: frozenset[str] = frozenset()) -> EndpointState | None:
        """Choose an endpoint through the cluster's policy."""
        return self.lb.pick(self.endpoints, ctx, exclude)

    @property
    def served_models(self) -> tuple[str, ...]:
        """Models the endpoints reported at warm-up, in first-seen order."""
        seen: dict[str, None] = {}
        for st in self.endpoints:
            for m in st.models:
                seen.setdefault(m, None)
        return tuple(seen)

    async def warm(self, timeout: float) -> None:
        """First contact with every endpoint: learn the models it serves (bounded in time)."""

        async def one(st: EndpointState) -> None:
            try:
                st.models = await asyncio.wait_for(self.upstream.probe_models(st, timeout), timeout)
            except Exception as exc:  # a worker that is down must not block a reload
                log.info("cluster %s: %s did not list models: %r", self.name, st.url, exc)

        await asyncio.gather(*(one(st) for st in self.endpoints if not st.models))

    async def close(self) -> None:
        """Release connections (called once the snapshots using it drained)."""
        await self.upstream.close()
