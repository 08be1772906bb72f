"""Per-request accounting at the end of every request: metrics and the access log line."""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from smg.filters.base import RequestContext
from smg.observability import fast, metrics
from smg.observability.access_log import ACCESS_LOG
from smg.observability.fast import CounterChild, GaugeChild, HistogramChild
from smg.observability.usage import MARKS, USAGE_MARK, Usage, usage_in

log = logging.getLogger("smg.access")

# The model label comes from clients, so its variety is capped.
_MAX_MODELS = 500


class StreamStats:
    """Timing of one streamed answer, taken as its chunks go out to the client."""

    __slots__ = ("_itl", "_mark", "chunks", "dialect", "first", "first_usage", "last", "usage")

    def __init__(self, itl: HistogramChild, dialect: str) -> None:
        self._itl = itl
        self._mark = MARKS.get(dialect, USAGE_MARK)
        self.dialect = dialect
        self.first = 0.0
        self.last = 0.0
        self.chunks = 0
        self.first_usage: bytes | None = None
        """The first chunk that carried usage figures (Anthropic: message_start)."""
        self.usage: bytes | None = None
        """The last chunk that carried usage figures."""

    def chunk(
        self,
        data: bytes,
        _now: Callable[[], float] = time.monotonic,
        _bucket: Callable[[Sequence[float], float], int] = bisect.bisect_left,
    ) -> None:
        """One chunk was written to the client (runs per chunk: kept to a few operations)."""
        now = _now()
        n = self.chunks
        if n:
            gap = now - self.last
            itl = self._itl  # HistogramChild.observe, inlined
            itl.counts[_bucket(itl.bounds, gap)] += 1
            itl.sum += gap
        else:
            self.first = now
        self.last = now
        self.chunks = n + 1
        if self._mark in data:
            if self.first_usage is None:
                self.first_usage = data
            self.usage = data

    def usage_figures(self) -> Usage | None:
        """Token counts over the usage-carrying chunks (running totals merged)."""
        last = usage_in(self.usage, self.dialect)
        if last is None or self.first_usage is self.usage:
            return last
        return last.merge(usage_in(self.first_usage, self.dialect))


class _Route:
    """Children of one (listener, route)."""

    __slots__ = ("chunks", "duration", "itl", "streamed", "tpot", "ttft")

    def __init__(self, listener: str, route: str) -> None:
        self.duration = metrics.REQUEST_DURATION.labels(listener, route)
        self.ttft = metrics.TTFT.labels(listener, route)
        self.itl = metrics.INTER_TOKEN_LATENCY.labels(listener, route)
        self.tpot = metrics.TIME_PER_OUTPUT_TOKEN.labels(listener, route)
        self.streamed = metrics.RESPONSES_STREAMED.labels(listener, route)
        self.chunks = metrics.STREAM_CHUNKS.labels(listener, route)


class ListenerStats:
    """The metric children of one listener, created on first use and kept."""

    __slots__ = (
        "_errors",
        "_models",
        "_requests",
        "_routes",
        "_tokens",
        "body_bytes",
        "disconnects",
        "in_flight",
        "name",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.in_flight: GaugeChild = metrics.REQUESTS_IN_FLIGHT.labels(name)
        self.body_bytes: HistogramChild = metrics.REQUEST_BODY_BYTES.labels(name)
        self.disconnects: CounterChild = metrics.CLIENT_DISCONNECTS.labels(name)
        self._requests: dict[tuple[str, str, int], CounterChild] = {}
        self._routes: dict[str, _Route] = {}
        self._errors: dict[tuple[str, str], CounterChild] = {}
        self._tokens: dict[str, tuple[CounterChild, ...]] = {}
        self._models: set[str] = set()

    def _model(self, model: str) -> str:
        if model in self._models:
            return model
        if len(self._models) >= _MAX_MODELS:
            return "other"
        self._models.add(model)
        return model

    def route(self, route: str) -> _Route:
        """Children of ``route`` on this listener."""
        r = self._routes.get(route)
        if r is None:
            r = self._routes[route] = _Route(self.name, route)
        return r

    def request(self, route: str, model: str, status: int) -> None:
        """Count one answered request."""
        key = (route, model, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = metrics.REQUESTS.labels(
                self.name, route, self._model(model), str(status)
            )
        child.inc()

    def error(self, kind: str, blame: str) -> None:
        """Count one request that ended in an error."""
        key = (kind, blame)
        child = self._errors.get(key)
        if child is None:
            child = self._errors[key] = metrics.ERRORS.labels(self.name, kind, blame)
        child.inc()

    def tokens(self, model: str, usage: Usage) -> None:
        """Add one answer's token counts."""
        children = self._tokens.get(model)
        if children is None:
            m = self._model(model)
            children = self._tokens[model] = tuple(
                metrics.TOKENS.labels(self.name, m, kind)
                for kind in ("prompt", "completion", "cached", "reasoning")
            )
        for child, n in zip(children, usage, strict=True):
            if n:
                child.inc(n)


_listeners: dict[str, ListenerStats] = {}


def listener_stats(name: str) -> ListenerStats:
    """The stats of listener ``name`` (one object per process, kept across reloads)."""
    st = _listeners.get(name)
    if st is None:
        st = _listeners[name] = ListenerStats(name)
    return st


_UNCOUNTED = HistogramChild((1.0,))
"""Where inter-token gaps go when metrics are off (the access line still wants TTFT)."""


def _ignore(data: bytes) -> None:
    """Chunk hook when neither metrics nor access lines want stream timing."""


def start_stream(ctx: RequestContext) -> Callable[[bytes], None]:
    """Begin timing a streamed answer of ``ctx``; returns the per-chunk hook."""
    if not fast.enabled() and not (
        ctx.snapshot.config.logging.access_log and log.isEnabledFor(logging.INFO)
    ):
        return _ignore
    if fast.enabled():
        itl = listener_stats(ctx.listener.config.name).route(ctx.route_name or "").itl
    else:
        itl = _UNCOUNTED
    stats = ctx.stream_stats = StreamStats(itl, ctx.request.dialect)
    return stats.chunk


def record(ctx: RequestContext, stats: ListenerStats, access_log: bool) -> None:
    """Count the request and, if enabled, log one structured line about it."""
    now = time.monotonic()
    duration = now - ctx.started
    status = 499 if ctx.client_disconnected and not ctx.status else ctx.status
    route_name = ctx.route_name or ""
    req = ctx.request
    model = req.model or ""
    logged = access_log and log.isEnabledFor(logging.INFO)
    stream = ctx.stream_stats
    ttft = None
    if stream is not None and stream.chunks:
        ttft = stream.first - ctx.started
    usage: Usage | None = None
    if fast.enabled():
        stats.request(route_name, model, status)
        route = stats.route(route_name)
        route.duration.observe(duration)
        stats.body_bytes.observe(len(req.body))
        err = ctx.error
        if err is not None:
            stats.error(err.kind, err.blame)
        if ctx.client_disconnected:
            stats.disconnects.inc()
        if stream is not None:
            route.streamed.inc()
            if ttft is not None:
                route.chunks.inc(stream.chunks)
                route.ttft.observe(ttft)
            usage = stream.usage_figures()
        else:
            usage = usage_in(ctx.response_body, ctx.response_dialect)
        if usage is not None:
            stats.tokens(model, usage)
        if stream is not None and stream.chunks > 1:
            outputs = usage.completion if usage is not None and usage.completion > 1 else 0
            steps = (outputs or stream.chunks) - 1
            route.tpot.observe((stream.last - stream.first) / steps)
    elif logged:
        if stream is not None:
            usage = stream.usage_figures()
        else:
            usage = usage_in(ctx.response_body, ctx.response_dialect)
    if logged:
        _log_line(ctx, stats.name, status, duration, ttft, usage)


def _log_line(
    ctx: RequestContext,
    listener: str,
    status: int,
    duration: float,
    ttft: float | None,
    usage: Usage | None,
) -> None:
    req = ctx.request
    latency_ms = duration * 1000.0
    doc: dict[str, Any] = {
        "ts": "",
        "level": "info",
        "logger": "smg.access",
        "msg": f"{req.method} {req.path} {req.model} -> {ctx.endpoint_url} {status} "
        f"{latency_ms:.1f}ms",
        "request_id": ctx.request_id,
        "listener": listener,
        "route": ctx.route_name or "",
        "cluster": ctx.cluster_name,
        "endpoint": ctx.endpoint_url,
        "lb_reason": ctx.route_reason,
        "model": req.model,
        "status": status,
        "latency_ms": round(latency_ms, 3),
        "ttft_ms": None if ttft is None else round(ttft * 1000.0, 3),
        "attempts": ctx.attempts,
        "retries": max(ctx.attempts - 1, 0),
        "stream": req.stream,
        "error_kind": ctx.error.kind if ctx.error else None,
        "client_disconnected": ctx.client_disconnected,
    }
    if usage is not None:
        doc["prompt_tokens"] = usage.prompt
        doc["completion_tokens"] = usage.completion
        doc["cached_tokens"] = usage.cached
    ACCESS_LOG.write(doc)
