"""A cluster: endpoints with live state, LB policy, upstream adapter, health and outliers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from smg.clusters.endpoint import Endpoint, EndpointState, Target
from smg.clusters.engine_metrics import EngineMetricsScraper
from smg.clusters.health import CHECKED_PROTOCOLS, HealthChecker, Spawner, forget_health
from smg.clusters.lb import LB_POLICIES
from smg.clusters.lb.base import LoadBalancer, PickContext
from smg.clusters.outlier import Clock, OutlierDetector
from smg.config.model import ClusterConfig
from smg.errors import GatewayError
from smg.observability.cluster_stats import ClusterStats
from smg.routing.retry import RetryBudget
from smg.upstreams import UPSTREAMS
from smg.upstreams.base import Upstream

if TYPE_CHECKING:
    from smg.filters.base import RequestContext
    from smg.protocol.request import GatewayResponse

log = logging.getLogger("smg.clusters")


class Cluster:
    """One configured cluster as it lives in a snapshot."""

    def __init__(
        self,
        config: ClusterConfig,
        previous_states: Mapping[str, EndpointState] | None = None,
        clock: Clock | None = None,
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
        # Optional policy hooks (see lb/base.py): metric labels, answer feedback, scraping.
        bind = getattr(self.lb, "bind", None)
        if bind is not None:
            bind(self.name, self.endpoints)
        self.lb_observe: Callable[[Target, PickContext, bytes | None], None] | None = getattr(
            self.lb, "observe", None
        )
        self.engine_metrics: EngineMetricsScraper | None = None
        interval = float(getattr(self.lb, "engine_metrics_interval", 0.0))
        fetch = getattr(self.upstream, "fetch", None)
        if interval > 0 and fetch is not None:
            path = str(getattr(self.lb, "engine_metrics_path", "/metrics"))
            self.engine_metrics = EngineMetricsScraper(
                self.name, self.endpoints, fetch, interval, path
            )
        self.outlier = OutlierDetector(
            self.name, config.outlier_detection, self.endpoints, clock or time.monotonic
        )
        self.health: HealthChecker | None = None
        if config.health_check.enabled and config.protocol in CHECKED_PROTOCOLS:
            self.health = HealthChecker(
                self.name, config.health_check, self.endpoints, self.upstream.probe_health
            )
        rp = config.retry_policy.budget
        self.retry_budget = RetryBudget(rp.ratio, rp.min_retries_per_second)
        self.stats = ClusterStats(self.name, config.lb_policy.type, hasattr(self.lb, "decisions"))
        self.last_reason = ""
        """The policy's reason for the latest pick (read right after ``pick``)."""
        self._started = False

    def pick(self, ctx: PickContext, exclude: frozenset[str] = frozenset()) -> Target | None:
        """Choose an endpoint through the cluster's policy (counted and timed)."""
        lb = self.lb
        t0 = time.perf_counter()
        ep = lb.pick(self.endpoints, ctx, exclude)
        reason = self.last_reason = lb.reason()
        self.stats.decision(reason, time.perf_counter() - t0)
        return ep

    def send(self, ctx: RequestContext, target: Target) -> Awaitable[GatewayResponse]:
        """Send one attempt to what ``pick`` chose (a PD cluster: both legs, ``pd.py``)."""
        return self.upstream.send(ctx, cast(EndpointState, target))

    def exhausted(self, failed: frozenset[str]) -> bool:
        """Whether every endpoint already failed this request (no retry can help)."""
        return len(failed) >= len(self.endpoints)

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

    def start(self, tasks: Spawner) -> None:
        """The cluster went live: take over its endpoints' breakers and health checks.

        Not done at construction, so a reload that fails after building leaves the live
        endpoint state alone. Idempotent.
        """
        if self._started:
            return
        self._started = True
        self.outlier.attach()
        if self.health is not None:
            self.health.start(tasks)
        else:
            forget_health(self.endpoints, self)
        if self.engine_metrics is not None:
            self.engine_metrics.start(tasks)
        lb_start = getattr(self.lb, "start", None)
        if lb_start is not None:
            lb_start(tasks)

    def adopt(self, previous: Cluster) -> None:
        """Take over learned routing state (a cache-aware tree) of the cluster it replaces."""
        inherit = getattr(self.lb, "inherit", None)
        if inherit is not None:
            inherit(previous.lb)

    def record(self, ep: Target, err: GatewayError | None) -> None:
        """Feed one attempt's outcome to outlier detection (``err`` None: success).

        Call once per attempt, after it ended or its response head arrived: 5xx and
        local-origin errors are failures, 4xx successes, 429 and non-upstream errors
        nothing. O(1) for a closed circuit.
        """
        self.outlier.record(cast(EndpointState, ep), err)

    def endpoint_status(self, ep: EndpointState) -> dict[str, Any]:
        """Health and circuit state of ``ep`` for the admin API."""
        doc: dict[str, Any] = {"health": ep.health}
        if ep.breaker is not None:
            doc.update(ep.breaker.describe())
        if ep.engine is not None:
            doc["engine"] = ep.engine.describe()
        return doc

    async def close(self) -> None:
        """Stop health checks, release connections (once the snapshots using it drained)."""
        if self.health is not None:
            await self.health.stop()
        if self.engine_metrics is not None:
            await self.engine_metrics.stop()
        lb_stop = getattr(self.lb, "stop", None)
        if lb_stop is not None:
            await lb_stop()
        await self.upstream.close()
