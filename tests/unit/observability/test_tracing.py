"""Request spans and W3C propagation, with the real SDK; only the exporter is in memory."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from smg.clusters.cluster import Cluster
from smg.clusters.prefix.validation import UsageTap, tap_usage
from smg.config.loader import config_from_dict
from smg.config.model import TracingConfig
from smg.errors import RateLimited, UpstreamStatus
from smg.filters.base import Filter, RequestContext
from smg.observability.tracing import (
    Tracing,
    client_trace_metadata,
    grpc_metadata,
    traces_endpoint,
    tracing_for,
)
from smg.protocol.request import GatewayRequest, GatewayResponse
from smg.upstreams.headers import upstream_headers

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
ANSWER = orjson.dumps(
    {
        "model": "m-served",
        "choices": [{"index": 0, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
    }
)
CLUSTER = Cluster(
    config_from_dict(
        {
            "listeners": [{"name": "l", "address": "127.0.0.1:1", "routes": [{"cluster": "pool"}]}],
            "clusters": [
                {"name": "pool", "endpoints": ["http://10.1.2.3:8001"], "lb_policy": "random"}
            ],
        },
        "<test>",
    ).clusters[0]
)
EP = CLUSTER.endpoints[0]


def config(**over: Any) -> TracingConfig:
    base: dict[str, Any] = {
        "enabled": True,
        "exporter": "otlp_grpc",
        "endpoint": "http://127.0.0.1:4317",
        "sample_ratio": 1.0,
        "service_name": "smg-test",
        "headers": (),
    }
    return TracingConfig(**{**base, **over})


def make_ctx(headers: dict[str, str] | None = None) -> RequestContext:
    raw = [(b"content-type", b"application/json")]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    hdrs = CIMultiDictProxy(CIMultiDict([(k.decode(), v.decode()) for k, v in raw]))
    req = GatewayRequest(
        "POST", "/v1/chat/completions", "chat", hdrs, orjson.dumps(BODY), dict(BODY), "m", False
    )
    req.raw_headers = tuple(raw)
    ctx = RequestContext(req, None, None, "10.9.9.9")  # type: ignore[arg-type]
    ctx.request_id = "req-1"
    ctx.route_name = "r0"
    return ctx


def client_tp(sampled: bool = True) -> tuple[str, str, str]:
    t, s = secrets.token_hex(16), secrets.token_hex(8)
    return t, s, f"00-{t}-{s}-{'01' if sampled else '00'}"


def run(tr: Tracing, exporter: InMemorySpanExporter, body: Any) -> list[ReadableSpan]:
    """Run ``body()`` on a loop, then close (flush) the tracing; the spans it exported."""

    async def main() -> None:
        await body()
        await tr.close()

    asyncio.run(main())
    return list(exporter.get_finished_spans())


def sent_upstream(ctx: RequestContext) -> dict[str, str]:
    req = ctx.request
    out = upstream_headers(req.raw_headers, req.upstream_headers, req.dropped_headers)
    names = [k.decode().lower() for k, _ in out]
    assert len(names) == len(set(names)), names  # never the client's and ours
    return {k.decode().lower(): v.decode() for k, v in out}


class Passing(Filter):
    type_name = "passing"


class Limiting(Filter):
    type_name = "limiting"

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        raise RateLimited("slow down")


def test_client_span_is_parent_and_attempt_context_replaces_the_clients() -> None:
    exporter = InMemorySpanExporter()
    tr = Tracing(config(), exporter)
    trace_id, client_span, tp = client_tp()
    ctx = make_ctx({"traceparent": tp, "tracestate": "v=1"})
    upstream: dict[str, str] = {}

    async def body() -> None:
        ctx.trace = trace = tr.begin(ctx, "public")
        assert await trace.run_filter(Passing("pre", {}), ctx) is None
        ctx.attempts = 1
        ctx.route_reason = "round_robin"
        trace.start_attempt(ctx, CLUSTER, EP)
        upstream.update(sent_upstream(ctx))
        resp = GatewayResponse(200, "application/json", [], body=ANSWER)
        trace.attempt_answered(resp, None)
        ctx.status = 200
        trace.end(ctx)

    spans = {s.name: s for s in run(tr, exporter, body)}
    server = spans["POST /v1/chat/completions"]
    attempt = spans["upstream pool"]
    pre = spans["filter pre"]
    assert server.kind == SpanKind.SERVER
    assert server.parent is not None and server.parent.span_id == int(client_span, 16)
    assert server.context.trace_id == int(trace_id, 16)
    assert attempt.kind == SpanKind.CLIENT and pre.kind == SpanKind.INTERNAL
    assert attempt.parent is not None and attempt.parent.span_id == server.context.span_id
    assert pre.parent is not None and pre.parent.span_id == server.context.span_id
    assert dict(server.attributes or {}) == {
        "http.request.method": "POST",
        "url.path": "/v1/chat/completions",
        "smg.listener": "public",
        "smg.stream": False,
        "client.address": "10.9.9.9",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m",
        "gen_ai.request.max_tokens": 5,
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.response.model": "m-served",
        "gen_ai.response.finish_reasons": ("stop",),
        "smg.attempts": 1,
        "smg.request_id": "req-1",
        "smg.route": "r0",
        "http.response.status_code": 200,
    }
    a = attempt.attributes or {}
    assert a["url.full"] == "http://10.1.2.3:8001/v1/chat/completions"
    assert (a["server.address"], a["server.port"]) == ("10.1.2.3", 8001)
    assert a["smg.lb.reason"] == "round_robin"
    assert a["smg.lb.policy"] == "random"
    assert a["smg.outcome"] == "success"
    # The worker sees the attempt span, and the client's tracestate carried along.
    sc = attempt.context
    assert upstream["traceparent"] == f"00-{sc.trace_id:032x}-{sc.span_id:016x}-01"
    assert upstream["tracestate"] == "v=1"
    assert resource_name(server) == "smg-test"


def resource_name(span: ReadableSpan) -> Any:
    return span.resource.attributes["service.name"]


def test_no_client_context_starts_a_trace_and_drops_a_stray_tracestate() -> None:
    exporter = InMemorySpanExporter()
    tr = Tracing(config(), exporter)
    ctx = make_ctx({"tracestate": "stray=1"})
    upstream: dict[str, str] = {}

    async def body() -> None:
        ctx.trace = trace = tr.begin(ctx, "l")
        ctx.attempts = 1
        trace.start_attempt(ctx, CLUSTER, EP)
        upstream.update(sent_upstream(ctx))
        trace.attempt_failed(asyncio.CancelledError())
        trace.end(ctx)

    spans = run(tr, exporter, body)
    server = next(s for s in spans if s.kind == SpanKind.SERVER)
    assert server.parent is None
    assert "tracestate" not in upstream
    assert upstream["traceparent"].split("-")[1] == f"{server.context.trace_id:032x}"


def test_unsampled_records_nothing_but_propagates_flag_0() -> None:
    exporter = InMemorySpanExporter()
    tr = Tracing(config(sample_ratio=0.0), exporter)
    ctx = make_ctx()
    upstream: dict[str, str] = {}

    async def body() -> None:
        ctx.trace = trace = tr.begin(ctx, "l")
        assert not trace.recording
        assert await trace.run_filter(Passing("pre", {}), ctx) is None
        for n in (1, 2):
            ctx.attempts = n
            trace.start_attempt(ctx, CLUSTER, EP)
            upstream.update(sent_upstream(ctx))
            trace.attempt_failed(UpstreamStatus(503, b"", "application/json"))
        trace.end(ctx)

    assert run(tr, exporter, body) == []
    _, trace_id, span_id, flags = upstream["traceparent"].split("-")
    assert int(flags, 16) & 1 == 0
    assert int(trace_id, 16) and int(span_id, 16)
    assert grpc_metadata(ctx) == (("traceparent", upstream["traceparent"]),)


def test_client_that_did_not_sample_is_followed_even_at_ratio_1() -> None:
    exporter = InMemorySpanExporter()
    tr = Tracing(config(), exporter)
    trace_id, _, tp = client_tp(sampled=False)
    ctx = make_ctx({"traceparent": tp})

    async def body() -> None:
        ctx.trace = trace = tr.begin(ctx, "l")
        trace.start_attempt(ctx, CLUSTER, EP)
        trace.end(ctx)

    assert run(tr, exporter, body) == []
    assert ctx.request.upstream_headers["traceparent"].startswith(f"00-{trace_id}-")
    assert ctx.request.upstream_headers["traceparent"].endswith("-00")


def test_failed_attempt_and_failing_filter_are_errors() -> None:
    exporter = InMemorySpanExporter()
    tr = Tracing(config(), exporter)
    ctx = make_ctx()

    async def body() -> None:
        ctx.trace = trace = tr.begin(ctx, "l")
        ctx.attempts = 1
        trace.start_attempt(ctx, CLUSTER, EP)
        trace.attempt_failed(UpstreamStatus(503, b"{}", "application/json"))
        with pytest.raises(RateLimited):
            await trace.run_filter(Limiting("limit", {}), ctx)
        ctx.error = RateLimited("slow down")
        ctx.status = 429
        trace.end(ctx)

    spans = {s.name: s for s in run(tr, exporter, body)}
    attempt = spans["upstream pool"]
    assert attempt.status.status_code == StatusCode.ERROR
    assert (attempt.attributes or {})["error.type"] == "503"
    assert (attempt.attributes or {})["http.response.status_code"] == 503
    limit = spans["filter limit"]
    assert limit.status.status_code == StatusCode.ERROR
    assert (limit.attributes or {})["error.type"] == "rate_limit_exceeded"
    server = spans["POST /v1/chat/completions"]
    # A 4xx is the client's doing: named, but the server span is not an error.
    assert (server.attributes or {})["error.type"] == "rate_limit_exceeded"
    assert server.status.status_code == StatusCode.UNSET


def test_streamed_attempt_ends_when_the_stream_closes_with_its_usage() -> None:
    exporter = InMemorySpanExporter()
    tr = Tracing(config(), exporter)
    ctx = make_ctx()
    chunks = [
        b'data: {"model":"m","choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}\n\n',
        b'data: {"model":"m","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1}}'
        b"\n\ndata: [DONE]\n\n",
    ]

    async def upstream() -> AsyncIterator[bytes]:
        for c in chunks:
            yield c

    async def body() -> None:
        ctx.trace = trace = tr.begin(ctx, "l")
        ctx.attempts = 1
        trace.start_attempt(ctx, CLUSTER, EP)
        resp = GatewayResponse(200, "text/event-stream", [], stream=upstream())
        tap = UsageTap()
        assert resp.stream is not None
        resp.stream = tap_usage(resp.stream, tap)
        span = trace.attempt
        assert span is not None
        trace.attempt_answered(resp, tap)
        assert span.is_recording()  # the head is in; the span is still open
        assert [c async for c in resp.stream] == chunks
        assert span.is_recording()
        resp.close(None)
        assert not span.is_recording()
        trace.end(ctx)

    spans = {s.name: s for s in run(tr, exporter, body)}
    attempt = spans["upstream pool"]
    assert (attempt.attributes or {})["gen_ai.usage.output_tokens"] == 1
    assert (attempt.attributes or {})["smg.outcome"] == "success"
    assert attempt.end_time is not None
    assert attempt.end_time <= (spans["POST /v1/chat/completions"].end_time or 0)


def test_grpc_metadata_forwards_the_client_context_when_tracing_is_off() -> None:
    _, _, tp = client_tp()
    ctx = make_ctx({"traceparent": tp, "tracestate": "a=b"})
    assert grpc_metadata(ctx) == (("traceparent", tp), ("tracestate", "a=b"))
    assert grpc_metadata(make_ctx()) is None
    # gRPC refuses metadata that is not printable ASCII: such a header is not forwarded.
    assert client_trace_metadata({"traceparent": "00-\u00e9"}) is None
    assert client_trace_metadata({"traceparent": tp, "tracestate": "x\x01"}) == (
        ("traceparent", tp),
    )


def test_unchanged_section_keeps_its_tracer_on_reload() -> None:
    first = tracing_for(config(), None)
    assert first is not None
    assert tracing_for(config(), first) is first
    changed = tracing_for(config(sample_ratio=0.5), first)
    assert changed is not None and changed is not first
    assert tracing_for(config(enabled=False), first) is None


def test_otlp_http_endpoint_gets_the_traces_path() -> None:
    assert traces_endpoint(config()) == "http://127.0.0.1:4317"
    http = config(exporter="otlp_http", endpoint="http://c:4318")
    assert traces_endpoint(http) == "http://c:4318/v1/traces"
    custom = config(exporter="otlp_http", endpoint="https://c/otlp/traces")
    assert traces_endpoint(custom) == "https://c/otlp/traces"
