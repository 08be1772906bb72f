"""HTTP mode: relay OpenAI-compatible requests to vLLM / SGLang / TRT-LLM HTTP servers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson

from smg.clusters.endpoint import EndpointState
from smg.errors import UpstreamStatus, UpstreamTimeout
from smg.protocol.request import GatewayResponse
from smg.upstreams.headers import relayed_headers, upstream_headers
from smg.upstreams.http_client import HttpPool

if TYPE_CHECKING:
    from smg.config.model import ClusterConfig
    from smg.filters.base import RequestContext

_EVENT_STREAM = "text/event-stream"


class OpenAIHttpUpstream:
    """Adapter for ``protocol: openai_http``: bytes in, bytes out, streams relayed as they come."""

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

    async def send(self, ctx: RequestContext, ep: EndpointState) -> GatewayResponse:
        """Forward the request; the head is in when this returns."""
        req = ctx.request
        t = self.config.timeouts
        headers = upstream_headers(req.raw_headers, req.upstream_headers, req.dropped_headers)
        per_try = self.config.retry_policy.per_try_timeout or t.first_byte
        if ctx.deadline:
            left = ctx.deadline - time.monotonic()
            if left <= 0:
                raise UpstreamTimeout("The request deadline passed before it could be sent.")
            per_try = min(per_try, left)
        up = await self._pool(ep).request(
            req.method,
            req.path,
            headers,
            req.body_bytes(),
            connect_timeout=min(t.connect, per_try),
            first_byte_timeout=per_try,
        )
        ctype = up.content_type
        if up.status >= 400:
            try:
                body = await up.read()
            finally:
                up.release()
            raise UpstreamStatus(up.status, body, ctype, dict(relayed_headers(up.headers)))
        resp = GatewayResponse(
            status=up.status, content_type=ctype, headers=relayed_headers(up.headers)
        )
        if ctype.startswith(_EVENT_STREAM):
            resp.stream = up.iter_chunks(t.idle)
            resp.on_close(lambda _exc: up.release())
            return resp
        left = ctx.deadline - time.monotonic() if ctx.deadline else t.idle
        try:
            resp.body = await up.read(min(t.idle, max(left, 0.001)))
        finally:
            up.release()
        return resp

    async def probe_models(self, ep: EndpointState, timeout: float) -> tuple[str, ...]:
        """Ask the worker's ``GET /v1/models``."""
        up = await self._pool(ep).request("GET", "/v1/models", [], b"", first_byte_timeout=timeout)
        try:
            body = await up.read()
        finally:
            up.release()
        if up.status != 200:
            return ()
        doc = orjson.loads(body)
        return tuple(str(m["id"]) for m in doc.get("data", ()) if isinstance(m, dict) and "id" in m)

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
