"""The simulated Anthropic API refuses what the real one refuses, and streams its grammar.

Driven by the official ``anthropic`` SDK (and raw HTTP where the SDK would not send the
mistake), straight at ``smg sim --provider anthropic``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import anthropic
import pytest

from tests.support.procs import http_json
from tests.support.providers import ProviderSim, provider_sim

KEY = "sk-ant-sim-test-8c1f"
MODEL = "claude-sim"
TOOL: dict[str, Any] = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def ant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderSim]:
    tmp: Path = tmp_path_factory.mktemp("antsim")
    with provider_sim(tmp, "anthropic", [MODEL], KEY) as s:
        yield s


@pytest.fixture
def client(ant: ProviderSim) -> anthropic.Anthropic:
    ant.reset()
    return anthropic.Anthropic(base_url=ant.url, api_key=KEY, max_retries=0, timeout=10)


def _raw(ant: ProviderSim, body: Any, **headers: str) -> tuple[int, Any]:
    h = {"x-api-key": KEY, "anthropic-version": "2023-06-01", **headers}
    status, doc, _ = http_json(
        ant.url + "/v1/messages", "POST", body, {k: v for k, v in h.items() if v}
    )
    return status, doc


def test_key_and_version_headers_are_required(ant: ProviderSim) -> None:
    ok = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    status, doc = _raw(ant, ok, **{"x-api-key": ""})
    assert status == 401 and doc["error"]["type"] == "authentication_error"
    status, doc = _raw(ant, ok, **{"x-api-key": "wrong"})
    assert status == 401
    status, doc = _raw(ant, ok, **{"anthropic-version": ""})
    assert status == 400 and "anthropic-version" in doc["error"]["message"]
    assert _raw(ant, ok)[0] == 200


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            "model: Field required",
        ),
        ({"model": MODEL, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 5}, "messages: Field required"),
        (
            {"model": MODEL, "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "system",
        ),
        (
            {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": ""}]},
            "non-empty",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "n": 2,
            },
            "n: Extra inputs",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}
                ],
            },
            "unexpected `tool_use_id`",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                    },
                    {"role": "user", "content": "no result"},
                ],
            },
            "without `tool_result`",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": {"type": "any"},
            },
            "tool_choice",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [TOOL],
                "tool_choice": {"type": "tool", "name": "other"},
            },
            "tool_choice.name",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "temperature": 2,
            },
            "temperature",
        ),
    ],
)
def test_invalid_requests_are_refused_naming_the_field(
    ant: ProviderSim, body: dict[str, Any], needle: str
) -> None:
    status, doc = _raw(ant, body)
    assert status == 400, doc
    assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error"
    assert needle in doc["error"]["message"]


def test_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="claude-nope", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


def test_scripted_tool_use_and_its_stream(client: anthropic.Anthropic) -> None:
    args = {"city": 'Zürich "x"'}
    kwargs: Any = {
        "model": MODEL,
        "max_tokens": 100,
        "tools": [TOOL],
        "messages": [{"role": "user", "content": f"call get_weather {json.dumps(args)}"}],
    }
    m = client.messages.create(**kwargs)
    (use,) = m.content
    assert use.type == "tool_use" and use.input == args and m.stop_reason == "tool_use"
    kinds = []
    with client.messages.stream(**kwargs) as s:
        for ev in s:
            kinds.append(ev.type)
        final = s.get_final_message()
    assert cast(Any, final.content[0]).input == args
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("content_block_stop") == 1 and "input_json" in kinds


def test_stop_sequences_max_tokens_and_cache_usage(client: anthropic.Anthropic) -> None:
    base: Any = {"model": MODEL, "messages": [{"role": "user", "content": "hello there"}]}
    full = client.messages.create(max_tokens=100, **base)
    text = cast(Any, full.content[0]).text
    assert full.stop_reason == "end_turn"
    cut = client.messages.create(max_tokens=100, stop_sequences=[text.split()[3]], **base)
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == text.split()[3]
    short = client.messages.create(max_tokens=3, **base)
    assert short.stop_reason == "max_tokens" and len(cast(Any, short.content[0]).text.split()) == 3
    cached: Any = {
        "model": MODEL,
        "max_tokens": 5,
        "system": [{"type": "text", "text": "S " * 500, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "x"}],
    }
    first = client.messages.create(**cached)
    second = client.messages.create(**cached)
    assert first.usage.cache_creation_input_tokens and not first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


def test_faults_answer_in_anthropic_shape(ant: ProviderSim, client: anthropic.Anthropic) -> None:
    ant.fault(status=529, times=1)
    with pytest.raises(anthropic.OverloadedError) as e:
        client.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert cast(dict[str, Any], e.value.body)["error"]["type"] == "overloaded_error"
    ant.fault(status=429, retry_after=3, times=1)
    with pytest.raises(anthropic.RateLimitError) as r:
        client.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert r.value.response.headers["retry-after"] == "3"
