"""Per-request accounting at the end of every request: metrics and the access log line."""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Sequence

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


class _Cell:
    """Everything one answered request of a (route, model, status) updates, looked up once."""

    __slots__ = ("body_bytes", "duration", "requests", "route", "tokens")

    def __init__(
        self,
        requests: CounterChild,
        route: _Route,
        body_bytes: HistogramChild,
        tokens: tuple[CounterChild, ...],
    ) -> None:
        self.requests = requests
        self.route = route
        self.duration = route.duration
        self.body_bytes = body_bytes
        self.tokens = tokens

    def count(
        self,
        seconds: float,
        body: int,
        usage: Usage | None,
        _bucket: Callable[[Sequence[float], float], int] = bisect.bisect_left,
    ) -> None:
        """One request: its count, duration, body size and tokens (observations inlined:
        this runs once per request and every call saved shows in the gateway's CPU)."""
        self.requests.value += 1
        h = self.duration
        h.counts[_bucket(h.bounds, seconds)] += 1
        h.sum += seconds
        h = self.body_bytes
        h.counts[_bucket(h.bounds, body)] += 1
        h.sum += body
        if usage is not None:
            for child, n in zip(self.tokens, usage, strict=True):
                child.value += n


class ListenerStats:
    """The metric children of one listener, created on first use and kept."""

    __slots__ = (
        "_cells",
        "_errors",
        "_models",
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
        self._cells: dict[tuple[str, str, int], _Cell] = {}
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

    def cell(self, route: str, model: str, status: int) -> _Cell:
        """The children a request of ``route``, ``model`` and ``status`` updates."""
        key = (route, model, status)
        cell = self._cells.get(key)
        if cell is None:
            m = self._model(model)
            tokens = self._tokens.get(m)
            if tokens is None:
                tokens = self._tokens[m] = tuple(
                    metrics.TOKENS.labels(self.name, m, kind)
                    for kind in ("prompt", "completion", "cached", "reasoning")
                )
            requests = metrics.REQUESTS.labels(self.name, route, m, str(status))
            cell = self._cells[key] = _Cell(requests, self.route(route), self.body_bytes, tokens)
        return cell

    def request(self, route: str, model: str, status: int) -> None:
        """Count one request answered before it had a context (a malformed request)."""
        self.cell(route, model, status).requests.inc()

    def error(self, kind: str, blame: str) -> None:
        """Count one request that ended in an error."""
        key = (kind, blame)
        child = self._errors.get(key)
        if child is None:
            child = self._errors[key] = metrics.ERRORS.labels(self.name, kind, blame)
        child.inc()


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
    """Count the request and, if enabled, queue its access line."""
    duration = time.monotonic() - ctx.started
    status = 499 if ctx.client_disconnected and not ctx.status else ctx.status
    req = ctx.request
    logged = access_log and log.isEnabledFor(logging.INFO)
    stream = ctx.stream_stats
    usage: Usage | None = None
    counted = fast.enabled()
    if counted or logged:
        if stream is not None:
            usage = stream.usage_figures()
        else:
            usage = usage_in(ctx.response_body, ctx.response_dialect)
    ttft = None
    if stream is not None and stream.chunks:
        ttft = stream.first - ctx.started
    route_name = ctx.route_name or ""
    err = ctx.error
    if counted:
        cell = stats.cell(route_name, req.model or "", status)
        cell.count(duration, len(req.body), usage)
        if err is not None:
            stats.error(err.kind, err.blame)
        if ctx.client_disconnected:
            stats.disconnects.inc()
        if stream is not None:
            _count_stream(cell.route, stream, ttft, usage)
    if logged:
        ACCESS_LOG.write(
            (
                time.time(),
                ctx.request_id,
                stats.name,
                route_name,
                ctx.cluster_name,
                ctx.endpoint_url,
                ctx.route_reason,
                req.model,
                req.method,
                req.path,
                status,
                duration,
                ttft,
                ctx.attempts,
                req.stream,
                None if err is None else err.kind,
                ctx.client_disconnected,
                None if usage is None else usage[:3],
            )
        )


def _count_stream(
    route: _Route, stream: StreamStats, ttft: float | None, usage: Usage | None
) -> None:
    route.streamed.inc()
    if ttft is not None:
        route.chunks.inc(stream.chunks)
        route.ttft.observe(ttft)
    if stream.chunks > 1:
        outputs = usage.completion if usage is not None and usage.completion > 1 else 0
        steps = (outputs or stream.chunks) - 1
        route.tpot.observe((stream.last - stream.first) / steps)
