"""Behaviour of the simulator under load and faults: cache, queueing, injected failures."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from typing import Any

import openai
import pytest

from tests.sim.conftest import HOST, Sim, SimFactory, free_port_range, wait_until

MSGS: Any = [{"role": "user", "content": "hello"}]


def metrics(sim: Sim) -> dict[str, float]:
    """Samples of /metrics keyed by ``name{labels}``."""
    status, raw, headers = sim.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    out: dict[str, float] = {}
    for line in raw.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def raw_exchange(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh connection and read until the server closes it."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def post_bytes(path: str, body: Any, extra: str = "Connection: close\r\n") -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n{extra}\r\n"
    )
    return head.encode() + data


def test_metrics_names_and_counters_move(sim: Sim) -> None:
    labels = '{engine="0",model_name="sim-model"}'
    before = metrics(sim)
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
    ):
        assert name + labels in before, name
    sim.client().chat.completions.create(model="m", messages=MSGS, max_tokens=3)
    after = metrics(sim)
    assert after["vllm:generation_tokens_total" + labels] == (
        before["vllm:generation_tokens_total" + labels] + 3
    )
    assert after["vllm:prompt_tokens_total" + labels] > before["vllm:prompt_tokens_total" + labels]
    assert (
        after["vllm:prefix_cache_queries_total" + labels]
        > before["vllm:prefix_cache_queries_total" + labels]
    )
    ok = 'vllm:request_success_total{engine="0",model_name="sim-model",finished_reason="length"}'
    assert after[ok] == before[ok] + 1
    assert 0.0 <= after["vllm:kv_cache_usage_perc" + labels] <= 1.0


def test_prefix_cache_hit_lowers_ttft(sim: Sim) -> None:
    prompt = "A long shared system prompt for caching. " * 100
    msgs: Any = [{"role": "system", "content": prompt}, {"role": "user", "content": "q1"}]
    c = sim.client()
    first = c.chat.completions.create(model="m", messages=msgs, max_tokens=1)
    ttft1 = sim.stats()["last_request"]["ttft_ms"]
    second = c.chat.completions.create(model="m", messages=msgs, max_tokens=1)
    stats = sim.stats()
    assert first.usage and first.usage.prompt_tokens_details
    assert second.usage and second.usage.prompt_tokens_details
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached is not None and cached > 0.9 * second.usage.prompt_tokens
    assert cached % 16 == 0  # whole blocks only
    assert stats["last_request"]["cached_tokens"] == cached
    assert stats["last_request"]["ttft_ms"] < ttft1
    # A different last turn still reuses the shared prefix.
    msgs[1]["content"] = "another question"
    third = c.chat.completions.create(model="m", messages=msgs, max_tokens=1)
    assert third.usage and third.usage.prompt_tokens_details
    assert third.usage.prompt_tokens_details.cached_tokens == cached - cached % 16
    assert stats["cache"]["hit_tokens"] >= cached


def test_lru_eviction_with_a_tiny_cache(start_sim: SimFactory) -> None:
    s = start_sim("--cache-blocks", "4", "--block-size", "4")
    a: Any = [{"role": "user", "content": "a" * 200}]
    b: Any = [{"role": "user", "content": "b" * 200}]
    c = s.client()

    def cached(msgs: Any) -> int:
        r = c.chat.completions.create(model="m", messages=msgs, max_tokens=1)
        assert r.usage and r.usage.prompt_tokens_details
        return r.usage.prompt_tokens_details.cached_tokens or 0

    assert cached(a) == 0
    assert cached(b) == 0  # evicts a's blocks
    assert cached(a) == 0
    assert s.stats()["cache"]["blocks_used"] == 4


def test_determinism_under_seed(sim: Sim, start_sim: SimFactory) -> None:
    body = {"messages": MSGS, "max_tokens": 12}
    same = start_sim("--seed", "7")
    other = start_sim("--seed", "8")
    texts = [s.post("/v1/chat/completions", body)[1]["choices"][0]["message"] for s in (sim, same)]
    assert texts[0] == texts[1]
    assert other.post("/v1/chat/completions", body)[1]["choices"][0]["message"] != texts[0]


def test_fail_rate_one_always_fails(start_sim: SimFactory) -> None:
    s = start_sim("--fail-rate", "1.0", "--fail-status", "429")
    with pytest.raises(openai.RateLimitError):
        s.client().chat.completions.create(model="m", messages=MSGS)
    status, doc = s.post("/v1/completions", {"prompt": "x"})
    assert status == 429 and doc["error"]["message"]
    assert s.request("GET", "/health")[0] == 200  # probes are not failed
    assert s.stats()["failed_injected"] == 2


def test_fail_rate_half_is_seeded(start_sim: SimFactory) -> None:
    runs = []
    for _ in range(2):
        s = start_sim("--fail-rate", "0.5", "--seed", "3")
        runs.append([s.post("/v1/completions", {"prompt": "x"})[0] for _ in range(20)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}


def test_drop_after_chunks_cuts_the_stream(start_sim: SimFactory) -> None:
    s = start_sim("--drop-after-chunks", "3")
    body = {"messages": MSGS, "max_tokens": 10, "stream": True}
    raw = raw_exchange(s.ports[0], post_bytes("/v1/chat/completions", body))
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"200 OK" in head and b"chunked" in head.lower()
    assert rest.count(b"data: ") == 3
    assert b"[DONE]" not in rest
    assert not rest.endswith(b"0\r\n\r\n")  # no terminating chunk: an incomplete body
    with pytest.raises(openai.APIConnectionError):
        list(s.client().chat.completions.create(model="m", messages=MSGS, stream=True))
    assert wait_until(lambda: s.stats()["dropped"] == 2)
    assert s.stats()["running"] == 0
    # Non-streamed answers are unaffected.
    assert s.post("/v1/chat/completions", {"messages": MSGS})[0] == 200


def test_hang_rate_one_never_answers(start_sim: SimFactory) -> None:
    s = start_sim("--hang-rate", "1.0")
    t0 = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        s.client(timeout=1.0).chat.completions.create(model="m", messages=MSGS)
    assert 0.9 < time.monotonic() - t0 < 3
    # The client gave up and closed its connection: the engine counts an abort.
    assert wait_until(lambda: s.stats()["aborted"] == 1 and s.stats()["hanging"] == 0)
    assert s.stats()["hung_injected"] == 1


def test_slow_start(start_sim: SimFactory) -> None:
    s = start_sim("--slow-start", "1.0")
    assert s.request("GET", "/health")[0] == 503
    status, doc = s.post("/v1/chat/completions", {"messages": MSGS})
    assert status == 503 and doc["error"]["code"] == 503
    assert s.request("GET", "/metrics")[0] == 200
    assert wait_until(lambda: s.request("GET", "/health")[0] == 200, 3)
    assert s.post("/v1/chat/completions", {"messages": MSGS})[0] == 200
    assert s.stats()["rejected_starting"] >= 2


def test_multi_port_engines_are_independent(start_sim: SimFactory) -> None:
    base = free_port_range(3)
    s = start_sim("--ttft-per-token-us", "0", ports=[base, base + 1, base + 2])
    body = {"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 1}
    for port in s.ports:
        assert s.request("GET", "/health", port=port)[0] == 200

    def cached(port: int) -> int:
        status, raw, _ = s.request("POST", "/v1/chat/completions", body, port=port)
        assert status == 200
        return int(json.loads(raw)["usage"]["prompt_tokens_details"]["cached_tokens"])

    assert cached(base) == 0
    assert cached(base) > 0
    assert cached(base + 1) == 0  # its own cache
    totals = [s.stats(port=p)["total_requests"] for p in s.ports]
    assert totals == [2, 1, 0]
    assert [s.stats(port=p)["port"] for p in s.ports] == s.ports


def test_queueing_beyond_max_running(start_sim: SimFactory) -> None:
    s = start_sim("--max-running", "1", "--itl-ms", "20", "--ttft-base-ms", "0")
    results: list[int] = []

    def one() -> None:
        status, _ = s.post("/v1/chat/completions", {"messages": MSGS, "max_tokens": 6})
        results.append(status)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    saw_waiting = wait_until(lambda: s.stats()["waiting"] >= 1, 2, interval=0.005)
    running = metrics(s)['vllm:num_requests_running{engine="0",model_name="sim-model"}']
    for t in threads:
        t.join(10)
    assert saw_waiting
    assert running <= 1
    assert results == [200, 200, 200]
    stats = s.stats()
    assert stats["waiting"] == stats["running"] == 0
    assert stats["last_request"]["queue_ms"] > 0


def test_itl_paces_the_stream(start_sim: SimFactory) -> None:
    s = start_sim("--itl-ms", "30", "--itl-per-request-ms", "0")
    arrivals = []
    stream = s.client().chat.completions.create(model="m", messages=MSGS, max_tokens=6, stream=True)
    for _ in stream:
        arrivals.append(time.monotonic())
    # role + first token arrive together; the 5 following tokens are ~30 ms apart
    assert arrivals[-2] - arrivals[1] > 0.1


def test_client_disconnect_mid_stream_aborts(sim: Sim) -> None:
    before = sim.stats()
    body = {"messages": MSGS, "max_tokens": 5000, "stream": True}
    with socket.create_connection((HOST, sim.ports[0]), timeout=5) as sock:
        sock.sendall(post_bytes("/v1/chat/completions", body, extra=""))
        got = b""
        while got.count(b"data: ") < 3:
            got += sock.recv(65536)
    assert wait_until(lambda: sim.stats()["aborted"] == before["aborted"] + 1)
    after = sim.stats()
    assert after["running"] == 0
    assert after["generation_tokens"] - before["generation_tokens"] < 5000
    assert after["last_request"]["outcome"] == "aborted"


def test_keep_alive_pipelining_and_expect_continue(sim: Sim) -> None:
    two = b"GET /health HTTP/1.1\r\nHost: sim\r\n\r\n" * 2
    closing = b"GET /v1/models HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n"
    raw = raw_exchange(sim.ports[0], two + closing)
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    assert raw.endswith(b'"max_model_len":131072}]}')

    body = json.dumps({"messages": MSGS, "max_tokens": 1}).encode()
    with socket.create_connection((HOST, sim.ports[0]), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")


def test_chunked_request_body_and_malformed_http(sim: Sim) -> None:
    body = json.dumps({"prompt": "chunked", "max_tokens": 2}).encode()
    req = (
        b"POST /v1/completions HTTP/1.1\r\nHost: sim\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    raw = raw_exchange(sim.ports[0], req)
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert re.search(rb'"completion_tokens":2', raw)
    assert raw_exchange(sim.ports[0], b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400")
