"""The pool-keeping half every HTTP adapter shares: one ``HttpPool`` per endpoint URL.

``openai_http`` (HTTP mode) and the cloud adapters (``openai``, ``gemini``, …) differ in
how they send a request; how they open, count, probe and close connections is this.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from smg.clusters.endpoint import EndpointState
from smg.errors import UpstreamTimeout
from smg.upstreams.http_client import HttpPool

if TYPE_CHECKING:
    from smg.config.model import ClusterConfig
    from smg.filters.base import RequestContext


class HttpPoolUpstream:
    """Connection pools per endpoint, health probes, pool stats and shutdown."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self._pools: dict[str, HttpPool] = {}

    def _pool(self, ep: EndpointState) -> HttpPool:
        pool = self._pools.get(ep.endpoint.url)
        if pool is None:
            e = ep.endpoint
            cp = self.config.connection_pool
            pool = HttpPool(
                e.host,
                e.port,
                max_connections=cp.max_connections,
                idle_timeout=cp.idle_timeout,
                connect_timeout=self.config.timeouts.connect,
                tls=e.scheme == "https",
            )
            self._pools[e.url] = pool
        return pool

    def attempt_timeout(self, ctx: RequestContext) -> float:
        """Seconds this attempt may wait for the answer's head (per-try, cut to the deadline)."""
        per_try = self.config.retry_policy.per_try_timeout or self.config.timeouts.first_byte
        if ctx.deadline:
            left = ctx.deadline - time.monotonic()
            if left <= 0:
                raise UpstreamTimeout("The request deadline passed before it could be sent.")
            per_try = min(per_try, left)
        return per_try

    async def probe_health(self, ep: EndpointState, path: str, timeout: float) -> bool:
        """``GET path`` on the endpoint's pool; True for a 2xx answer."""
        up = await self._pool(ep).request("GET", path, [], b"", first_byte_timeout=timeout)
        try:
            await up.read()
        finally:
            up.release()
        return 200 <= up.status < 300

    async def fetch(self, ep: EndpointState, path: str, timeout: float) -> tuple[int, bytes]:
        """``GET path`` on the endpoint's pool (engine ``/metrics`` scrapes)."""
        up = await self._pool(ep).request("GET", path, [], b"", first_byte_timeout=timeout)
        try:
            body = await up.read()
        finally:
            up.release()
        return up.status, body

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """Connection counts per endpoint."""
        return {
            url: {"size": p.size, "idle": p.idle, "in_use": p.in_use}
            for url, p in self._pools.items()
        }

    def forget(self, url: str) -> None:
        """Drop the pool of an endpoint that left (in-use connections close when released)."""
        pool = self._pools.pop(url, None)
        if pool is not None:
            pool.retire()

    async def close(self) -> None:
        """Close all pools."""
        pools, self._pools = list(self._pools.values()), {}
        for p in pools:
            await p.close()
