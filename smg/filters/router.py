"""``router``: the terminal filter — route → cluster → endpoint → upstream, with retries.

Retries, outlier recording and fallbacks wrap the upstream call here and only here.
A retry happens before any byte reached the client, goes to an endpoint that has not
failed this request, waits an exponential, jittered backoff, stays within the
cluster's retry budget and never past the request's deadline. When a cluster has no
usable endpoint or runs out of retries, the route's fallback clusters are tried in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from smg.clusters.cluster import Cluster
from smg.clusters.endpoint import Target
from smg.clusters.lb.base import PickContext
from smg.clusters.prefix.validation import UsageTap, stream_reports_usage, tap_usage
from smg.errors import GatewayError, ModelNotFound, NoHealthyEndpoint, NotFound
from smg.filters.base import Filter, RequestContext
from smg.observability import metrics
from smg.protocol.request import GatewayResponse
from smg.routing.retry import backoff_delay, should_retry
from smg.upstreams.grpc.state import PROMPT_IDS


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
        pick_ctx = PickContext(
            headers=req.headers,
            body=req.json,
            model=req.model,
            kind=req.kind,
            token_ids=ctx.get(PROMPT_IDS, None),
        )
        first = route.pick_cluster()
        if not route.fallback:
            return await self._send(ctx, clusters[first], pick_ctx)
        last: GatewayError | None = None
        for i, name in enumerate((first, *route.fallback)):
            if i:
                metrics.FALLBACKS.labels(route.name, name).inc()
            try:
                return await self._send(ctx, clusters[name], pick_ctx)
            except GatewayError as err:
                if not err.retryable:
                    raise
                last = err
        assert last is not None
        raise last

    async def _send(
        self, ctx: RequestContext, cluster: Cluster, pick_ctx: PickContext
    ) -> GatewayResponse:
        """Attempts on one cluster, retrying on other endpoints as its policy allows."""
        ctx.cluster_name = cluster.name
        policy = cluster.config.retry_policy
        total = cluster.config.timeouts.total
        deadline = ctx.started + total
        if ctx.deadline == 0.0 or deadline < ctx.deadline:
            ctx.deadline = deadline
        cluster.retry_budget.deposit()
        failed: frozenset[str] = frozenset()
        retries = 0
        stats = cluster.stats
        while True:
            ep = cluster.pick(pick_ctx, failed)
            if ep is None:
                if retries:
                    stats.exhausted("no_endpoint")
                raise NoHealthyEndpoint(f"No healthy endpoint in cluster '{cluster.name}'.")
            try:
                return await self._attempt(ctx, cluster, ep, pick_ctx)
            except GatewayError as err:
                if not should_retry(err, policy.retry_on, policy.retriable_status_codes):
                    raise
                if retries >= policy.max_retries:
                    stats.exhausted("max_retries")
                    raise
                if not cluster.retry_budget.withdraw():
                    stats.exhausted("budget")
                    raise
                retries += 1
                b = policy.backoff
                delay = backoff_delay(retries, b.base, b.max, b.multiplier, b.jitter)
                if time.monotonic() + delay >= ctx.deadline:
                    stats.exhausted("deadline")
                    raise
                failed = failed | {ep.url}
                if cluster.exhausted(failed):
                    stats.exhausted("no_endpoint")
                    raise
                stats.retry(err.kind)
                await asyncio.sleep(delay)

    async def _attempt(
        self, ctx: RequestContext, cluster: Cluster, ep: Target, pick_ctx: PickContext
    ) -> GatewayResponse:
        """One try on one endpoint; load is accounted from pick to the end of the answer."""
        ctx.endpoint_url = ep.url
        ctx.attempts += 1
        ctx.route_reason = cluster.last_reason
        if ctx.listener.config.route_header:
            ctx.response_headers["x-smg-route"] = (
                f"cluster={cluster.name}; endpoint={ep.url}; {ctx.route_reason}; "
                f"attempt={ctx.attempts}"
            )
        stats = cluster.stats
        trace = ctx.trace
        if trace is not None:
            trace.start_attempt(ctx, cluster, ep)
        guard = ep.acquire()
        sent_at = time.monotonic()
        try:
            resp = await cluster.send(ctx, ep)
        except GatewayError as err:
            guard.release()
            ep.total_failures += 1
            cluster.record(ep, err)
            stats.attempt(ep.url, err.kind, time.monotonic() - sent_at)
            if trace is not None:
                trace.attempt_failed(err)
            raise
        except BaseException as exc:
            guard.release()
            stats.attempt(ep.url, "cancelled", time.monotonic() - sent_at)
            stats.cancelled()
            if trace is not None:
                trace.attempt_failed(exc)
            raise
        now = ctx.first_byte_at = time.monotonic()
        stats.attempt(ep.url, "ok", now - sent_at)
        observe = cluster.lb_observe
        if resp.stream is None:
            guard.release()
            cluster.record(ep, None)
            if observe is not None:
                observe(ep, pick_ctx, resp.body)
            if trace is not None:
                trace.attempt_answered(resp, None)
            return resp
        tap: UsageTap | None = None
        wants_usage = observe is not None or (trace is not None and trace.recording)
        if wants_usage and stream_reports_usage(ctx.request.kind, ctx.request.json):
            # For policies that check their predictions and for span attributes, and only
            # for streams that carry usage: one tap serves both.
            tap = UsageTap()
            resp.stream = tap_usage(resp.stream, tap)

        def finished(exc: BaseException | None) -> None:
            guard.release()
            if exc is None:
                cluster.record(ep, None)
                if tap is not None and observe is not None:
                    observe(ep, pick_ctx, tap.usage)
            elif isinstance(exc, GatewayError) and exc.blame == "upstream":
                ep.total_failures += 1
                cluster.record(ep, exc)
            elif ctx.client_disconnected:
                stats.cancelled()

        resp.on_close(finished)
        if trace is not None:
            trace.attempt_answered(resp, tap)
        return resp
