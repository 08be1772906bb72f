"""Prefill/decode disaggregation: a cluster of two endpoint groups, and the pair one attempt uses.

A ``PdCluster`` is a ``Cluster`` whose ``endpoints`` are the decode group's then the
prefill group's (so health checks, the admin API and the state metrics cover both) and
whose ``lb`` is the decode group's policy; the prefill group's policy lives beside it.
``pick`` chooses a prefill and a decode endpoint through each group's policy (URLs that
failed this request, of either group, excluded) and returns a ``PdPair``: the router's
target for one attempt.

The router treats the pair as it treats an endpoint (``Target``): ``acquire`` counts the
request in flight on both endpoints from the moment of selection; the sender ends the
prefill leg's count when that leg is done (``end_prefill``) and the router's release
ends both, on every path. A failed leg is named with ``blame`` before the error is
raised, so ``url``, ``total_failures``, outlier recording (``record``) and the retry's
exclusion all go to that leg; a success is recorded on both. Each group has its own
circuit-breaker detector, so ``max_ejection_percent`` never empties one group.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

from smg.clusters.cluster import Cluster
from smg.clusters.endpoint import Endpoint, EndpointState, LoadGuard, Target
from smg.clusters.engine_metrics import EngineMetricsScraper
from smg.clusters.health import Spawner
from smg.clusters.lb import LB_POLICIES
from smg.clusters.lb.base import LoadBalancer, PickContext
from smg.clusters.outlier import Clock, OutlierDetector
from smg.config.model import ClusterConfig
from smg.errors import GatewayError
from smg.observability import metrics
from smg.observability.cluster_stats import ClusterStats
from smg.protocol.request import GatewayResponse
from smg.upstreams.pd_base import PdSender, sender_for

if TYPE_CHECKING:
    from smg.filters.base import RequestContext


class PairGuard:
    """Releases both legs' in-flight counts (and probe slots) exactly once each."""

    __slots__ = ("decode", "prefill")

    def __init__(self, prefill: LoadGuard, decode: LoadGuard) -> None:
        self.prefill = prefill
        self.decode = decode

    def release(self) -> None:
        """Give both slots back; later calls do nothing."""
        self.prefill.release()
        self.decode.release()


class PdPair:
    """A prefill and a decode endpoint picked together for one attempt."""

    __slots__ = ("_guard", "bootstrap_port", "decode", "failed", "prefill")

    def __init__(
        self, prefill: EndpointState, decode: EndpointState, bootstrap_port: int | None = None
    ) -> None:
        self.prefill = prefill
        self.decode = decode
        self.bootstrap_port = bootstrap_port
        """The prefill endpoint's configured bootstrap port (style sglang)."""
        self.failed: EndpointState | None = None
        """The leg that failed this attempt, once one did."""
        self._guard: PairGuard | None = None

    @property
    def culprit(self) -> EndpointState:
        """The endpoint the attempt is attributed to: the failed leg, else decode."""
        return self.failed or self.decode

    @property
    def url(self) -> str:
        """The URL the attempt is attributed to."""
        return self.culprit.url

    @property
    def endpoint(self) -> Endpoint:
        """The identity of the endpoint the attempt is attributed to."""
        return self.culprit.endpoint

    @property
    def total_failures(self) -> int:
        """Failures of the endpoint the attempt is attributed to."""
        return self.culprit.total_failures

    @total_failures.setter
    def total_failures(self, value: int) -> None:
        self.culprit.total_failures = value

    def acquire(self) -> PairGuard:
        """Count the attempt in flight on both endpoints until the guard is released."""
        guard = self._guard = PairGuard(self.prefill.acquire(), self.decode.acquire())
        return guard

    def end_prefill(self) -> None:
        """The prefill leg is done: its endpoint no longer carries this request."""
        if self._guard is not None:
            self._guard.prefill.release()

    def blame(self, leg: EndpointState) -> None:
        """Name the leg that failed (the first failure wins)."""
        if self.failed is None:
            self.failed = leg

    def leg_name(self) -> str:
        """``prefill`` or ``decode``: the leg the attempt is attributed to."""
        return "prefill" if self.failed is self.prefill else "decode"


class PdCluster(Cluster):
    """A cluster with a prefill and a decode group (``pd`` in its config)."""

    def __init__(
        self,
        config: ClusterConfig,
        previous_states: Mapping[str, EndpointState] | None = None,
        clock: Clock | None = None,
    ) -> None:
        pd = config.pd
        if pd is None:
            raise ValueError(f"cluster {config.name} has no pd block")
        super().__init__(config, previous_states, clock)
        self.style = pd.style
        n = len(pd.decode.endpoints)
        self.decode_endpoints = self.endpoints[:n]
        self.prefill_endpoints = self.endpoints[n:]
        self.roles = {ep.url: "decode" for ep in self.decode_endpoints}
        self.roles.update((ep.url, "prefill") for ep in self.prefill_endpoints)
        self.bootstrap_ports = {
            Endpoint.parse(e.url).url: e.bootstrap_port for e in pd.prefill.endpoints
        }
        prefill_name = f"{self.name}/prefill"
        self.prefill_lb: LoadBalancer = LB_POLICIES.get(pd.prefill.lb_policy.type)(
            pd.prefill.lb_policy.config
        )
        for lb, name, eps in (
            (self.lb, self.name, self.decode_endpoints),
            (self.prefill_lb, prefill_name, self.prefill_endpoints),
        ):
            bind = getattr(lb, "bind", None)
            if bind is not None:
                bind(name, eps)
        # The decode answer's cached tokens say nothing about a prediction made for prefill.
        self.lb_observe = None
        interval = float(getattr(self.prefill_lb, "engine_metrics_interval", 0.0))
        fetch = getattr(self.upstream, "fetch", None)
        if self.engine_metrics is None and interval > 0 and fetch is not None:
            path = str(getattr(self.prefill_lb, "engine_metrics_path", "/metrics"))
            self.engine_metrics = EngineMetricsScraper(
                self.name, self.endpoints, fetch, interval, path
            )
        now = clock or time.monotonic
        od = config.outlier_detection
        self.outlier = OutlierDetector(self.name, od, self.decode_endpoints, now)
        self.prefill_outlier = OutlierDetector(self.name, od, self.prefill_endpoints, now)
        self.prefill_stats = ClusterStats(
            prefill_name, pd.prefill.lb_policy.type, hasattr(self.prefill_lb, "decisions")
        )
        self._no_pair = {
            group: metrics.PD_PAIRING_FAILURES.labels(self.name, group)
            for group in ("prefill", "decode")
        }
        self.sender: PdSender = sender_for(self)

    def pick(self, ctx: PickContext, exclude: frozenset[str] = frozenset()) -> PdPair | None:
        """A prefill and a decode endpoint, each through its group's policy."""
        t0 = time.perf_counter()
        prefill = self.prefill_lb.pick(self.prefill_endpoints, ctx, exclude)
        t1 = time.perf_counter()
        if prefill is None:
            self._no_pair["prefill"].inc()
            return None
        prefill_reason = self.prefill_lb.reason()
        self.prefill_stats.decision(prefill_reason, t1 - t0)
        decode = self.lb.pick(self.decode_endpoints, ctx, exclude)
        if decode is None:
            self._no_pair["decode"].inc()
            return None
        decode_reason = self.lb.reason()
        self.stats.decision(decode_reason, time.perf_counter() - t1)
        self.last_reason = (
            f"pd {self.style}; prefill={prefill.url} ({prefill_reason}); decode ({decode_reason})"
        )
        return PdPair(prefill, decode, self.bootstrap_ports.get(prefill.url))

    def send(self, ctx: RequestContext, target: Target) -> Awaitable[GatewayResponse]:
        """Both legs of one attempt, through the style's sender."""
        if not isinstance(target, PdPair):
            raise TypeError(f"a PD cluster sends to a PdPair, not {target!r}")
        return self.sender.send(ctx, target)

    def exhausted(self, failed: frozenset[str]) -> bool:
        """No retry can help once every endpoint of either group failed this request."""
        return all(ep.url in failed for ep in self.prefill_endpoints) or all(
            ep.url in failed for ep in self.decode_endpoints
        )

    def record(self, ep: Target, err: GatewayError | None) -> None:
        """A success counts for both legs, a failure for the leg that failed only."""
        if not isinstance(ep, PdPair):
            super().record(ep, err)
            return
        if err is None:
            self.outlier.record(ep.prefill, None)
            self.outlier.record(ep.decode, None)
        else:
            # A breaker consults its own group's detector, whichever records the outcome.
            self.outlier.record(ep.culprit, err)

    def start(self, tasks: Spawner) -> None:
        """Go live: both groups' breakers, health checks, and both policies' tasks."""
        if self._started:
            return
        super().start(tasks)
        self.prefill_outlier.attach()
        lb_start = getattr(self.prefill_lb, "start", None)
        if lb_start is not None:
            lb_start(tasks)

    def adopt(self, previous: Cluster) -> None:
        """Keep both policies' learned state (a cache-aware prefill tree above all)."""
        super().adopt(previous)
        if isinstance(previous, PdCluster):
            inherit = getattr(self.prefill_lb, "inherit", None)
            if inherit is not None:
                inherit(previous.prefill_lb)

    def endpoint_status(self, ep: EndpointState) -> dict[str, Any]:
        """Health and circuit of ``ep``, and its group (and bootstrap port)."""
        doc = super().endpoint_status(ep)
        role = self.roles.get(ep.url, "decode")
        doc["role"] = role
        if role == "prefill":
            doc["bootstrap_port"] = self.bootstrap_ports.get(ep.url)
        return doc

    async def close(self) -> None:
        """Stop both policies' tasks and release connections."""
        lb_stop = getattr(self.prefill_lb, "stop", None)
        if lb_stop is not None:
            await lb_stop()
        await super().close()


def cluster_for(
    config: ClusterConfig, previous_states: Mapping[str, EndpointState] | None = None
) -> Cluster:
    """The cluster a config describes: a ``PdCluster`` when it has ``pd``."""
    if config.pd is not None:
        return PdCluster(config, previous_states)
    return Cluster(config, previous_states)
