"""Wire formats of the simulator: OpenAI, vLLM and SGLang endpoints, through real clients."""

from __future__ import annotations

import base64
import itertools
import json
import struct
from typing import Any

import openai
import pytest

from tests.sim.conftest import Sim

MSGS: Any = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Describe a gateway in one sentence."},
]


def sse_events(raw: bytes) -> list[bytes]:
    """The ``data:`` payloads of an SSE body, in order."""
    return [line[len(b"data: ") :] for line in raw.split(b"\n\n") if line.startswith(b"data: ")]


def test_chat_non_stream_with_usage(sim: Sim) -> None:
    r = sim.client().chat.completions.create(model="any-name", messages=MSGS, max_tokens=7, n=2)
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    assert r.model == "any-name"  # echoes the request's model
    assert r.created > 0
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.finish_reason == "length" and c.message.role == "assistant" for c in r.choices)
    assert r.choices[0].message.content != r.choices[1].message.content
    u = r.usage
    assert u is not None
    assert u.completion_tokens == 14
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert u.prompt_tokens > 10
    assert u.prompt_tokens_details is not None and u.prompt_tokens_details.cached_tokens == 0


def test_chat_without_max_tokens_stops_after_default_length(sim: Sim) -> None:
    r = sim.client().chat.completions.create(model="m", messages=MSGS)
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.completion_tokens == 16


def test_chat_stream_with_usage_equals_non_stream(sim: Sim) -> None:
    c = sim.client()
    msgs: Any = [{"role": "user", "content": "stream me a story"}]
    whole = c.chat.completions.create(model="m", messages=msgs, max_completion_tokens=9)
    chunks = list(
        c.chat.completions.create(
            model="m",
            messages=msgs,
            max_completion_tokens=9,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert len({ch.id for ch in chunks}) == 1
    first = chunks[0].choices[0]
    assert first.delta.role == "assistant" and first.delta.content == ""
    tokens = [ch.choices[0].delta.content for ch in chunks[1:] if ch.choices]
    assert len([t for t in tokens if t]) == 9
    assert "".join(t or "" for t in tokens) == whole.choices[0].message.content
    finals = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "length"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 9
    assert whole.usage is not None and usage.prompt_tokens == whole.usage.prompt_tokens


def test_raw_stream_framing_ends_with_done(sim: Sim) -> None:
    body = {"messages": MSGS, "max_tokens": 3, "stream": True}
    status, raw, headers = sim.request("POST", "/v1/chat/completions", body)
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    events = sse_events(raw)
    assert events[-1] == b"[DONE]"
    assert len(events) == 1 + 3 + 1 + 1  # role, tokens, finish, [DONE]; no usage unless asked
    assert all("usage" not in json.loads(e) for e in events[:-1])


def test_chat_stream_with_n_interleaves_choices(sim: Sim) -> None:
    chunks = list(
        sim.client().chat.completions.create(
            model="m", messages=MSGS, max_tokens=4, n=2, stream=True
        )
    )
    texts = {0: "", 1: ""}
    for ch in chunks:
        for choice in ch.choices:
            texts[choice.index] += choice.delta.content or ""
    whole = sim.client().chat.completions.create(model="m", messages=MSGS, max_tokens=4, n=2)
    assert [texts[0], texts[1]] == [c.message.content for c in whole.choices]


def test_completions_stream_and_batch(sim: Sim) -> None:
    c = sim.client()
    r = c.completions.create(model="m", prompt=["Once upon", "a time"], max_tokens=3, n=2)
    assert r.object == "text_completion"
    assert [ch.index for ch in r.choices] == [0, 1, 2, 3]
    assert r.usage is not None and r.usage.completion_tokens == 12
    single = c.completions.create(model="m", prompt="Once upon", max_tokens=5)
    chunks = list(
        c.completions.create(
            model="m",
            prompt="Once upon",
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert text == single.choices[0].text
    assert single.choices[0].text.startswith(r.choices[0].text)  # longer answer, same start
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    ids = c.completions.create(model="m", prompt=[1, 2, 3, 4, 5], max_tokens=1)
    assert ids.usage is not None and ids.usage.prompt_tokens == 5


def test_embeddings_float_and_base64(sim: Sim) -> None:
    e = sim.client().embeddings.create(model="emb", input=["alpha", "beta"])
    assert [d.index for d in e.data] == [0, 1]
    assert len(e.data[0].embedding) == 64
    assert abs(sum(x * x for x in e.data[0].embedding) - 1.0) < 1e-6
    assert e.data[0].embedding != e.data[1].embedding
    assert e.usage.prompt_tokens == e.usage.total_tokens > 0
    status, doc = sim.post(
        "/v1/embeddings", {"input": "alpha", "encoding_format": "base64", "dimensions": 8}
    )
    assert status == 200
    vec = struct.unpack("<8f", base64.b64decode(doc["data"][0]["embedding"]))
    assert all(-1.0 <= x <= 1.0 for x in vec)


def test_models_health_and_model_info(sim: Sim) -> None:
    assert [m.id for m in sim.client().models.list()] == ["sim-model"]
    status, body, _ = sim.request("GET", "/health")
    assert (status, body) == (200, b"")
    status, info, _ = sim.request("GET", "/get_model_info")
    doc = json.loads(info)
    assert doc["model_path"] == "sim-model" and doc["is_generation"] is True
    status, info, _ = sim.request("GET", "/get_server_info")
    doc = json.loads(info)
    assert doc["seed"] == 7 and doc["block_size"] == 16 and "internal_states" in doc


def test_sglang_generate(sim: Sim) -> None:
    status, doc = sim.post("/generate", {"text": "Hello", "sampling_params": {"max_new_tokens": 4}})
    assert status == 200
    meta = doc["meta_info"]
    assert meta["completion_tokens"] == 4 and meta["prompt_tokens"] == 2
    assert meta["finish_reason"] == {"type": "length", "length": 4}
    assert "cached_tokens" in meta and meta["id"]
    assert len(doc["output_ids"]) == 4 and doc["text"]

    body = {"text": "Hello", "sampling_params": {"max_new_tokens": 4}, "stream": True}
    status, raw, _ = sim.request("POST", "/generate", body)
    events = sse_events(raw)
    assert events[-1] == b"[DONE]"
    outs = [json.loads(e) for e in events[:-1]]
    assert len(outs) == 4
    assert all(b["text"].startswith(a["text"]) for a, b in itertools.pairwise(outs))
    assert outs[-1]["text"] == doc["text"]  # cumulative, like SGLang
    assert [o["meta_info"]["completion_tokens"] for o in outs] == [1, 2, 3, 4]
    assert [o["meta_info"]["finish_reason"] for o in outs[:-1]] == [None] * 3
    assert outs[-1]["meta_info"]["finish_reason"]["type"] == "length"

    status, batch = sim.post("/generate", {"text": ["a", "b"], "sampling_params": {}})
    assert status == 200 and isinstance(batch, list) and len(batch) == 2
    assert batch[0]["meta_info"]["finish_reason"]["type"] == "stop"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", b"{not json", None),
        ("/v1/chat/completions", {"model": "m"}, "messages"),
        ("/v1/chat/completions", {"messages": []}, "messages"),
        ("/v1/chat/completions", {"messages": [{"content": "no role"}]}, "messages"),
        ("/v1/chat/completions", {"messages": MSGS, "max_tokens": "9"}, "max_tokens"),
        ("/v1/chat/completions", {"messages": MSGS, "n": 0}, "n"),
        ("/v1/completions", {"model": "m"}, "prompt"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 10**9}, "prompt"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x" * 600000}]},
            "messages",
        ),
        ("/v1/embeddings", {"model": "m"}, "input"),
        ("/generate", {"sampling_params": {}}, "text"),
    ],
)
def test_bad_input_is_openai_400(sim: Sim, path: str, body: Any, param: str | None) -> None:
    status, doc = sim.post(path, body)
    assert status == 400
    err = doc["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert err["message"] and "code" in err


def test_body_not_an_object_and_unknown_routes(sim: Sim) -> None:
    status, doc = sim.post("/v1/chat/completions", [1, 2])
    assert status == 400 and "object" in doc["error"]["message"]
    assert sim.request("GET", "/nope")[0] == 404
    assert sim.request("GET", "/v1/chat/completions")[0] == 405


def test_request_id_is_echoed_and_recorded(sim: Sim) -> None:
    status, raw, headers = sim.request(
        "POST",
        "/v1/chat/completions",
        {"messages": MSGS, "max_tokens": 1},
        headers={"X-Request-Id": "req-42", "Content-Type": "application/json"},
    )
    assert status == 200
    assert headers["x-request-id"] == "req-42"
    assert json.loads(raw)["id"] == "chatcmpl-req-42"
    stats = sim.stats()
    assert stats["last_headers"]["x-request-id"] == "req-42"
    assert stats["last_request"]["id"] == "chatcmpl-req-42"


def test_openai_sdk_stream_over_keep_alive_connection(sim: Sim) -> None:
    # One SDK client reuses its connection: responses must be framed exactly.
    c = sim.client()
    for i in range(5):
        text = "".join(
            ch.choices[0].delta.content or ""
            for ch in c.chat.completions.create(
                model="m", messages=MSGS, max_tokens=2 + i, stream=True
            )
            if ch.choices
        )
        assert text
        assert c.chat.completions.create(model="m", messages=MSGS, max_tokens=1).choices


def test_sdk_errors_map_to_openai_exceptions(sim: Sim) -> None:
    with pytest.raises(openai.BadRequestError) as ei:
        sim.client().chat.completions.create(model="m", messages=[])
    assert ei.value.param == "messages"  # type: ignore[attr-defined]
