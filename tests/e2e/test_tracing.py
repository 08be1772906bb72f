"""Tracing end to end: real gateway processes, real sims (HTTP and gRPC), real OTLP receivers.

Clients send a W3C traceparent (the official openai SDK with extra headers, and raw
HTTP); the receivers decode what the gateway's exporter sends; the sims record the
traceparent they were given (``/sim/stats`` for HTTP, ``GetServerInfo`` for gRPC).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.test_grpc_wire import grpc_sim, sim_stats
from tests.support.otlp import (
    KIND_CLIENT,
    KIND_INTERNAL,
    KIND_SERVER,
    Collector,
    ReceivedSpan,
    otlp_grpc_receiver,
    otlp_http_receiver,
)
from tests.support.procs import (
    HOST,
    Gateway,
    Proc,
    free_port,
    gateway,
    gateway_config,
    http_get,
    http_json,
    sim,
    smg_cmd,
    wait_until,
)

pytestmark = pytest.mark.e2e

# Export batches every 100 ms instead of 5 s, so that tests wait little.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}
PROMPT_IDS = list(range(10, 40))


def client_context(sampled: bool = True) -> tuple[str, str, str]:
    """A fresh client trace: (trace id, span id, traceparent)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def parse_traceparent(tp: str) -> tuple[str, str, str]:
    version, trace_id, span_id, flags = tp.split("-")
    assert version == "00"
    return trace_id, span_id, flags


def http_stats(url: str) -> dict[str, Any]:
    _, body = http_get(url + "/sim/stats")
    stats: dict[str, Any] = json.loads(body)
    return stats


def traced(endpoint: str, **over: Any) -> dict[str, Any]:
    return {"enabled": True, "endpoint": endpoint, **over}


def by_kind(spans: list[ReceivedSpan], kind: int) -> list[ReceivedSpan]:
    return [s for s in spans if s.kind == kind]


def complete_trace(collector: Collector, trace_id: str) -> list[ReceivedSpan]:
    """Wait for a trace's server span (it ends last) and return the whole trace."""

    def done(spans: list[ReceivedSpan]) -> bool:
        return any(s.trace_id == trace_id and s.kind == KIND_SERVER for s in spans)

    collector.wait_for(done)
    return collector.trace(trace_id)


@pytest.fixture
def receiver() -> Iterator[tuple[str, Collector]]:
    with otlp_grpc_receiver() as r:
        yield r


def test_span_tree_links_client_gateway_and_engine(
    tmp_path: Path, receiver: tuple[str, Collector]
) -> None:
    endpoint, collector = receiver
    with sim(tmp_path) as engine:
        doc = gateway_config([engine], free_port(), free_port(), tracing=traced(endpoint))
        with gateway(tmp_path, doc, FAST_EXPORT) as gw:
            trace_id, client_span, tp = client_context()
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
            resp = client.chat.completions.create(
                model="sim-model",
                messages=[{"role": "user", "content": "hello there"}],
                max_tokens=7,
                temperature=0.5,
                top_p=0.9,
                extra_headers={"traceparent": tp, "tracestate": "vendor=abc"},
            )
            spans = complete_trace(collector, trace_id)
            engine_tp = http_stats(engine)["last_traceparent"]
            engine_headers = http_stats(engine)["last_headers"]

    (server,) = by_kind(spans, KIND_SERVER)
    assert server.name == "POST /v1/chat/completions"
    assert server.parent_span_id == client_span
    attrs = server.attributes
    assert attrs["http.request.method"] == "POST"
    assert attrs["url.path"] == "/v1/chat/completions"
    assert attrs["http.response.status_code"] == 200
    assert attrs["smg.listener"] == "public"
    assert attrs["smg.route"] == "route-0"
    assert attrs["smg.request_id"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "sim-model"
    assert attrs["gen_ai.request.max_tokens"] == 7
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert resp.usage is not None
    assert attrs["gen_ai.usage.input_tokens"] == resp.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == resp.usage.completion_tokens == 7
    assert attrs["gen_ai.response.model"] == resp.model
    assert attrs["gen_ai.response.finish_reasons"] == [resp.choices[0].finish_reason]
    assert server.resource["service.name"] == "smg"

    filters = by_kind(spans, KIND_INTERNAL)
    assert sorted(f.name for f in filters) == ["filter request_id", "filter router"]
    assert {f.attributes["smg.filter.type"] for f in filters} == {"request_id", "router"}
    assert all(f.parent_span_id == server.span_id for f in filters)

    (attempt,) = by_kind(spans, KIND_CLIENT)
    assert attempt.name == "upstream pool"
    assert attempt.parent_span_id == server.span_id
    a = attempt.attributes
    assert a["smg.attempt"] == 1
    assert a["smg.cluster"] == "pool"
    assert a["url.full"] == engine + "/v1/chat/completions"
    assert a["server.port"] == int(engine.rsplit(":", 1)[1])
    assert a["smg.lb.reason"] == "round_robin"
    assert a["smg.lb.policy"] == "round_robin"
    assert a["smg.outcome"] == "success"
    assert a["http.response.status_code"] == 200
    assert a["gen_ai.usage.output_tokens"] == 7
    assert not attempt.error

    # The engine saw the attempt span as its parent, not the client's span.
    assert engine_tp == f"00-{trace_id}-{attempt.span_id}-01"
    assert engine_headers["tracestate"] == "vendor=abc"
    assert all(s.trace_id == trace_id for s in spans)


def test_streamed_attempt_ends_with_the_stream_and_reports_usage(
    tmp_path: Path, receiver: tuple[str, Collector]
) -> None:
    endpoint, collector = receiver
    with sim(tmp_path, "--itl-ms", "20") as engine:
        doc = gateway_config([engine], free_port(), free_port(), tracing=traced(endpoint))
        with gateway(tmp_path, doc, FAST_EXPORT) as gw:
            trace_id, client_span, tp = client_context()
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
            stream = client.completions.create(
                model="sim-model",
                prompt="count to ten",
                max_tokens=12,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"traceparent": tp},
            )
            first_chunk_ns = 0
            usage = None
            for chunk in stream:
                if not first_chunk_ns:
                    first_chunk_ns = time.time_ns()
                if chunk.usage is not None:
                    usage = chunk.usage
            spans = complete_trace(collector, trace_id)

    assert usage is not None
    (server,) = by_kind(spans, KIND_SERVER)
    (attempt,) = by_kind(spans, KIND_CLIENT)
    assert server.parent_span_id == client_span
    assert attempt.parent_span_id == server.span_id
    # Eleven more tokens came 20 ms apart after the first one reached the client.
    assert attempt.end_ns > first_chunk_ns
    assert attempt.end_ns <= server.end_ns
    for s in (server, attempt):
        assert s.attributes["gen_ai.operation.name"] == "text_completion"
        assert s.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
        assert s.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens == 12
    assert server.attributes["smg.stream"] is True


def test_retry_makes_two_attempt_spans_and_the_engine_sees_each(
    tmp_path: Path, receiver: tuple[str, Collector]
) -> None:
    endpoint, collector = receiver
    with ExitStack() as stack:
        bad = stack.enter_context(sim(tmp_path, "--fail-rate", "1", "--fail-status", "503"))
        good = stack.enter_context(sim(tmp_path))
        doc = gateway_config([bad, good], free_port(), free_port(), tracing=traced(endpoint))
        doc["clusters"][0]["retry_policy"] = {"max_retries": 1, "backoff": {"base": "1ms"}}
        gw = stack.enter_context(gateway(tmp_path, doc, FAST_EXPORT))
        # Round robin: one of two requests starts on the failing engine.
        for _ in range(2):
            trace_id, _, tp = client_context()
            status, body, _ = http_json(
                gw.url + "/v1/chat/completions",
                "POST",
                {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]},
                {"traceparent": tp},
            )
            assert status == 200, body
            spans = complete_trace(collector, trace_id)
            (server,) = by_kind(spans, KIND_SERVER)
            if server.attributes["smg.attempts"] == 2:
                break
        else:
            pytest.fail("no request was retried")
        bad_tp = http_stats(bad)["last_traceparent"]
        good_tp = http_stats(good)["last_traceparent"]

    attempts = sorted(by_kind(spans, KIND_CLIENT), key=lambda s: s.attributes["smg.attempt"])
    assert [a.attributes["smg.attempt"] for a in attempts] == [1, 2]
    assert all(a.parent_span_id == server.span_id for a in attempts)
    first, second = attempts
    assert first.error
    assert first.attributes["smg.outcome"] == "error"
    assert first.attributes["error.type"] == "503"
    assert first.attributes["http.response.status_code"] == 503
    assert first.attributes["url.full"].startswith(bad)
    assert not second.error
    assert second.attributes["smg.outcome"] == "success"
    assert second.attributes["url.full"].startswith(good)
    assert not server.error
    # Each engine got the context of the attempt that reached it.
    assert bad_tp == f"00-{trace_id}-{first.span_id}-01"
    assert good_tp == f"00-{trace_id}-{second.span_id}-01"


def test_grpc_engine_receives_the_attempt_span_as_metadata(
    tmp_path: Path, receiver: tuple[str, Collector]
) -> None:
    endpoint, collector = receiver
    with grpc_sim(tmp_path) as engine:
        doc = gateway_config([engine], free_port(), free_port(), tracing=traced(endpoint))
        doc["clusters"][0]["protocol"] = "sglang_grpc"
        with gateway(tmp_path, doc, FAST_EXPORT) as gw:
            trace_id, client_span, tp = client_context()
            status, body, _ = http_json(
                gw.url + "/generate",
                "POST",
                {"input_ids": PROMPT_IDS, "sampling_params": {"max_new_tokens": 5}},
                {"traceparent": tp, "tracestate": "k=v"},
            )
            assert status == 200, body
            spans = complete_trace(collector, trace_id)
            stats = sim_stats(engine)

    (server,) = by_kind(spans, KIND_SERVER)
    (attempt,) = by_kind(spans, KIND_CLIENT)
    assert server.name == "POST /generate"
    assert server.parent_span_id == client_span
    assert attempt.parent_span_id == server.span_id
    assert attempt.attributes["server.port"] == int(engine.rsplit(":", 1)[1])
    assert "url.full" not in attempt.attributes
    assert server.attributes["gen_ai.request.max_tokens"] == 5
    assert server.attributes["gen_ai.usage.input_tokens"] == len(PROMPT_IDS)
    assert server.attributes["gen_ai.usage.output_tokens"] == body["meta_info"]["completion_tokens"]
    assert stats["last_traceparent"] == f"00-{trace_id}-{attempt.span_id}-01"
    assert stats["last_tracestate"] == "k=v"


def test_tracing_disabled_forwards_the_client_traceparent_and_exports_nothing(
    tmp_path: Path, receiver: tuple[str, Collector]
) -> None:
    endpoint, collector = receiver
    with ExitStack() as stack:
        http_engine = stack.enter_context(sim(tmp_path))
        grpc_engine = stack.enter_context(grpc_sim(tmp_path))
        doc = gateway_config([http_engine], free_port(), free_port())
        doc["tracing"] = {"enabled": False, "endpoint": endpoint}
        doc["clusters"].append(
            {"name": "grpc", "protocol": "vllm_grpc", "endpoints": [grpc_engine]}
        )
        doc["listeners"][0]["routes"] = [
            {"match": {"path": "/generate"}, "cluster": "grpc"},
            {"match": {"model": "*"}, "cluster": "pool"},
        ]
        gw = stack.enter_context(gateway(tmp_path, doc, FAST_EXPORT))
        _, _, tp = client_context()
        status, _, _ = http_json(
            gw.url + "/v1/chat/completions",
            "POST",
            {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]},
            {"traceparent": tp, "tracestate": "a=b"},
        )
        assert status == 200
        _, _, tp2 = client_context(sampled=False)
        status, _, _ = http_json(
            gw.url + "/generate", "POST", {"input_ids": PROMPT_IDS}, {"traceparent": tp2}
        )
        assert status == 200
        http_seen = http_stats(http_engine)["last_headers"]
        grpc_seen = sim_stats(grpc_engine)["last_traceparent"]
        time.sleep(0.5)  # several export intervals
    assert http_seen["traceparent"] == tp
    assert http_seen["tracestate"] == "a=b"
    assert grpc_seen == tp2
    assert collector.spans == []
    assert collector.requests == 0


def test_unsampled_requests_export_nothing_but_send_flag_00(
    tmp_path: Path, receiver: tuple[str, Collector]
) -> None:
    endpoint, collector = receiver
    with sim(tmp_path) as engine:
        doc = gateway_config(
            [engine], free_port(), free_port(), tracing=traced(endpoint, sample_ratio=0)
        )
        with gateway(tmp_path, doc, FAST_EXPORT) as gw:
            body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}
            # No client context: sample_ratio 0 decides.
            assert http_json(gw.url + "/v1/chat/completions", "POST", body)[0] == 200
            own = http_stats(engine)["last_traceparent"]
            # A client that did sample: the gateway follows its flag, whatever the ratio.
            trace_id, client_span, tp = client_context(sampled=True)
            headers = {"traceparent": tp}
            assert http_json(gw.url + "/v1/chat/completions", "POST", body, headers)[0] == 200
            spans = complete_trace(collector, trace_id)
            # A client that did not sample: followed too, and its trace id kept.
            trace_off, off_span, tp_off = client_context(sampled=False)
            headers = {"traceparent": tp_off}
            assert http_json(gw.url + "/v1/chat/completions", "POST", body, headers)[0] == 200
            followed = http_stats(engine)["last_traceparent"]
            time.sleep(0.5)
            exported = collector.spans

    own_trace, own_span, own_flags = parse_traceparent(own)
    # Sampled bit clear; the SDK also sets W3C level 2's "random trace id" bit (02).
    assert int(own_flags, 16) & 1 == 0
    assert own_trace != "0" * 32 and own_span != "0" * 16
    off_trace, off_parent, off_flags = parse_traceparent(followed)
    assert (off_trace, off_flags) == (trace_off, "00")
    assert off_parent != off_span  # the gateway's own (unrecorded) span
    assert {s.trace_id for s in exported} == {trace_id}
    assert by_kind(spans, KIND_SERVER)[0].parent_span_id == client_span


def test_launch_enable_trace_exports_from_every_worker(
    tmp_path: Path, receiver: tuple[str, Collector]
) -> None:
    endpoint, collector = receiver
    with sim(tmp_path) as engine:
        port, admin = free_port(), free_port()
        host_port = endpoint.removeprefix("http://")
        proc = Proc(
            smg_cmd(
                "launch",
                "--worker-urls",
                engine,
                "--port",
                str(port),
                "--prometheus-port",
                str(admin),
                "--workers",
                "2",
                "--enable-trace",
                "--otlp-traces-endpoint",
                host_port,  # the Rust smg's form: host:port
            ),
            tmp_path / "launch.log",
            FAST_EXPORT,
        )
        try:
            assert wait_until(lambda: http_get(f"http://{HOST}:{admin}/ready", 1)[0] == 200, 20)
            ids = []
            for _ in range(8):
                trace_id, _, tp = client_context()
                ids.append(trace_id)
                status, _, _ = http_json(
                    f"http://{HOST}:{port}/v1/completions",
                    "POST",
                    {"model": "sim-model", "prompt": "hi", "max_tokens": 2},
                    {"traceparent": tp, "Connection": "close"},
                )
                assert status == 200
            spans = collector.wait_for(
                lambda spans: {s.trace_id for s in by_kind(spans, KIND_SERVER)} >= set(ids)
            )
        finally:
            code = proc.stop()
    assert code == 0, proc.output()[-2000:]
    servers = [s for s in by_kind(spans, KIND_SERVER) if s.trace_id in ids]
    assert len(servers) == 8
    assert all(s.resource["service.name"] == "smg" for s in servers)
    pids = {s.resource["process.pid"] for s in servers}
    assert proc.pid not in pids  # spans come from the forked workers, not the parent
    assert 1 <= len(pids) <= 2


def test_hot_reload_turns_tracing_on_and_off(tmp_path: Path) -> None:
    with ExitStack() as stack:
        endpoint, collector = stack.enter_context(otlp_http_receiver())
        engine = stack.enter_context(sim(tmp_path))
        doc = gateway_config([engine], free_port(), free_port())
        gw: Gateway = stack.enter_context(gateway(tmp_path, doc, FAST_EXPORT))
        body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}

        def send() -> tuple[str, str]:
            trace_id, _, tp = client_context()
            assert (
                http_json(gw.url + "/v1/chat/completions", "POST", body, {"traceparent": tp})[0]
                == 200
            )
            return trace_id, http_stats(engine)["last_traceparent"]

        trace_off, seen = send()
        assert parse_traceparent(seen)[0] == trace_off
        version = gw.admin_json("/config")["version"]
        gw.write_config({**doc, "tracing": traced(endpoint, exporter="otlp_http")})
        assert wait_until(lambda: gw.admin_json("/config")["version"] != version, 15)
        trace_on, seen_on = send()
        spans = collector.wait_for(
            lambda spans: any(s.trace_id == trace_on and s.kind == KIND_CLIENT for s in spans)
        )
        (attempt,) = [s for s in spans if s.trace_id == trace_on and s.kind == KIND_CLIENT]
        assert seen_on == f"00-{trace_on}-{attempt.span_id}-01"

        version = gw.admin_json("/config")["version"]
        gw.write_config(doc)
        assert wait_until(lambda: gw.admin_json("/config")["version"] != version, 15)
        trace_after, _ = send()
        time.sleep(0.5)
        assert collector.trace(trace_after) == []
        assert collector.trace(trace_off) == []
        log = gw.proc.output()
    assert "Traceback" not in log


def test_shutdown_flushes_spans_still_queued(tmp_path: Path) -> None:
    with ExitStack() as stack:
        endpoint, collector = stack.enter_context(otlp_grpc_receiver())
        engine = stack.enter_context(sim(tmp_path))
        doc = gateway_config([engine], free_port(), free_port(), tracing=traced(endpoint))
        # Batches would leave only after a minute: the SIGTERM drain must send them.
        with gateway(tmp_path, doc, {"OTEL_BSP_SCHEDULE_DELAY": "60000"}) as gw:
            trace_id, _, tp = client_context()
            body = {"model": "sim-model", "prompt": "hi", "max_tokens": 2}
            assert (
                http_json(gw.url + "/v1/completions", "POST", body, {"traceparent": tp})[0] == 200
            )
            time.sleep(0.3)
            assert collector.spans == []
        spans = collector.trace(trace_id)
    assert {s.kind for s in spans} == {KIND_SERVER, KIND_INTERNAL, KIND_CLIENT}


def test_config_dump_redacts_exporter_secrets(tmp_path: Path) -> None:
    with sim(tmp_path) as engine:
        doc = gateway_config([engine], free_port(), free_port())
        doc["tracing"] = {"enabled": False, "headers": {"authorization": "Bearer s3cret"}}
        with gateway(tmp_path, doc) as gw:
            dumped = gw.admin_json("/config")
    assert "s3cret" not in json.dumps(dumped)


def test_collector_down_still_serves_and_exits_cleanly(tmp_path: Path) -> None:
    nobody = f"http://{HOST}:{free_port()}"
    with sim(tmp_path) as engine:
        doc = gateway_config([engine], free_port(), free_port(), tracing=traced(nobody))
        with gateway(tmp_path, doc, FAST_EXPORT) as gw:
            body = {"model": "sim-model", "prompt": "hi", "max_tokens": 2}
            for _ in range(3):
                assert http_json(gw.url + "/v1/completions", "POST", body)[0] == 200
            assert wait_until(lambda: "UNAVAILABLE" in gw.proc.output(), 10)
        # gateway() asserted exit code 0: the flush gave up after its bound.
        assert "spans not flushed" in gw.proc.log.read_text()
