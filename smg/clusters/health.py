"""Active health checks: each endpoint probed on its own jittered schedule."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, Protocol

from smg.clusters.endpoint import EndpointState
from smg.config.model import HealthCheckConfig
from smg.errors import UpstreamTimeout
from smg.observability import metrics

log = logging.getLogger("smg.health")

HEALTHY: Final = "healthy"
UNHEALTHY: Final = "unhealthy"
UNKNOWN: Final = "unknown"

# Each wait is the interval ± this share, so endpoints drift apart instead of being
# probed in lockstep (and several gateway processes do not probe a worker together).
JITTER: Final = 0.1

# Protocols with an active check: HTTP GET of the path, gRPC the engine's HealthCheck
# RPC; cloud APIs are not checked. Endpoints of other protocols stay "unknown".
CHECKED_PROTOCOLS: Final = frozenset({"openai_http", "vllm_grpc", "sglang_grpc", "trtllm_grpc"})

Probe = Callable[[EndpointState, str, float], Awaitable[bool]]
Sleep = Callable[[float], Awaitable[None]]


class Spawner(Protocol):
    """Where the checker starts its tasks (``runtime.tasks.TaskSet``)."""

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Start ``coro`` as a tracked task called ``name``."""
        ...


def forget_health(endpoints: Sequence[EndpointState], owner: object) -> None:
    """No checks for these endpoints any more: they count as healthy, state unknown."""
    for ep in endpoints:
        ep.health_owner = owner
        ep.health_successes = 0
        ep.health_failures = 0
        if ep.health != UNKNOWN:
            log.info("endpoint %s: health checks off; health unknown", ep.url)
        ep.health = UNKNOWN
        ep.healthy = True


class HealthChecker:
    """Probes one cluster's endpoints and moves them in and out of rotation.

    ``unhealthy_threshold`` failed checks in a row take an endpoint out (``healthy``
    False); ``healthy_threshold`` successes in a row bring it back. An endpoint starts
    ``unknown`` and available; its first successful check makes it ``healthy``.
    Counters live on the ``EndpointState``, so they survive reloads too.
    """

    def __init__(
        self,
        cluster: str,
        config: HealthCheckConfig,
        endpoints: Sequence[EndpointState],
        probe: Probe,
        *,
        rand: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.cluster = cluster
        self.config = config
        self.endpoints = endpoints
        self._probe = probe
        self._rand = rand
        self._sleep = sleep
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, tasks: Spawner) -> None:
        """Claim the endpoints and start one checking task per endpoint."""
        for ep in self.endpoints:
            ep.health_owner = self
            self._tasks.append(tasks.spawn(f"health-{self.cluster}-{ep.url}", self._run(ep)))

    async def stop(self) -> None:
        """Cancel the checking tasks and wait for them to end."""
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def next_delay(self, first: bool) -> float:
        """Seconds until the next check: the first one lands anywhere in one interval."""
        interval = self.config.interval
        if first:
            return self._rand() * interval
        return interval * (1.0 + JITTER * (2.0 * self._rand() - 1.0))

    async def _run(self, ep: EndpointState) -> None:
        first = True
        while True:
            await self._sleep(self.next_delay(first))
            first = False
            if ep.health_owner is not self:
                return  # a newer cluster's checker took over this endpoint
            await self.check_once(ep)

    async def check_once(self, ep: EndpointState) -> bool:
        """Probe ``ep`` once, count the result and apply it; True if it passed."""
        timeout = self.config.timeout
        started = time.monotonic()
        try:
            ok = await asyncio.wait_for(self._probe(ep, self.config.path, timeout), timeout)
            result = "success" if ok else "failure"
        except (TimeoutError, UpstreamTimeout):
            ok, result = False, "timeout"
        except Exception as exc:  # refused, reset, bad answer: all mean "not healthy now"
            log.debug("endpoint %s: health check failed: %r", ep.url, exc)
            ok, result = False, "failure"
        metrics.HEALTH_CHECKS.labels(self.cluster, ep.url, result).inc()
        metrics.HEALTH_CHECK_DURATION.labels(self.cluster).observe(time.monotonic() - started)
        self.observe(ep, ok, result)
        return ok

    def observe(self, ep: EndpointState, ok: bool, result: str = "") -> None:
        """Apply one check result to ``ep``'s counters and health."""
        cfg = self.config
        if ok:
            ep.health_failures = 0
            ep.health_successes += 1
            if ep.health == UNKNOWN or (
                ep.health == UNHEALTHY and ep.health_successes >= cfg.healthy_threshold
            ):
                self._set(ep, HEALTHY, result)
        else:
            ep.health_successes = 0
            ep.health_failures += 1
            if ep.health != UNHEALTHY and ep.health_failures >= cfg.unhealthy_threshold:
                self._set(ep, UNHEALTHY, result)

    def _set(self, ep: EndpointState, health: str, result: str) -> None:
        old = ep.health
        ep.health = health
        ep.healthy = health != UNHEALTHY
        if old != health:
            metrics.HEALTH_TRANSITIONS.labels(self.cluster, ep.url, health).inc()
        if health == UNHEALTHY:
            log.warning(
                "cluster %s: endpoint %s unhealthy after %d failed checks (last: %s); "
                "out of rotation",
                self.cluster,
                ep.url,
                ep.health_failures,
                result or "failure",
                extra={"event": "endpoint_unhealthy", "cluster": self.cluster, "endpoint": ep.url},
            )
        elif old == UNHEALTHY:
            log.info(
                "cluster %s: endpoint %s healthy after %d passed checks; back in rotation",
                self.cluster,
                ep.url,
                ep.health_successes,
                extra={"event": "endpoint_healthy", "cluster": self.cluster, "endpoint": ep.url},
            )
        else:
            log.info("cluster %s: endpoint %s healthy", self.cluster, ep.url)
