"""Real OTLP trace receivers (gRPC and HTTP/protobuf) on 127.0.0.1, for tests.

Both decode ``ExportTraceServiceRequest`` with the ``opentelemetry-proto`` messages the
exporters use, and keep every span received as a ``ReceivedSpan``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2

from tests.support.procs import HOST

# opentelemetry.proto.trace.v1.Span.SpanKind
KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3
STATUS_ERROR = 2


def _value(v: common_pb2.AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return None if which is None else getattr(v, which)


@dataclass
class ReceivedSpan:
    """One exported span, ids as lower-case hex like a traceparent writes them."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    status_code: int
    attributes: dict[str, Any]
    resource: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> bool:
        return self.status_code == STATUS_ERROR


class Collector:
    """Spans received so far, from any transport."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self.requests = 0

    def add(self, req: trace_service_pb2.ExportTraceServiceRequest) -> None:
        out: list[ReceivedSpan] = []
        for rs in req.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append(
                        ReceivedSpan(
                            name=s.name,
                            kind=s.kind,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            start_ns=s.start_time_unix_nano,
                            end_ns=s.end_time_unix_nano,
                            status_code=s.status.code,
                            attributes={kv.key: _value(kv.value) for kv in s.attributes},
                            resource=resource,
                        )
                    )
        with self._lock:
            self.requests += 1
            self._spans.extend(out)

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(
        self, pred: Callable[[list[ReceivedSpan]], bool], timeout: float = 15.0
    ) -> list[ReceivedSpan]:
        """Poll until ``pred(spans)`` holds; returns the spans (raises on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans
            if pred(spans):
                return spans
            if time.monotonic() > deadline:
                names = [(s.name, s.trace_id[:8]) for s in spans]
                raise AssertionError(f"spans never matched; received {names}")
            time.sleep(0.05)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def Export(self, request: Any, context: Any) -> Any:
        self.collector.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextmanager
def otlp_grpc_receiver() -> Iterator[tuple[str, Collector]]:
    """A gRPC TraceService on a free port; yields (endpoint URL, collector)."""
    collector = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(collector), server)
    port = server.add_insecure_port(f"{HOST}:0")
    server.start()
    try:
        yield f"http://{HOST}:{port}", collector
    finally:
        server.stop(None)


@contextmanager
def otlp_http_receiver() -> Iterator[tuple[str, Collector]]:
    """``POST /v1/traces`` (protobuf) on a free port; yields (endpoint URL, collector)."""
    collector = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/traces":
                self.send_response(404)
                self.end_headers()
                return
            req = trace_service_pb2.ExportTraceServiceRequest()
            req.ParseFromString(body)
            collector.add(req)
            out = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/v1/traces", collector
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
