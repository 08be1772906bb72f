"""Per-request accounting at the end of every request: metrics and the access log line."""

from __future__ import annotations

import logging
import time

from smg.filters.base import RequestContext
from smg.observability import metrics

log = logging.getLogger("smg.access")


def record(ctx: RequestContext, listener: str, access_log: bool) -> None:
    """Count the request and, if enabled, log one structured line about it."""
    now = time.monotonic()
    duration = now - ctx.started
    status = 499 if ctx.client_disconnected and not ctx.status else ctx.status
    route = ctx.route_name or ""
    metrics.REQUESTS.labels(listener, route, ctx.request.model or "", str(status)).inc()
    metrics.REQUEST_DURATION.labels(listener, route).observe(duration)
    if ctx.client_disconnected:
        metrics.CLIENT_DISCONNECTS.labels(listener).inc()
    if access_log and log.isEnabledFor(logging.INFO):
        ttfb = (ctx.first_byte_at - ctx.started) * 1000.0 if ctx.first_byte_at else None
        log.info(
            "%s %s %s -> %s %d %.1fms",
            ctx.request.method,
            ctx.request.path,
            ctx.request.model,
            ctx.endpoint_url,
            status,
            duration * 1000.0,
            extra={
                "request_id": ctx.request_id,
                "listener": listener,
                "route": route,
                "cluster": ctx.cluster_name,
                "endpoint": ctx.endpoint_url,
                "model": ctx.request.model,
                "status": status,
                "latency_ms": round(duration * 1000.0, 3),
                "ttfb_ms": None if ttfb is None else round(ttfb, 3),
                "attempts": ctx.attempts,
                "stream": ctx.request.stream,
                "error_kind": ctx.error.kind if ctx.error else None,
                "client_disconnected": ctx.client_disconnected,
            },
        )
