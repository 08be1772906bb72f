"""``router``: the terminal filter — route → cluster → endpoint → upstream adapter."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from smg.clusters.cluster import Cluster
from smg.clusters.endpoint import LoadGuard
from smg.clusters.lb.base import PickContext
from smg.errors import GatewayError, ModelNotFound, NoHealthyEndpoint, NotFound
from smg.filters.base import Filter, RequestContext
from smg.protocol.request import GatewayResponse


class RouterFilter(Filter):
    """Matches the route and sends the request; always answers."""

    type_name = "router"
    terminal = True
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {},
    }

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        """Pick a cluster and endpoint, send, and hand back the response head."""
        req = ctx.request
        route = ctx.listener.routes.match(req.model, req.path, req.headers)
        if route is None:
            if req.model is not None:
                raise ModelNotFound(
                    f"The model '{req.model}' does not exist or is not served here.",
                    param="model",
                )
            raise NotFound(f"No route for {req.path}.")
        ctx.route_name = route.name
        clusters = ctx.snapshot.clusters
        order = [route.pick_cluster(), *route.fallback]
        pick_ctx = PickContext(headers=req.headers, body=req.json, model=req.model)
        last: GatewayError | None = None
        for name in order:
            cluster = clusters[name]
            try:
                return await self._send(ctx, cluster, pick_ctx)
            except GatewayError as err:
                if not err.retryable:
                    raise
                last = err
        assert last is not None
        raise last

    async def _send(
        self, ctx: RequestContext, cluster: Cluster, pick_ctx: PickContext
    ) -> GatewayResponse:
        ctx.cluster_name = cluster.name
        ep = cluster.pick(pick_ctx)
        if ep is None:
            raise NoHealthyEndpoint(f"No healthy endpoint in cluster '{cluster.name}'.")
        ctx.endpoint_url = ep.url
        ctx.attempts += 1
        guard: LoadGuard = ep.acquire()
        try:
            resp = await cluster.upstream.send(ctx, ep)
        except BaseException:
            guard.release()
            ep.total_failures += 1
            raise
        ctx.first_byte_at = time.monotonic()
        if resp.stream is None:
            guard.release()
        else:
            resp.on_close(lambda _exc: guard.release())
        return resp
