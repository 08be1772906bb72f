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
from smg.observability.usage import Usage, usage_in

log = logging.getLogger("smg.access")

# The model label comes from clients, so its variety is capped.
_MAX_MODELS = 500


class StreamStats:
    """Timing of one streamed answer, taken as its chunks go out to the client.

    Per chunk it notes the time and keeps the chunk (the last three and the first); usage
    figures are read from those once the stream ended, where they sit: OpenAI-style
    streams send them in the last event before ``[DONE]``, Gemini in every chunk (running
    totals), Anthropic in ``message_start`` and ``message_delta`` (two events from the end).
    """

    __slots__ = ("_itl", "chunks", "dialect", "first", "first_data", "last", "tail")

    def __init__(self, itl: HistogramChild | None, dialect: str) -> None:
        self._itl = itl
        """Inter-token latency histogram (None: metrics off, only the access line wants this)."""
        self.dialect = dialect
        self.first = 0.0
        self.last = 0.0
        self.chunks = 0
        self.first_data = b""
        self.tail: tuple[bytes, bytes, bytes] = (b"", b"", b"")
        """The last three chunks, oldest first."""

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
            itl = self._itl
            if itl is not None:  # HistogramChild.observe, inlined
                gap = now - self.last
                itl.counts[_bucket(itl.bounds, gap)] += 1
                itl.sum += gap
        else:
            self.first = now
            self.first_data = data
        self.last = now
        self.chunks = n + 1
        _, older, old = self.tail
        self.tail = (older, old, data)

    def usage_figures(self) -> Usage | None:
        """Token counts of the stream: the latest figures among the last three chunks
        (for Anthropic merged with those of the first, ``message_start``)."""
        dialect = self.dialect
        older, old, last = self.tail
        usage = usage_in(last, dialect) or usage_in(old, dialect) or usage_in(older, dialect)
        if dialect == "anthropic" and self.chunks > 1:
            start = usage_in(self.first_data, dialect)
            return start if usage is None else usage.merge(start)
        return usage


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

    __slots__ = ("body_bytes", "requests", "route", "tokens")

    def __init__(
        self,
        requests: CounterChild,
        route: _Route,
        body_bytes: HistogramChild,
        tokens: tuple[CounterChild, ...],
    ) -> None:
        self.requests = requests
        self.route = route
        self.body_bytes = body_bytes
        self.tokens = tokens

    def count(
        self,
        seconds: float,
        body: int,
        usage: Usage | None,
        stream: StreamStats | None,
        ttft: float | None,
        _bucket: Callable[[Sequence[float], float], int] = bisect.bisect_left,
    ) -> None:
        """One request: its count, duration, body size, tokens and stream timing
        (observations inlined: this runs once per request and every call saved shows in
        the gateway's CPU)."""
        self.requests.value += 1
        route = self.route
        h = route.duration
        h.counts[_bucket(h.bounds, seconds)] += 1
        h.sum += seconds
        h = self.body_bytes
        h.counts[_bucket(h.bounds, body)] += 1
        h.sum += body
        if usage is not None:
            prompt, completion, cached, reasoning = self.tokens
            prompt.value += usage[0]
            completion.value += usage[1]
            cached.value += usage[2]
            reasoning.value += usage[3]
        if stream is None:
            return
        route.streamed.value += 1
        if ttft is not None:
            route.chunks.value += stream.chunks
            h = route.ttft
            h.counts[_bucket(h.bounds, ttft)] += 1
            h.sum += ttft
        if stream.chunks > 1:
            outputs = usage[1] if usage is not None and usage[1] > 1 else 0
            per_token = (stream.last - stream.first) / ((outputs or stream.chunks) - 1)
            h = route.tpot
            h.counts[_bucket(h.bounds, per_token)] += 1
            h.sum += per_token


class ListenerStats:
    """The metric children of one listener, created on first use and kept."""

    __slots__ = (
        "_cells",
        "_errors",
        "_models",
        "_routes",
        "_tokens",
        "body_bytes",
        "counted",
        "disconnects",
        "in_flight",
        "name",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.counted = fast.enabled()
        """Metrics on: decided at start-up, before any listener's stats exist."""
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


def _ignore(data: bytes) -> None:
    """Chunk hook when neither metrics nor access lines want stream timing."""


def start_stream(ctx: RequestContext) -> Callable[[bytes], None]:
    """Begin timing a streamed answer of ``ctx``; returns the per-chunk hook."""
    stats = _listeners.get(ctx.listener.config.name)
    if stats is not None and stats.counted:
        itl: HistogramChild | None = stats.route(ctx.route_name or "").itl
    elif ctx.snapshot.config.logging.access_log and log.isEnabledFor(logging.INFO):
        itl = None
    else:
        return _ignore
    timing = ctx.stream_stats = StreamStats(itl, ctx.request.dialect)
    return timing.chunk


def record(ctx: RequestContext, stats: ListenerStats, access_log: bool) -> None:
    """Count the request and, if enabled, queue its access line."""
    duration = time.monotonic() - ctx.started
    status = 499 if ctx.client_disconnected and not ctx.status else ctx.status
    req = ctx.request
    logged = access_log and log.isEnabledFor(logging.INFO)
    stream = ctx.stream_stats
    usage: Usage | None = None
    counted = stats.counted
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
        cell.count(duration, len(req.body), usage, stream, ttft)
        if err is not None:
            stats.error(err.kind, err.blame)
        if ctx.client_disconnected:
            stats.disconnects.inc()
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
                usage,
            )
        )
