"""Per-request accounting at the end of every request: metrics and the access log line."""

from __future__ import annotations

import logging
import time
from typing import Any

from smg.filters.base import RequestContext
from smg.observability import metrics

log = logging.getLogger("smg.access")

# Labelled children cached by label values: ``labels()`` takes a lock and builds a tuple
# on every call. The model label comes from clients, so its variety is capped.
_MAX_LABEL_SETS = 2000
_requests: dict[tuple[str, str, str, int], Any] = {}
_durations: dict[tuple[str, str], Any] = {}


def _request_counter(listener: str, route: str, model: str, status: int) -> Any:
    key = (listener, route, model, status)
    child = _requests.get(key)
    if child is None:
        if len(_requests) >= _MAX_LABEL_SETS:
            key = (listener, route, "other", status)
            child = _requests.get(key)
        if child is None:
            child = metrics.REQUESTS.labels(*key[:3], str(status))
            _requests[key] = child
    return child


def _duration_histogram(listener: str, route: str) -> Any:
    key = (listener, route)
    child = _durations.get(key)
    if child is None:
        child = _durations[key] = metrics.REQUEST_DURATION.labels(listener, route)
    return child


def record(ctx: RequestContext, listener: str, access_log: bool) -> None:
    """Count the request and, if enabled, log one structured line about it."""
    now = time.monotonic()
    duration = now - ctx.started
    status = 499 if ctx.client_disconnected and not ctx.status else ctx.status
    route = ctx.route_name or ""
    _request_counter(listener, route, ctx.request.model or "", status).inc()
    _duration_histogram(listener, route).observe(duration)
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
