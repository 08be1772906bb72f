"""gRPC mode on the wire: a real gateway in front of real gRPC sims (vLLM and SGLang)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from smg_grpc_proto import sglang_scheduler_pb2, sglang_scheduler_pb2_grpc

from tests.support.procs import (
    HOST,
    Gateway,
    Proc,
    free_port,
    gateway,
    gateway_config,
    http_json,
    smg_cmd,
    wait_until,
)

pytestmark = pytest.mark.e2e
PROMPT = list(range(10, 50))


@contextmanager
def grpc_sim(tmp: Path, *extra: str) -> Iterator[str]:
    """A running ``smg sim --grpc`` on a free port; yields its grpc:// URL."""
    port = free_port()
    p = Proc(
        smg_cmd("sim", "--grpc", "--port", str(port), "--seed", "7", *extra),
        tmp / f"gsim-{port}.log",
    )
    try:
        if not wait_until(lambda: "listening on grpc://" in p.output(), 20):
            raise RuntimeError(f"gRPC sim did not start:\n{p.output()}")
        yield f"grpc://{HOST}:{port}"
    finally:
        p.stop()


def sim_stats(url: str) -> dict[str, Any]:
    """The sim's counters (SGLang GetServerInfo.scheduler_info)."""
    with grpc.insecure_channel(url.removeprefix("grpc://")) as ch:
        stub = sglang_scheduler_pb2_grpc.SglangSchedulerStub(ch)
        info = stub.GetServerInfo(sglang_scheduler_pb2.GetServerInfoRequest(), timeout=5)
    return json_format.MessageToDict(info.scheduler_info)


def config(urls: list[str], protocol: str, **cluster: Any) -> dict[str, Any]:
    doc = gateway_config(urls, free_port(), free_port())
    doc["clusters"][0]["protocol"] = protocol
    doc["clusters"][0].update(cluster)
    return doc


def sse_events(raw: bytes) -> list[Any]:
    out: list[Any] = []
    for line in raw.decode().splitlines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def post_stream(base: str, body: dict[str, Any]) -> tuple[int, bytes]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", "/generate", json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        resp.close()
        conn.close()


@pytest.mark.parametrize("protocol", ["vllm_grpc", "sglang_grpc"])
def test_generate_with_input_ids_stream_and_whole(tmp_path: Path, protocol: str) -> None:
    with (
        grpc_sim(tmp_path, "--itl-ms", "5") as url,
        gateway(tmp_path, config([url], protocol)) as g,
    ):
        body: dict[str, Any] = {"input_ids": PROMPT, "sampling_params": {"max_new_tokens": 7}}
        status, doc, _ = http_json(g.url + "/generate", "POST", body)
        assert status == 200, doc
        ids = doc["output_ids"]
        assert len(ids) == 7
        meta = doc["meta_info"]
        assert meta["finish_reason"] == {"type": "length", "length": 7}
        assert (meta["prompt_tokens"], meta["completion_tokens"]) == (len(PROMPT), 7)

        status, raw = post_stream(g.url, {**body, "stream": True})
        assert status == 200
        events = sse_events(raw)
        assert events[-1] == "[DONE]"
        chunks = events[:-1]
        assert [i for c in chunks for i in c["output_ids"]] == ids  # deterministic sim
        assert chunks[-1]["meta_info"]["finish_reason"]["type"] == "length"
        assert chunks[-1]["meta_info"]["cached_tokens"] == 32  # prefix cache: 2 blocks of 16

        # Natural stop (EOS), a stop token id, n > 1 and bad input all pass through.
        status, doc, _ = http_json(g.url + "/generate", "POST", {"input_ids": PROMPT})
        assert doc["meta_info"]["finish_reason"] == {"type": "stop", "matched": 2}
        stop_at = ids[3]
        sp = {"max_new_tokens": 7, "stop_token_ids": [stop_at]}
        status, doc, _ = http_json(
            g.url + "/generate", "POST", {"input_ids": PROMPT, "sampling_params": sp}
        )
        assert doc["output_ids"] == ids[: ids.index(stop_at) + 1]
        assert doc["meta_info"]["finish_reason"] == {"type": "stop", "matched": stop_at}
        sp = {"max_new_tokens": 3, "n": 2}
        status, doc, _ = http_json(
            g.url + "/generate", "POST", {"input_ids": PROMPT, "sampling_params": sp}
        )
        assert [d["index"] for d in doc] == [0, 1] and doc[0]["output_ids"] == ids[:3]
        status, doc, _ = http_json(g.url + "/generate", "POST", {"text": "hi"})
        assert status == 400 and doc["error"]["param"] == "input_ids"
        sp = {"max_new_tokens": 1 << 30}
        status, doc, _ = http_json(
            g.url + "/generate", "POST", {"input_ids": PROMPT, "sampling_params": sp}
        )
        assert status == 400  # INVALID_ARGUMENT from the engine (context length)
        ep = g.cluster_endpoints("pool")[url]
        assert ep["models"] == ["sim-model"]  # learned through GetModelInfo
        assert ep["in_flight"] == 0
        assert_disconnect_aborts(g, url)


def test_health_checks_use_the_health_rpc(tmp_path: Path) -> None:
    with grpc_sim(tmp_path) as good, grpc_sim(tmp_path, "--slow-start", "30") as starting:
        hc = {"interval": "200ms", "timeout": "500ms", "unhealthy_threshold": 2}
        doc = config([good, starting], "vllm_grpc", health_check=hc)
        with gateway(tmp_path, doc) as g:
            eps = lambda: g.cluster_endpoints("pool")  # noqa: E731
            assert wait_until(lambda: eps()[starting]["health"] == "unhealthy")
            assert g.cluster_endpoints("pool")[good]["health"] == "healthy"
            before = sim_stats(good).get("total_requests", 0)
            body = {"input_ids": PROMPT, "sampling_params": {"max_new_tokens": 2}}
            assert [http_json(g.url + "/generate", "POST", body)[0] for _ in range(4)] == [200] * 4
            assert sim_stats(good)["total_requests"] == before + 4
            assert sim_stats(starting).get("total_requests", 0) == 0


def assert_disconnect_aborts(g: Gateway, url: str) -> None:
    """A client leaving mid-stream makes the gateway send Abort; nothing stays in flight."""
    host, port = g.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body = {
        "input_ids": PROMPT,
        "stream": True,
        "rid": "gone-1",
        "sampling_params": {"max_new_tokens": 2000},
    }
    conn.request("POST", "/generate", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read(6) == b"data: "  # the stream is flowing
    assert g.cluster_endpoints("pool")[url]["in_flight"] == 1
    resp.close()
    conn.close()
    assert wait_until(lambda: "gone-1" in sim_stats(url).get("aborted_request_ids", []), 10)
    stats = sim_stats(url)
    assert stats["abort_rpcs"] >= 1 and stats.get("running", 0) == 0
    assert wait_until(lambda: g.cluster_endpoints("pool")[url]["in_flight"] == 0, 5)
