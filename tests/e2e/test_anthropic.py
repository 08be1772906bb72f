"""Anthropic end to end: the real gateway, real simulators, the official SDKs as clients.

* ``openai`` SDK → gateway → ``anthropic`` cluster → ``smg sim --provider anthropic``
  (translation both ways: text, streams, forced and streamed tool calls, usage, errors);
* ``anthropic`` SDK → ``/v1/messages`` → (a) an HTTP-mode engine (``smg sim``,
  ``openai_http``), (b) gRPC mode (``smg sim --grpc`` playing a scripted Qwen3 tool
  call), (c) the Anthropic simulator by passthrough; errors in Anthropic's shape,
  a 529 falling back to the engine before the first byte;
* the differential test at the end: one tool-calling conversation through every path
  yields the same tool names, arguments and finish reasons.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, cast

import anthropic
import openai
import pytest

from tests.e2e.test_grpc_wire import grpc_sim
from tests.support.procs import Gateway, free_port, gateway, http_get, http_json, sim
from tests.support.providers import ProviderSim, provider_sim
from tests.support.tokenizer_assets import asset_dir

pytestmark = pytest.mark.e2e

ANTHROPIC_KEY = "sk-ant-sim-6d1e0b93c2f4"
BAD_ANTHROPIC_KEY = "sk-ant-wrong-0c9b8a7d6e"
GEMINI_KEY = "AIzaSimGemini-ant-5b1d88"
CLIENT_KEY = "gw-client-key-41a7c2"
CLAUDE = "claude-sonnet-sim"

WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
OPENAI_WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": WEATHER["name"],
        "description": WEATHER["description"],
        "parameters": WEATHER["input_schema"],
    },
}
# Quotes, unicode, nesting: tool arguments must arrive byte for byte.
TRICKY_ARGS = {"city": 'Zürich "old town" {x}', "days": 3, "tags": ["a,b", "é"]}
PARIS = {"city": "Paris", "days": 2}
GRPC_TOOL_OUT = (
    "<think>\nThe user wants the weather in Paris.\n</think>\n\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n'
    "</tool_call><|im_end|>"
)


def call_text(args: dict[str, Any], name: str = "get_weather") -> str:
    """The scripted phrase every simulator answers with exactly this tool call."""
    return f"Please call {name} {json.dumps(args, ensure_ascii=False)}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("anthropic")
    script = tmp / "tool.json"
    script.write_text(json.dumps([GRPC_TOOL_OUT]))
    tok_dir = str(asset_dir("qwen3"))
    with ExitStack() as stack:
        ant = stack.enter_context(
            provider_sim(tmp, "anthropic", [CLAUDE, "claude-haiku-sim"], ANTHROPIC_KEY)
        )
        gem = stack.enter_context(provider_sim(tmp, "gemini", ["gemini-2.5-flash"], GEMINI_KEY))
        engine = stack.enter_context(sim(tmp, "--itl-ms", "0", model="sim-model"))
        grpc = stack.enter_context(grpc_sim(tmp, "--script", str(script), "--tokenizer", tok_dir))
        doc = _config(ant.url, gem.url, engine, grpc, tok_dir)
        env = {"SIM_ANTHROPIC_KEY": ANTHROPIC_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
        gw = stack.enter_context(gateway(tmp, doc, env))
        yield {"gw": gw, "ant": ant, "engine": engine}


def _cloud(name: str, protocol: str, url: str, provider: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": protocol,
        "endpoints": [url],
        "provider": provider,
        "timeouts": {"first_byte": "3s"},
        "retry_policy": {"max_retries": 0},
    }


def _config(ant: str, gem: str, engine: str, grpc: str, tok_dir: str) -> dict[str, Any]:
    routes = [
        {"match": {"model": "claude-fallback"}, "cluster": "claude-haiku", "fallback": ["engine"]},
        {"match": {"model": "claude-badkey"}, "cluster": "claude-bad"},
        {"match": {"model": "claude-*"}, "cluster": "claude"},
        {"match": {"model": "gemini-*"}, "cluster": "gemini"},
        {"match": {"model": "qwen3-tools"}, "cluster": "grpc"},
        {"match": {"model": "*"}, "cluster": "engine"},
    ]
    return {
        "admin": {"address": f"127.0.0.1:{free_port()}"},
        "logging": {"level": "debug", "json": True},
        "models": {"qwen3-tools": {"tokenizer": tok_dir}},
        "listeners": [
            {
                "name": "public",
                "address": f"127.0.0.1:{free_port()}",
                "filters": ["request_id", "chat_template", "tokenize", "router"],
                "routes": routes,
            }
        ],
        "filters": {
            "request_id": {"type": "request_id"},
            "chat_template": {"type": "chat_template"},
            "tokenize": {"type": "tokenize"},
        },
        "clusters": [
            _cloud("claude", "anthropic", ant, {"api_key": "${SIM_ANTHROPIC_KEY}"}),
            # A base URL ending in /v1, the key from ANTHROPIC_API_KEY, any model renamed.
            _cloud(
                "claude-haiku", "anthropic", ant + "/v1", {"model_map": {"*": "claude-haiku-sim"}}
            ),
            _cloud("claude-bad", "anthropic", ant, {"api_key": BAD_ANTHROPIC_KEY}),
            _cloud("gemini", "gemini", gem, {"api_key": GEMINI_KEY}),
            {"name": "grpc", "protocol": "vllm_grpc", "endpoints": [grpc]},
            {"name": "engine", "endpoints": [engine]},
        ],
    }


@pytest.fixture
def gw(fleet: dict[str, Any]) -> Gateway:
    return cast(Gateway, fleet["gw"])


@pytest.fixture
def ant(fleet: dict[str, Any]) -> Iterator[ProviderSim]:
    s = cast(ProviderSim, fleet["ant"])
    s.reset()
    yield s
    s.fault()


def oai(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=15)


def claude(gw: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0, timeout=15)


def engine_stats(fleet: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(http_get(fleet["engine"] + "/sim/stats")[1]))


# -- openai SDK → anthropic cluster ---------------------------------------------------------


def test_openai_text_is_translated_both_ways(gw: Gateway, ant: ProviderSim) -> None:
    r = oai(gw).chat.completions.create(
        model=CLAUDE,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about gateways."},
        ],
        max_tokens=50,
        temperature=0.3,
        user="alice",
    )
    assert r.object == "chat.completion" and r.model == CLAUDE
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.content
    assert r.usage is not None and r.usage.prompt_tokens > 0 and r.usage.completion_tokens == 12
    sent = ant.last_request()
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent["headers"]  # the client's key never reaches Anthropic
    assert CLIENT_KEY not in json.dumps(sent["headers"])
    body = sent["body"]
    assert body["system"] == "Be brief." and body["max_tokens"] == 50
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Tell me about gateways."}]}
    ]
    assert body["temperature"] == 0.3 and body["metadata"] == {"user_id": "alice"}


def test_openai_request_without_max_tokens_gets_the_default(gw: Gateway, ant: ProviderSim) -> None:
    oai(gw).chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "hi"}])
    assert ant.last_request()["body"]["max_tokens"] == 4096


def test_openai_stream_equals_the_whole_answer(gw: Gateway, ant: ProviderSim) -> None:
    msgs: Any = [{"role": "user", "content": "stream me something"}]
    whole = oai(gw).chat.completions.create(model=CLAUDE, messages=msgs, max_tokens=40)
    text, finish, usage, roles = "", None, None, []
    for ch in oai(gw).chat.completions.create(
        model=CLAUDE,
        messages=msgs,
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
    ):
        usage = ch.usage or usage
        for c in ch.choices:
            text += c.delta.content or ""
            roles.append(c.delta.role)
            finish = c.finish_reason or finish
    assert text == whole.choices[0].message.content
    assert roles[0] == "assistant" and finish == "stop"
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert ant.last_request()["body"]["stream"] is True


def test_openai_forced_tool_call(gw: Gateway, ant: ProviderSim) -> None:
    r = oai(gw).chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "user", "content": "What is the weather?"}],
        tools=[OPENAI_WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    ch = r.choices[0]
    assert ch.finish_reason == "tool_calls" and ch.message.content is None
    (call,) = cast(list[Any], ch.message.tool_calls)
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sim-city", "days": 7}
    body = ant.last_request()["body"]
    assert body["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
        "disable_parallel_tool_use": True,
    }
    assert body["tools"][0]["input_schema"] == WEATHER["input_schema"]


def test_openai_streamed_tool_calls_arrive_byte_exact(gw: Gateway, ant: ProviderSim) -> None:
    prompt = call_text(TRICKY_ARGS) + " and " + call_text({"city": "Oslo"})
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for ch in oai(gw).chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "user", "content": prompt}],
        tools=[OPENAI_WEATHER],
        stream=True,
    ):
        for c in ch.choices:
            for tc in c.delta.tool_calls or ():
                slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                slot["id"] += tc.id or ""
                slot["name"] += (tc.function.name or "") if tc.function else ""
                slot["args"] += (tc.function.arguments or "") if tc.function else ""
            finish = c.finish_reason or finish
    assert finish == "tool_calls" and sorted(calls) == [0, 1]
    assert [calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_weather"]
    # Exactly the JSON the provider streamed, fragment after fragment.
    assert calls[0]["args"] == json.dumps(TRICKY_ARGS, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(calls[1]["args"]) == {"city": "Oslo"}
    assert all(c["id"].startswith("toolu_") for c in calls.values())


def test_openai_tool_result_turn(gw: Gateway, ant: ProviderSim) -> None:
    msgs: Any = [
        {"role": "user", "content": call_text(PARIS)},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_prev",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps(PARIS)},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_prev", "content": "sunny"},
    ]
    r = oai(gw).chat.completions.create(model=CLAUDE, messages=msgs, tools=[OPENAI_WEATHER])
    assert r.choices[0].message.content == "Tool get_weather returned: sunny"
    assert r.choices[0].finish_reason == "stop"
    turns = ant.last_request()["body"]["messages"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "toolu_prev", "name": "get_weather", "input": PARIS}
    ]
    assert turns[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_prev", "content": "sunny"}],
    }


def test_openai_usage_reports_cache_reads(gw: Gateway, ant: ProviderSim) -> None:
    long = " ".join(f"section {i} of the manual." for i in range(300))
    msgs: Any = [
        {
            "role": "user",
            "content": [{"type": "text", "text": long, "cache_control": {"type": "ephemeral"}}],
        },
        {"role": "user", "content": "summarise"},
    ]
    first = oai(gw).chat.completions.create(model=CLAUDE, messages=msgs)
    second = oai(gw).chat.completions.create(model=CLAUDE, messages=msgs)
    assert first.usage is not None and second.usage is not None
    created = (first.usage.model_extra or {})["cache_creation_input_tokens"]
    assert created > 1000
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens == created
    assert second.usage.prompt_tokens == first.usage.prompt_tokens


def test_openai_clients_get_provider_errors_in_openai_shape(gw: Gateway, ant: ProviderSim) -> None:
    c = oai(gw)
    msgs: Any = [{"role": "user", "content": "hi"}]
    ant.fault(status=429, retry_after=7, times=1)
    with pytest.raises(openai.RateLimitError) as rl:
        c.chat.completions.create(model=CLAUDE, messages=msgs)
    assert rl.value.response.headers["retry-after"] == "7"
    assert cast(dict[str, Any], rl.value.body)["type"] == "rate_limit_error"
    ant.fault(status=529, times=1)
    with pytest.raises(openai.InternalServerError) as ov:
        c.chat.completions.create(model=CLAUDE, messages=msgs)
    assert ov.value.status_code == 529
    assert cast(dict[str, Any], ov.value.body)["code"] == "overloaded_error"
    with pytest.raises(openai.BadRequestError) as bad:
        c.chat.completions.create(model=CLAUDE, messages=msgs, top_p=1.5)
    assert "top_p" in bad.value.message
    with pytest.raises(openai.BadRequestError) as n:
        c.chat.completions.create(model=CLAUDE, messages=msgs, n=2)
    assert cast(dict[str, Any], n.value.body)["param"] == "n"


def test_a_rejected_gateway_key_is_reworded_not_echoed(gw: Gateway) -> None:
    with pytest.raises(anthropic.AuthenticationError) as a:
        claude(gw).messages.create(
            model="claude-badkey", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    message = cast(dict[str, Any], a.value.body)["error"]["message"]
    assert "claude-bad" in message and BAD_ANTHROPIC_KEY not in message
    with pytest.raises(openai.AuthenticationError):
        oai(gw).chat.completions.create(
            model="claude-badkey", messages=[{"role": "user", "content": "hi"}]
        )


# -- anthropic SDK → /v1/messages → (a) HTTP-mode engine ---------------------------------------


def test_anthropic_sdk_on_an_http_worker(gw: Gateway, fleet: dict[str, Any]) -> None:
    m = claude(gw).messages.create(
        model="sim-model",
        max_tokens=8,
        system="You are terse.",
        messages=[{"role": "user", "content": "hello"}],
        stop_sequences=["never-matches"],
    )
    assert m.type == "message" and m.role == "assistant" and m.model == "sim-model"
    (block,) = m.content
    assert block.type == "text" and block.text
    assert m.stop_reason == "max_tokens"  # the engine stopped at max_tokens: finish "length"
    assert m.usage.output_tokens == 8 and m.usage.input_tokens > 0
    last = engine_stats(fleet)["last_request"]
    assert last["path"] == "/v1/chat/completions" and last["completion_tokens"] == 8


def test_anthropic_sdk_stream_on_an_http_worker(gw: Gateway) -> None:
    kwargs: Any = {
        "model": "sim-model",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "stream please"}],
    }
    whole = claude(gw).messages.create(**kwargs)
    with claude(gw).messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == cast(Any, whole.content[0]).text
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 10
    prompt = final.usage.input_tokens + (final.usage.cache_read_input_tokens or 0)
    assert prompt == whole.usage.input_tokens + (whole.usage.cache_read_input_tokens or 0)


def test_anthropic_sdk_tool_use_on_an_http_worker(gw: Gateway) -> None:
    kwargs: Any = {
        "model": "sim-model",
        "max_tokens": 64,
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": call_text(TRICKY_ARGS)}],
    }
    m = claude(gw).messages.create(**kwargs)
    (use,) = [b for b in m.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == TRICKY_ARGS
    assert m.stop_reason == "tool_use"
    partial = ""
    with claude(gw).messages.stream(**kwargs) as stream:
        for ev in stream:
            if ev.type == "input_json" and ev.partial_json:
                partial += ev.partial_json
        final = stream.get_final_message()
    (use,) = [b for b in final.content if b.type == "tool_use"]
    assert use.input == TRICKY_ARGS and final.stop_reason == "tool_use"
    assert partial == json.dumps(TRICKY_ARGS, ensure_ascii=False, separators=(",", ":"))
    # The result goes back as a tool message; the worker answers from it.
    follow = claude(gw).messages.create(
        model="sim-model",
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            *kwargs["messages"],
            {"role": "assistant", "content": [use.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
            },
        ],
    )
    assert cast(Any, follow.content[0]).text == "Tool get_weather returned: sunny"
    assert follow.stop_reason == "end_turn"


# -- anthropic SDK → (b) gRPC mode ------------------------------------------------------------


def test_anthropic_sdk_on_grpc_mode(gw: Gateway) -> None:
    kwargs: Any = {
        "model": "qwen3-tools",
        "max_tokens": 200,
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
    }
    m = claude(gw).messages.create(**kwargs)
    kinds = [b.type for b in m.content]
    assert kinds == ["thinking", "tool_use"] and m.stop_reason == "tool_use"
    thinking, use = m.content
    assert cast(Any, thinking).thinking == "\nThe user wants the weather in Paris.\n"
    assert cast(Any, use).input == PARIS and cast(Any, use).name == "get_weather"
    with claude(gw).messages.stream(**kwargs) as stream:
        final = stream.get_final_message()
    assert [b.model_dump(exclude={"id"}) for b in final.content] == [
        b.model_dump(exclude={"id"}) for b in m.content
    ]
    # The engine's prefix cache served the repeat: Anthropic counts cached tokens apart.
    assert final.usage.cache_read_input_tokens
    assert final.usage.input_tokens + final.usage.cache_read_input_tokens == m.usage.input_tokens
    count = claude(gw).messages.count_tokens(model="qwen3-tools", messages=kwargs["messages"])
    assert 0 < count.input_tokens < m.usage.input_tokens  # the tools are not in this count


# -- anthropic SDK → (c) Anthropic passthrough ------------------------------------------------


def test_passthrough_sends_the_native_body_and_relays_the_native_answer(
    gw: Gateway, ant: ProviderSim
) -> None:
    m = claude(gw).messages.create(
        model=CLAUDE,
        max_tokens=2048,
        system=[{"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}],
        thinking={"type": "enabled", "budget_tokens": 1024},
        metadata={"user_id": "u-9"},
        messages=[{"role": "user", "content": "hello"}],
    )
    # The simulator's own thinking signature survives: nothing was translated.
    assert [b.type for b in m.content] == ["thinking", "text"]
    assert cast(Any, m.content[0]).signature == "sig-sim"
    assert m.id.startswith("msg_") and m.usage.cache_creation_input_tokens
    sent = ant.last_request()
    assert sent["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert sent["headers"]["anthropic-version"] != "2023-06-01"  # the client's own version


def test_passthrough_stream_and_tool_use(gw: Gateway, ant: ProviderSim) -> None:
    kwargs: Any = {
        "model": CLAUDE,
        "max_tokens": 256,
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": call_text(TRICKY_ARGS)}],
    }
    m = claude(gw).messages.create(**kwargs)
    (use,) = m.content
    assert use.type == "tool_use" and use.input == TRICKY_ARGS and m.stop_reason == "tool_use"
    events = []
    with claude(gw).messages.stream(**kwargs) as stream:
        for ev in stream:
            events.append(ev.type)
        final = stream.get_final_message()
    assert cast(Any, final.content[0]).input == TRICKY_ARGS
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "input_json" in events and "content_block_stop" in events


def test_passthrough_counts_tokens(gw: Gateway, ant: ProviderSim) -> None:
    n = claude(gw).messages.count_tokens(model=CLAUDE, messages=[{"role": "user", "content": "x"}])
    assert n.input_tokens > 0
    assert ant.last_request()["path"] == "/v1/messages/count_tokens"


def test_models_lists_the_anthropic_clusters_models(gw: Gateway) -> None:
    ids = {m.id for m in oai(gw).models.list()}
    assert {CLAUDE, "claude-haiku-sim", "sim-model"} <= ids


def test_count_tokens_on_an_http_worker_is_an_anthropic_shaped_error(gw: Gateway) -> None:
    # The engine has no /v1/tokenize: its 404 reaches the client in Anthropic's shape.
    with pytest.raises(anthropic.NotFoundError) as e:
        claude(gw).messages.count_tokens(
            model="sim-model", messages=[{"role": "user", "content": "x"}]
        )
    assert cast(dict[str, Any], e.value.body)["type"] == "error"
    assert cast(dict[str, Any], e.value.body)["error"]["type"] == "not_found_error"


def test_bad_fields_are_rejected_in_anthropic_shape_naming_the_field(
    gw: Gateway, ant: ProviderSim
) -> None:
    c = claude(gw)
    # Caught by the gateway's decoder, whatever cluster would have served it.
    for model in ("sim-model", CLAUDE):
        with pytest.raises(anthropic.BadRequestError) as e:
            c.messages.create(
                model=model, max_tokens=0, messages=[{"role": "user", "content": "x"}]
            )
        err = cast(dict[str, Any], e.value.body)["error"]
        assert err["type"] == "invalid_request_error" and err["message"].startswith("max_tokens")
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(
            model="sim-model", max_tokens=5, messages=[{"role": "system", "content": "x"}]
        )
    assert "top-level `system`" in cast(dict[str, Any], e.value.body)["error"]["message"]
    # Caught by Anthropic itself, relayed untouched.
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(
            model=CLAUDE,
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"frobnicate": True},
        )
    assert "frobnicate" in cast(dict[str, Any], e.value.body)["error"]["message"]
    # Only a passthrough can serve server tools; other clusters refuse by field.
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(
            model="sim-model",
            max_tokens=5,
            tools=[cast(Any, {"type": "web_search_20250305", "name": "web_search"})],
            messages=[{"role": "user", "content": "x"}],
        )
    assert cast(dict[str, Any], e.value.body)["error"]["message"].startswith("tools.0.type")


def test_upstream_errors_reach_anthropic_clients_natively(gw: Gateway, ant: ProviderSim) -> None:
    c = claude(gw)
    msgs: Any = [{"role": "user", "content": "hi"}]
    ant.fault(status=429, retry_after=7, times=1)
    with pytest.raises(anthropic.RateLimitError) as rl:
        c.messages.create(model=CLAUDE, max_tokens=5, messages=msgs)
    assert rl.value.response.headers["retry-after"] == "7"
    assert cast(dict[str, Any], rl.value.body)["error"]["type"] == "rate_limit_error"
    ant.fault(status=529, times=1)
    with (
        pytest.raises(anthropic.OverloadedError),
        c.messages.stream(model=CLAUDE, max_tokens=5, messages=msgs) as s,
    ):
        s.get_final_message()


def test_529_falls_back_to_the_engine_before_the_first_byte(
    gw: Gateway, ant: ProviderSim, fleet: dict[str, Any]
) -> None:
    msgs: Any = [{"role": "user", "content": "hi"}]
    ant.fault(status=529, times=1)
    m = claude(gw).messages.create(model="claude-fallback", max_tokens=6, messages=msgs)
    assert ant.requests() == 1  # the failed attempt, renamed by model_map
    assert ant.last_request()["body"]["model"] == "claude-haiku-sim"
    assert m.model == "claude-fallback" and m.usage.output_tokens == 6  # the engine answered
    ant.fault(status=529, times=1)
    text = ""
    for ch in oai(gw).chat.completions.create(
        model="claude-fallback", messages=msgs, max_tokens=6, stream=True
    ):
        text += "".join(c.delta.content or "" for c in ch.choices)
    assert text and ant.requests() == 2
    assert engine_stats(fleet)["last_request"]["model"] == "claude-fallback"


def stream_error(ant: ProviderSim, after: int) -> None:
    """The next stream sends an ``overloaded_error`` event in place of event ``after``."""
    body = {"type": "overloaded_error", "after": after, "times": 1}
    assert http_json(ant.url + "/sim/stream_error", "POST", body)[0] == 200


def test_an_error_event_instead_of_message_start_still_falls_back(
    gw: Gateway, ant: ProviderSim, fleet: dict[str, Any]
) -> None:
    stream_error(ant, after=0)  # a 200 head, then the error: nothing reached the client yet
    text = ""
    for ch in oai(gw).chat.completions.create(
        model="claude-fallback",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=6,
        stream=True,
    ):
        text += "".join(c.delta.content or "" for c in ch.choices)
    assert text and ant.requests() == 1
    assert engine_stats(fleet)["last_request"]["model"] == "claude-fallback"


def test_a_mid_stream_error_event_ends_the_stream_in_the_clients_dialect(
    gw: Gateway, ant: ProviderSim
) -> None:
    msgs: Any = [{"role": "user", "content": "a long answer please"}]
    stream_error(ant, after=4)  # message_start, ping, block start, one delta, then the error
    got = ""
    with pytest.raises(openai.APIError) as e:
        for ch in oai(gw).chat.completions.create(model=CLAUDE, messages=msgs, stream=True):
            got += "".join(c.delta.content or "" for c in ch.choices)
    assert got and "simulated stream error" in str(e.value)
    stream_error(ant, after=4)
    with (
        pytest.raises(anthropic.APIStatusError) as a,
        claude(gw).messages.stream(model=CLAUDE, max_tokens=50, messages=msgs) as s,
    ):
        s.get_final_message()
    assert cast(dict[str, Any], a.value.body)["error"]["type"] == "overloaded_error"


def test_keys_never_in_debug_logs_nor_admin(gw: Gateway, ant: ProviderSim) -> None:
    claude(gw).messages.create(
        model=CLAUDE, max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )
    dumps = [http_get(gw.admin + p)[1].decode() for p in ("/config", "/clusters")]
    logs = gw.proc.output()
    assert '"level"' in logs
    for secret in (ANTHROPIC_KEY, BAD_ANTHROPIC_KEY, GEMINI_KEY):
        assert secret not in logs
        for d in dumps:
            assert secret not in d


# -- the differential test ------------------------------------------------------------------


def _openai_turn(gw: Gateway, model: str, msgs: Any, stream: bool) -> tuple[list[Any], str]:
    c = oai(gw)
    if not stream:
        ch = c.chat.completions.create(model=model, messages=msgs, tools=[OPENAI_WEATHER])
        calls = [
            (t.function.name, json.loads(t.function.arguments))
            for t in cast(list[Any], ch.choices[0].message.tool_calls or [])
        ]
        return calls, str(ch.choices[0].finish_reason)
    acc: dict[int, list[str]] = {}
    finish = ""
    for ev in c.chat.completions.create(
        model=model, messages=msgs, tools=[OPENAI_WEATHER], stream=True
    ):
        for choice in ev.choices:
            for t in choice.delta.tool_calls or ():
                slot = acc.setdefault(t.index, ["", ""])
                slot[0] += (t.function.name or "") if t.function else ""
                slot[1] += (t.function.arguments or "") if t.function else ""
            finish = choice.finish_reason or finish
    return [(n, json.loads(a)) for _, (n, a) in sorted(acc.items())], finish


_ANTHROPIC_FINISH = {"tool_use": "tool_calls", "end_turn": "stop"}


def _anthropic_turn(gw: Gateway, model: str, msgs: Any, stream: bool) -> tuple[list[Any], str]:
    kwargs: Any = {"model": model, "max_tokens": 256, "tools": [WEATHER], "messages": msgs}
    if stream:
        with claude(gw).messages.stream(**kwargs) as s:
            m = s.get_final_message()
    else:
        m = claude(gw).messages.create(**kwargs)
    calls = [(b.name, b.input) for b in m.content if b.type == "tool_use"]
    return calls, _ANTHROPIC_FINISH.get(str(m.stop_reason), str(m.stop_reason))


def _second_turn_openai(first: str) -> Any:
    return [
        {"role": "user", "content": first},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_w1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps(PARIS)},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_w1", "content": "sunny"},
    ]


def _second_turn_anthropic(first: str) -> Any:
    return [
        {"role": "user", "content": first},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_w1", "name": "get_weather", "input": PARIS}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_w1", "content": "sunny"}],
        },
    ]


PATHS = {
    "openai SDK → openai_http engine": (_openai_turn, "sim-model", True),
    "openai SDK → anthropic cluster": (_openai_turn, CLAUDE, True),
    "openai SDK → gemini cluster": (_openai_turn, "gemini-2.5-flash", True),
    "anthropic SDK → openai_http engine": (_anthropic_turn, "sim-model", True),
    "anthropic SDK → anthropic passthrough": (_anthropic_turn, CLAUDE, True),
    # The scripted gRPC engine always answers the same call: first turn only.
    "openai SDK → gRPC mode": (_openai_turn, "qwen3-tools", False),
    "anthropic SDK → gRPC mode": (_anthropic_turn, "qwen3-tools", False),
}


def test_differential_same_tool_conversation_through_every_path(gw: Gateway) -> None:
    first = call_text(PARIS)
    seen: dict[str, Any] = {}
    for name, (turn, model, two_turns) in PATHS.items():
        is_openai = turn is _openai_turn
        for stream in (False, True):
            msgs: Any = [{"role": "user", "content": first}]
            calls, finish = turn(gw, model, msgs, stream)
            seen[f"{name} stream={stream} turn 1"] = (calls, finish)
            if two_turns:
                follow = _second_turn_openai(first) if is_openai else _second_turn_anthropic(first)
                seen[f"{name} stream={stream} turn 2"] = turn(gw, model, follow, stream)
    for key, got in seen.items():
        want = ([("get_weather", PARIS)], "tool_calls") if "turn 1" in key else ([], "stop")
        assert [tuple(c) for c in got[0]] == want[0] and got[1] == want[1], key
