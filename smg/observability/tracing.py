"""OpenTelemetry tracing: one span tree per request, W3C trace context in and out.

Span tree of one request (all children name the server span as parent explicitly; no
context is attached to the event loop)::

    SERVER   POST /v1/chat/completions    parent: the client's traceparent, if any
    ├── INTERNAL filter <name>            one per filter whose on_request ran
    └── CLIENT   upstream <cluster>       one per attempt (retries, fallbacks); a
                                          stream's attempt ends when the stream ends

Each attempt's context goes to the engine as ``traceparent`` / ``tracestate`` (HTTP
headers replacing the client's, or gRPC metadata). An unsampled request records
nothing but still sends a traceparent with the sampled flag 0, so the engine agrees.

A ``Tracing`` belongs to a snapshot and is shared by later snapshots while the
``tracing`` section stays the same; its provider and exporter thread are created on
first use, inside the worker process (never before a fork), so that a snapshot a
failed reload discards leaves nothing running. When a reload changes the
section, the old one is flushed and shut down once its last request finished. With
tracing disabled the snapshot holds None: a request pays one None check in the listener
handler, one per filter and one per upstream attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final
from urllib.parse import urlparse

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from smg.config.model import TracingConfig
from smg.errors import GatewayError, UpstreamStatus
from smg.observability import genai

if TYPE_CHECKING:
    from smg.clusters.cluster import Cluster
    from smg.clusters.endpoint import Target
    from smg.clusters.prefix.validation import UsageTap
    from smg.filters.base import Filter, RequestContext
    from smg.protocol.request import GatewayResponse

log = logging.getLogger("smg.tracing")

# How long shutdown waits for the last batch to reach the collector.
FLUSH_TIMEOUT_S: Final = 5.0
_PROPAGATOR: Final = TraceContextTextMapPropagator()
_SERVER, _CLIENT, _INTERNAL = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL

Carrier = tuple[tuple[str, str], ...]


def tracing_for(config: TracingConfig, previous: Tracing | None) -> Tracing | None:
    """The ``Tracing`` of a new snapshot: the previous one if its section is unchanged."""
    if not config.enabled:
        return None
    if previous is not None and previous.config == config:
        return previous
    return Tracing(config)


def traces_endpoint(config: TracingConfig) -> str:
    """The collector URL as the exporter takes it (OTLP/HTTP: ``/v1/traces`` by default)."""
    if config.exporter == "otlp_http" and urlparse(config.endpoint).path in ("", "/"):
        return config.endpoint.rstrip("/") + "/v1/traces"
    return config.endpoint


def _exporter_factory(config: TracingConfig) -> Callable[[], SpanExporter]:
    """Import the exporter now (at config build, off the request path); build it later."""
    endpoint = traces_endpoint(config)
    if config.exporter == "otlp_http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return lambda: HttpExporter(endpoint=endpoint, headers=dict(config.headers))
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcExporter,
    )

    # gRPC metadata keys must be lower case.
    headers = tuple((k.lower(), v) for k, v in config.headers)
    return lambda: GrpcExporter(endpoint=endpoint, headers=headers)


class Tracing:
    """One ``tracing`` section's tracer provider, exporter and sampler in this process."""

    def __init__(self, config: TracingConfig, exporter: SpanExporter | None = None) -> None:
        self.config = config
        if exporter is None:
            self._new_exporter = _exporter_factory(config)
        else:  # tests: export here instead of over OTLP
            self._new_exporter = lambda: exporter
        self._provider: TracerProvider | None = None
        self._tracer: Tracer | None = None

    def tracer(self) -> Tracer:
        """The tracer; the provider and its export thread start on first use."""
        if self._tracer is None:
            cfg = self.config
            resource = Resource.create(
                {"service.name": cfg.service_name, "process.pid": os.getpid()}
            )
            provider = TracerProvider(
                sampler=ParentBased(TraceIdRatioBased(cfg.sample_ratio)),
                resource=resource,
                shutdown_on_exit=False,
            )
            try:
                exporter = self._new_exporter()
            except Exception:  # a bad exporter must not fail requests: spans are dropped
                log.exception("tracing: cannot create the %s exporter", cfg.exporter)
            else:
                provider.add_span_processor(BatchSpanProcessor(exporter))
            self._provider = provider
            self._tracer = provider.get_tracer("smg")
            log.info(
                "tracing: exporting %s to %s (sample ratio %g)",
                cfg.exporter,
                traces_endpoint(cfg),
                cfg.sample_ratio,
            )
        return self._tracer

    def begin(self, ctx: RequestContext, listener: str) -> RequestTrace:
        """Start the server span of ``ctx`` (the client's traceparent as parent)."""
        req = ctx.request
        headers = req.headers
        parent = _PROPAGATOR.extract(headers) if "traceparent" in headers else Context()
        attrs = genai.request_attributes(req)
        attrs["http.request.method"] = req.method
        attrs["url.path"] = req.path
        attrs["smg.listener"] = listener
        attrs["smg.stream"] = req.stream
        if ctx.client_addr:
            attrs["client.address"] = ctx.client_addr
        tracer = self.tracer()
        # Attributes given at the start are cleaned once, and only if the span records.
        span = tracer.start_span(
            f"{req.method} {req.path}", context=parent, kind=_SERVER, attributes=attrs
        )
        return RequestTrace(tracer, span, req.kind)

    async def close(self) -> None:
        """Flush what is queued and stop the exporter (bounded by ``FLUSH_TIMEOUT_S``)."""
        provider, self._provider, self._tracer = self._provider, None, None
        if provider is None:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        def shutdown() -> None:
            try:
                provider.shutdown()
            except Exception:
                log.exception("tracing: exporter shutdown failed")
            with contextlib.suppress(RuntimeError):  # the loop may be gone by now
                loop.call_soon_threadsafe(finished)

        # A daemon thread, so that a collector that does not answer never holds the exit.
        threading.Thread(target=shutdown, name="smg-trace-flush", daemon=True).start()
        try:
            await asyncio.wait_for(done, FLUSH_TIMEOUT_S)
        except TimeoutError:
            log.warning("tracing: spans not flushed within %.0fs; dropping them", FLUSH_TIMEOUT_S)
        else:
            log.info("tracing: exporter to %s flushed and stopped", traces_endpoint(self.config))


def _traceparent(span: Span) -> Carrier:
    sc = span.get_span_context()
    tp = f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"
    ts = sc.trace_state.to_header()
    return (("traceparent", tp), ("tracestate", ts)) if ts else (("traceparent", tp),)


def _printable(value: str) -> bool:
    return value.isascii() and value.isprintable()


def client_trace_metadata(headers: Mapping[str, str]) -> Carrier | None:
    """The client's own trace context, for gRPC metadata when tracing is off."""
    tp = headers.get("traceparent")
    if tp is None or not _printable(tp):
        return None
    ts = headers.get("tracestate")
    if ts is None or not _printable(ts):
        return (("traceparent", tp),)
    return (("traceparent", tp), ("tracestate", ts))


def grpc_metadata(ctx: RequestContext) -> Carrier | None:
    """Trace metadata for a gRPC call: this attempt's span, else what the client sent."""
    trace = ctx.trace
    if trace is not None:
        return trace.carrier
    return client_trace_metadata(ctx.request.headers)


def _error_type(exc: BaseException) -> str:
    if isinstance(exc, UpstreamStatus):
        return str(exc.status)
    if isinstance(exc, GatewayError):
        return exc.code
    return type(exc).__qualname__


class RequestTrace:
    """The spans of one request, and the trace context its current attempt sends."""

    __slots__ = ("attempt", "carrier", "kind", "parent", "recording", "span", "tracer")

    def __init__(self, tracer: Tracer, span: Span, kind: str) -> None:
        self.tracer = tracer
        self.span = span
        self.kind = kind
        self.recording = span.is_recording()
        self.parent: Context | None = set_span_in_context(span) if self.recording else None
        self.attempt: Span | None = None
        # Unsampled: every attempt sends the server span's context (flag 00).
        self.carrier: Carrier = () if self.recording else _traceparent(span)

    # -- filters ---------------------------------------------------------------------

    async def run_filter(self, f: Filter, ctx: RequestContext) -> GatewayResponse | None:
        """``f.on_request`` inside an INTERNAL span ``filter <name>``."""
        if not self.recording:
            return await f.on_request(ctx)
        span = self.tracer.start_span(
            f"filter {f.name}",
            context=self.parent,
            kind=_INTERNAL,
            attributes={"smg.filter.type": f.type_name},
        )
        try:
            resp = await f.on_request(ctx)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                span.set_attribute("error.type", _error_type(exc))
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
            span.end()
            raise
        if resp is not None and not f.terminal:
            span.set_attribute("smg.filter.answered", True)
        span.end()
        return resp

    # -- upstream attempts -------------------------------------------------------------

    def start_attempt(self, ctx: RequestContext, cluster: Cluster, ep: Target) -> None:
        """Open the CLIENT span of attempt ``ctx.attempts`` and set what goes upstream."""
        req = ctx.request
        if self.recording:
            if self.attempt is not None:  # pragma: no cover - the router ends each attempt
                self.attempt.end()
            e = ep.endpoint
            attrs: genai.Attributes = {
                "smg.attempt": ctx.attempts,
                "smg.cluster": cluster.name,
                "smg.lb.policy": cluster.config.lb_policy.type,
                "server.address": e.host,
                "server.port": e.port,
            }
            if e.scheme in ("http", "https"):
                attrs["url.full"] = ep.url + (req.openai_path or req.path)
                attrs["http.request.method"] = req.method
            if ctx.route_reason:
                attrs["smg.lb.reason"] = ctx.route_reason
            op = genai.operation(self.kind)
            if op is not None:
                attrs[genai.OPERATION] = op
                if req.model:
                    attrs[genai.REQUEST_MODEL] = req.model
            span = self.tracer.start_span(
                f"upstream {cluster.name}", context=self.parent, kind=_CLIENT, attributes=attrs
            )
            self.attempt = span
            self.carrier = _traceparent(span)
        # HTTP: filter-set headers replace the client's same-named ones (headers.py).
        extra = req.upstream_headers
        carrier = self.carrier
        extra["traceparent"] = carrier[0][1]
        if len(carrier) > 1:
            extra["tracestate"] = carrier[1][1]
        else:
            extra.pop("tracestate", None)
            req.dropped_headers.add("tracestate")

    def attempt_failed(self, exc: BaseException) -> None:
        """The attempt raised before an answer: mark and end its span."""
        span, self.attempt = self.attempt, None
        if span is not None:
            self._end_attempt(span, exc)

    def attempt_answered(self, resp: GatewayResponse, tap: UsageTap | None) -> None:
        """The head is in: a body ends the span now, a stream when it closes."""
        span, self.attempt = self.attempt, None
        if span is None:
            return
        status = resp.status
        if resp.stream is None:
            self._end_attempt(span, None, status, resp.body)
            return

        def closed(exc: BaseException | None) -> None:
            self._end_attempt(span, exc, status, tap.usage if tap is not None else None)

        resp.on_close(closed)

    def _end_attempt(
        self,
        span: Span,
        exc: BaseException | None,
        status: int | None = None,
        answer: bytes | None = None,
    ) -> None:
        attrs: genai.Attributes = {} if status is None else {"http.response.status_code": status}
        if exc is None:
            attrs["smg.outcome"] = "success"
            found = genai.response_attributes(answer, self.kind)
            if found:
                attrs.update(found)
                self.span.set_attributes(found)
        elif isinstance(exc, asyncio.CancelledError | ConnectionError):
            attrs["smg.outcome"] = "cancelled"
        else:
            attrs["smg.outcome"] = "error"
            attrs["error.type"] = _error_type(exc)
            if isinstance(exc, UpstreamStatus):
                attrs["http.response.status_code"] = exc.status
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
        span.set_attributes(attrs)
        span.end()

    # -- the end -----------------------------------------------------------------------

    def end(self, ctx: RequestContext) -> None:
        """Close the server span with the request's outcome."""
        if self.attempt is not None:  # an attempt the router never heard back from
            self.attempt_failed(asyncio.CancelledError())
        span = self.span
        if not self.recording:
            return
        attrs: genai.Attributes = {"smg.attempts": ctx.attempts}
        if ctx.request_id:
            attrs["smg.request_id"] = ctx.request_id
        if ctx.route_name:
            attrs["smg.route"] = ctx.route_name
        if ctx.cluster_name:
            attrs["smg.cluster"] = ctx.cluster_name
        if ctx.endpoint_url:
            attrs["smg.endpoint"] = ctx.endpoint_url
        if ctx.status:
            attrs["http.response.status_code"] = ctx.status
        err = ctx.error
        if err is not None:
            attrs["error.type"] = err.code
        elif ctx.client_disconnected:
            attrs["error.type"] = "client_disconnected"
        span.set_attributes(attrs)
        if ctx.status >= 500 or (err is not None and err.status >= 500):
            span.set_status(Status(StatusCode.ERROR, err.message[:200] if err else ""))
        span.end()
