"""HTTP mode end to end: real smg + real smg sim processes, the official openai SDK."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest

from tests.support.procs import (
    Gateway,
    free_port,
    gateway,
    gateway_config,
    http_get,
    http_json,
    sim,
    wait_until,
)

pytestmark = pytest.mark.e2e


def client(gw: Gateway, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, **kw)  # type: ignore[arg-type]


def sim_stats(url: str) -> dict[str, object]:
    return json.loads(http_get(url + "/sim/stats")[1])


def test_chat_completion_through_gateway(gw: Gateway) -> None:
    r = client(gw).chat.completions.create(
        model="sim-model", messages=[{"role": "user", "content": "Hello there"}], max_tokens=8
    )
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    assert r.usage is not None and r.usage.completion_tokens == 8
    assert r.model == "sim-model"


def test_chat_stream_with_usage_equals_non_stream(gw: Gateway) -> None:
    c = client(gw)
    msgs = [{"role": "user", "content": "Tell me a story about gateways"}]
    whole = c.chat.completions.create(model="sim-model", messages=msgs, max_tokens=12)  # type: ignore[arg-type]
    chunks = list(
        c.chat.completions.create(
            model="sim-model",
            messages=msgs,
            max_tokens=12,
            stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    finish = [
        ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason
    ]
    assert finish == ["length"]


def test_completions_and_embeddings(gw: Gateway) -> None:
    c = client(gw)
    r = c.completions.create(model="sim-model", prompt="Once upon a time", max_tokens=5)
    assert r.choices[0].text and r.usage is not None and r.usage.completion_tokens == 5
    e = c.embeddings.create(model="sim-model", input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) > 0


def test_sglang_generate_passes_through(gw: Gateway) -> None:
    status, doc, _ = http_json(
        gw.url + "/generate", "POST", {"text": "Hello", "sampling_params": {"max_new_tokens": 4}}
    )
    assert status == 200
    assert doc["meta_info"]["completion_tokens"] == 4


def test_models_and_health(gw: Gateway) -> None:
    ids = [m.id for m in client(gw).models.list()]
    assert ids == ["sim-model"]
    assert http_get(gw.url + "/health")[0] == 200


def test_unknown_model_is_404_model_not_found(tmp_path: Path, sims: list[str]) -> None:
    doc = gateway_config(sims, free_port(), free_port())
    doc["listeners"][0]["routes"] = [{"match": {"model": "sim-model"}, "cluster": "pool"}]
    with gateway(tmp_path, doc) as g:
        with pytest.raises(openai.NotFoundError) as ei:
            client(g).chat.completions.create(
                model="nope", messages=[{"role": "user", "content": "x"}]
            )
        assert ei.value.code == "model_not_found"
        assert "nope" in str(ei.value.message)


def test_request_id_reaches_worker_and_client(gw: Gateway, sims: list[str]) -> None:
    status, _, headers = http_json(
        gw.url + "/v1/chat/completions",
        "POST",
        {"model": "sim-model", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1},
        headers={"x-request-id": "req-abc-123"},
    )
    assert status == 200
    assert headers.get("x-request-id") == "req-abc-123"
    seen = [sim_stats(u)["last_headers"] for u in sims]
    assert any(h and h.get("x-request-id") == "req-abc-123" for h in seen)  # type: ignore[union-attr]


def test_round_robin_spreads_requests(gw: Gateway, sims: list[str]) -> None:
    c = client(gw)
    for _ in range(10):
        c.completions.create(model="sim-model", prompt="p", max_tokens=1)
    counts = [int(sim_stats(u)["total_requests"]) for u in sims]  # type: ignore[call-overload]
    assert counts == [5, 5]


def test_bad_json_is_openai_400_naming_the_problem(gw: Gateway) -> None:
    status, doc, _ = http_json(gw.url + "/v1/chat/completions", "POST", b"{not json")
    assert status == 400
    assert doc["error"]["type"] == "invalid_request_error"
    status, doc, _ = http_json(gw.url + "/v1/chat/completions", "POST", {"model": "sim-model"})
    assert status == 400 and doc["error"]["param"] == "messages"
    status, doc, _ = http_json(gw.url + "/v1/chat/completions", "POST", [1, 2])
    assert status == 400 and "object" in doc["error"]["message"]


def test_payload_limit_is_413(tmp_path: Path, sims: list[str]) -> None:
    doc = gateway_config(sims, free_port(), free_port())
    doc["listeners"][0]["max_payload_size"] = 1000
    with gateway(tmp_path, doc) as g:
        big = {"model": "sim-model", "messages": [{"role": "user", "content": "x" * 5000}]}
        status, body, _ = http_json(g.url + "/v1/chat/completions", "POST", big)
        assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_stream_is_relayed_as_it_arrives(tmp_path: Path) -> None:
    with sim(tmp_path, "--itl-ms", "150") as s:
        doc = gateway_config([s], free_port(), free_port())
        with gateway(tmp_path, doc) as g:
            arrivals = []
            stream = client(g).chat.completions.create(
                model="sim-model",
                messages=[{"role": "user", "content": "x"}],
                max_tokens=6,
                stream=True,
            )
            for _ in stream:
                arrivals.append(time.monotonic())
            # Buffering would deliver every chunk at once; relaying spreads them like the engine.
            assert arrivals[-1] - arrivals[1] > 0.5


def test_in_flight_returns_to_zero_after_ok_error_and_disconnect(tmp_path: Path) -> None:
    with sim(tmp_path, "--itl-ms", "100") as slow, sim(tmp_path, "--fail-rate", "1.0") as bad:
        doc = gateway_config([slow, bad], free_port(), free_port())
        doc["clusters"][0]["retry_policy"] = {"max_retries": 0}  # let the error reach us
        with gateway(tmp_path, doc) as g:
            c = client(g)
            c.completions.create(model="sim-model", prompt="p", max_tokens=1)  # one goes to slow
            with pytest.raises(openai.APIStatusError):
                c.completions.create(model="sim-model", prompt="p", max_tokens=1)  # to bad
            # a client that walks away in the middle of a stream
            s = c.chat.completions.create(
                model="sim-model",
                messages=[{"role": "user", "content": "x"}],
                max_tokens=50,
                stream=True,
            )
            next(iter(s))
            s.close()
            assert wait_until(
                lambda: all(e["in_flight"] == 0 for e in g.cluster_endpoints("pool").values()), 5
            )
            # and the worker saw the abort at once (not after generating all 50 tokens)
            assert wait_until(lambda: int(sim_stats(slow)["aborted"]) >= 1, 3)  # type: ignore[call-overload]


def test_api_key_filter(tmp_path: Path, sims: list[str]) -> None:
    doc = gateway_config(sims, free_port(), free_port())
    doc["listeners"][0]["filters"] = ["request_id", "auth", "router"]
    doc["filters"]["auth"] = {"type": "api_key", "config": {"keys": ["${TEST_SMG_KEY}"]}}
    doc["logging"] = {"level": "debug", "json": True}  # the chattiest logs must hold no key
    with gateway(tmp_path, doc, env={"TEST_SMG_KEY": "sk-good"}) as g:
        bad = openai.OpenAI(base_url=g.url + "/v1", api_key="sk-bad", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(
                model="sim-model", messages=[{"role": "user", "content": "x"}]
            )
        good = openai.OpenAI(base_url=g.url + "/v1", api_key="sk-good", max_retries=0)
        r = good.chat.completions.create(
            model="sim-model", messages=[{"role": "user", "content": "x"}], max_tokens=1
        )
        assert r.choices
        # the key is stripped before the worker, and never shown by the admin API
        seen = [sim_stats(u)["last_headers"] for u in sims]
        assert all("authorization" not in (h or {}) for h in seen)  # type: ignore[operator]
        assert "sk-good" not in http_get(g.admin + "/config")[1].decode()
        assert "sk-good" not in g.proc.output() and "sk-bad" not in g.proc.output()
