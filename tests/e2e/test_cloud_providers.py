"""Cloud protocols end to end: the real gateway in front of simulated OpenAI and Gemini APIs
(and an HTTP-mode engine), driven by the official ``openai`` SDK.

One config routes ``gpt-*`` to the openai simulator, ``gemini-*`` to the gemini simulator
and everything else to ``smg sim``; each cloud route falls back to the other provider
(with ``provider.model_map``) on 429 / 5xx / timeouts before the first byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.procs import Gateway, free_port, gateway, http_get, http_json, sim
from tests.support.providers import ProviderSim, provider_sim

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-simopenai-3f9a1c77e2d4"
GEMINI_KEY = "AIzaSimGemini-5b1d88a0c4e7"
BAD_OPENAI_KEY = "sk-wrongopenai-9d2e4f6a8b"
BAD_GEMINI_KEY = "AIzaWrongGemini-7c3b5a9d1e"
CLIENT_KEY = "client-own-key-0a1b2c3d4e"
ALL_KEYS = (OPENAI_KEY, GEMINI_KEY, BAD_OPENAI_KEY, BAD_GEMINI_KEY)

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "city": {"type": "string", "format": "uri-reference"},
                "days": {"type": ["integer", "null"]},
                "units": {"type": "string", "enum": ["metric", "imperial"]},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
            },
            "required": ["city"],
            "$defs": {"tag": {"type": "string", "additionalProperties": False}},
        },
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
# Arguments with quotes, unicode and nesting: they must arrive byte-for-byte equal.
SCRIPTED_ARGS = {"city": 'Zürich "old town"', "days": 3, "tags": ["a,b", "{x}"]}
LONG_PROMPT = " ".join(f"chapter {i} of the gateway manual explains routing." for i in range(200))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The two provider simulators, an HTTP engine, and the gateway in front of them."""
    tmp = tmp_path_factory.mktemp("cloud")
    with (
        provider_sim(tmp, "openai", ["gpt-4o", "gpt-4o-mini"], OPENAI_KEY) as oai,
        provider_sim(tmp, "gemini", ["gemini-2.5-flash", "gemini-3-pro"], GEMINI_KEY) as gem,
        sim(tmp, model="sim-model") as engine,
    ):
        doc = fleet_config(oai.url, gem.url, engine, free_port(), free_port())
        env = {"SIM_OPENAI_KEY": OPENAI_KEY, "GEMINI_API_KEY": GEMINI_KEY}
        with gateway(tmp, doc, env) as gw:
            yield {"gw": gw, "openai": oai, "gemini": gem}


def _cloud(name: str, protocol: str, url: str, provider: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": protocol,
        "endpoints": [url],
        "provider": provider,
        "timeouts": {"first_byte": "1500ms"},
        "retry_policy": {"max_retries": 0},
    }


def fleet_config(oai: str, gem: str, engine: str, port: int, admin: int) -> dict[str, Any]:
    """Routes by model family, with cross-provider fallbacks."""
    route = [
        {"match": {"model": "gpt-badkey"}, "cluster": "openai-bad"},
        {"match": {"model": "gemini-badkey"}, "cluster": "gemini-bad"},
        {"match": {"model": "gpt-4o-mini"}, "cluster": "openai"},
        {"match": {"model": "gpt-*"}, "cluster": "openai", "fallback": ["gemini-as-gpt"]},
        {"match": {"model": "gemini-*"}, "cluster": "gemini", "fallback": ["openai-as-gemini"]},
        {"match": {"model": "*"}, "cluster": "engines"},
    ]
    return {
        "admin": {"address": f"127.0.0.1:{admin}"},
        "logging": {"level": "debug", "json": True},
        "listeners": [
            {
                "name": "public",
                "address": f"127.0.0.1:{port}",
                "filters": ["request_id", "router"],
                "routes": route,
            }
        ],
        "filters": {"request_id": {"type": "request_id"}},
        "clusters": [
            # The base URL carries /v1, as OpenAI SDKs take it.
            _cloud("openai", "openai", oai + "/v1", {"api_key": "${SIM_OPENAI_KEY}"}),
            _cloud("openai-bad", "openai", oai + "/v1", {"api_key": BAD_OPENAI_KEY}),
            _cloud(
                "openai-as-gemini",
                "openai",
                oai,
                {"api_key": "${SIM_OPENAI_KEY}", "model_map": {"*": "gpt-4o"}},
            ),
            # No api_key: GEMINI_API_KEY from the environment.
            _cloud("gemini", "gemini", gem, {}),
            _cloud("gemini-bad", "gemini", gem, {"api_key": BAD_GEMINI_KEY}),
            _cloud("gemini-as-gpt", "gemini", gem, {"model_map": {"*": "gemini-2.5-flash"}}),
            {"name": "engines", "endpoints": [engine]},
        ],
    }


@pytest.fixture
def gw(fleet: dict[str, Any]) -> Gateway:
    return fleet["gw"]  # type: ignore[no-any-return]


@pytest.fixture
def oai(fleet: dict[str, Any]) -> Iterator[ProviderSim]:
    s: ProviderSim = fleet["openai"]
    s.reset()
    yield s
    s.fault()


@pytest.fixture
def gem(fleet: dict[str, Any]) -> Iterator[ProviderSim]:
    s: ProviderSim = fleet["gemini"]
    s.reset()
    yield s
    s.fault()


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


def _stream_text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _stream_calls(chunks: list[Any]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for c in chunks:
        for d in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] = d.id or slot["id"]
            if d.function is not None:
                slot["name"] = d.function.name or slot["name"]
                slot["arguments"] += d.function.arguments or ""
    return calls


def _finish(chunks: list[Any]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


# -- OpenAI ------------------------------------------------------------------------------


def test_openai_text_goes_out_with_the_configured_key_only(gw: Gateway, oai: ProviderSim) -> None:
    r = client(gw).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], max_tokens=5
    )
    assert r.model == "gpt-4o"
    assert r.choices[0].finish_reason == "length"
    assert len((r.choices[0].message.content or "").split()) == 5
    assert r.usage is not None and r.usage.completion_tokens == 5
    sent = oai.last_request()
    assert sent["path"] == "/v1/chat/completions"  # base URL /v1 joined without /v1/v1
    assert sent["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert CLIENT_KEY not in json.dumps(sent["headers"])


def test_openai_stream_equals_whole_answer_with_cached_usage(gw: Gateway, oai: ProviderSim) -> None:
    c = client(gw)
    msgs: Any = [{"role": "user", "content": LONG_PROMPT}]
    whole = c.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    assert whole.usage is not None and whole.usage.prompt_tokens >= 1024
    chunks = list(
        c.chat.completions.create(
            model="gpt-4o-mini",
            messages=msgs,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert _stream_text(chunks) == whole.choices[0].message.content
    assert _finish(chunks) == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens is not None
    assert usage.prompt_tokens_details.cached_tokens >= 1024  # the second sight is cached


def test_openai_forced_and_streamed_tool_calls(gw: Gateway, oai: ProviderSim) -> None:
    c = client(gw)
    msgs: Any = [{"role": "user", "content": "call get_weather " + json.dumps(SCRIPTED_ARGS)}]
    forced = c.chat.completions.create(
        model="gpt-4o",
        messages=msgs,
        tools=[WEATHER_TOOL, TIME_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    call = (forced.choices[0].message.tool_calls or [])[0]
    assert forced.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == SCRIPTED_ARGS  # type: ignore[union-attr]
    chunks = list(
        c.chat.completions.create(
            model="gpt-4o",
            messages=msgs,
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            stream=True,
        )
    )
    calls = _stream_calls(chunks)
    assert list(calls) == [0] and calls[0]["name"] == "get_weather"
    assert calls[0]["arguments"] == call.function.arguments  # type: ignore[union-attr]
    assert _finish(chunks) == ["tool_calls"]


def test_openai_field_error_names_the_field(gw: Gateway, oai: ProviderSim) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client(gw).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], temperature=3.5
        )
    assert exc.value.status_code == 400
    assert exc.value.param == "temperature"  # type: ignore[attr-defined]


def test_bad_configured_openai_key_is_a_clear_401(gw: Gateway, oai: ProviderSim) -> None:
    with pytest.raises(openai.AuthenticationError) as exc:
        client(gw).chat.completions.create(
            model="gpt-badkey", messages=[{"role": "user", "content": "hi"}]
        )
    text = str(exc.value)
    assert "openai-bad" in text and "rejected the API key" in text
    assert BAD_OPENAI_KEY[-4:] not in text and "sk-" not in text


# -- Gemini ------------------------------------------------------------------------------


def test_gemini_text_and_stream_agree(gw: Gateway, gem: ProviderSim) -> None:
    c = client(gw)
    msgs: Any = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "Tell me about gateways"},
    ]
    whole = c.chat.completions.create(model="gemini-2.5-flash", messages=msgs, max_tokens=7)
    assert whole.choices[0].finish_reason == "length"
    assert whole.model == "gemini-2.5-flash"
    sent = gem.last_request()
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == GEMINI_KEY
    assert "authorization" not in sent["headers"]
    body = sent["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [t["role"] for t in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"] == {"maxOutputTokens": 7}
    chunks = list(
        c.chat.completions.create(
            model="gemini-2.5-flash",
            messages=msgs,
            max_tokens=7,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert gem.last_request()["query"] == "alt=sse"
    assert _stream_text(chunks) == whole.choices[0].message.content
    assert _finish(chunks) == ["length"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_gemini_forced_tool_call_with_cleaned_schema(gw: Gateway, gem: ProviderSim) -> None:
    r = client(gw).chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "What is the weather?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    calls = r.choices[0].message.tool_calls or []
    assert r.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather"]  # type: ignore[union-attr]
    args = json.loads(calls[0].function.arguments)  # type: ignore[union-attr]
    assert args == {"city": "sim-city", "days": 7, "units": "metric", "tags": ["sim-tags"]}
    body = gem.last_request()["body"]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    decls = body["tools"][0]["functionDeclarations"]
    assert decls[1] == {"name": "get_time"}  # no-argument function: no parameters
    params = decls[0]["parameters"]
    assert "additionalProperties" not in params and "$schema" not in params
    assert params["properties"]["days"] == {"type": "integer", "nullable": True}
    assert params["properties"]["tags"]["items"] == {"type": "string"}


def test_gemini_streamed_tool_call_keeps_arguments_exact(gw: Gateway, gem: ProviderSim) -> None:
    prompt = "call get_weather " + json.dumps(SCRIPTED_ARGS) + " and call get_time"
    chunks = list(
        client(gw).chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": prompt}],
            tools=[WEATHER_TOOL, TIME_TOOL],  # type: ignore[list-item]
            stream=True,
        )
    )
    calls = _stream_calls(chunks)
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == SCRIPTED_ARGS
    assert json.loads(calls[1]["arguments"]) == {}
    assert all(c["id"].startswith("call_") for c in calls.values())
    assert _finish(chunks) == ["tool_calls"]


def test_gemini_tool_result_round_trip(gw: Gateway, gem: ProviderSim) -> None:
    c = client(gw)
    msgs: list[Any] = [{"role": "user", "content": 'call get_weather {"city": "Oslo"}'}]
    first = c.chat.completions.create(
        model="gemini-2.5-flash",
        messages=msgs,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    msg = first.choices[0].message
    call = (msg.tool_calls or [])[0]
    msgs.append(msg.model_dump(exclude_none=True))
    msgs.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 4}'})
    second = c.chat.completions.create(
        model="gemini-2.5-flash",
        messages=msgs,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert second.choices[0].message.content == 'Tool get_weather returned: {"temp_c":4}'
    turns = gem.last_request()["body"]["contents"]
    assert turns[1]["parts"][0]["functionCall"] == {"name": "get_weather", "args": {"city": "Oslo"}}
    assert turns[2] == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "name": "get_weather",
                    "response": {"temp_c": 4},
                    "id": call.id,
                }
            }
        ],
    }


def test_gemini3_thought_signature_is_replayed(gw: Gateway, gem: ProviderSim) -> None:
    """Gemini 3 refuses a replayed call without its signature; the gateway keeps it."""
    c = client(gw)
    msgs: list[Any] = [{"role": "user", "content": "call get_time"}]
    tools: Any = [TIME_TOOL]
    first = c.chat.completions.create(model="gemini-3-pro", messages=msgs, tools=tools)
    msg = first.choices[0].message
    call = (msg.tool_calls or [])[0]
    msgs += [
        msg.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "12:00"},
    ]
    second = c.chat.completions.create(model="gemini-3-pro", messages=msgs, tools=tools)
    assert second.choices[0].message.content == 'Tool get_time returned: {"result":"12:00"}'
    replayed = gem.last_request()["body"]["contents"][1]["parts"][0]
    assert replayed["thoughtSignature"].startswith("sig-")
    # A history written elsewhere (unknown id) goes out with Google's documented sentinel.
    msgs[1]["tool_calls"][0]["id"] = msgs[2]["tool_call_id"] = "call_from_elsewhere"
    third = c.chat.completions.create(model="gemini-3-pro", messages=msgs, tools=tools)
    assert third.choices[0].finish_reason == "stop"
    part = gem.last_request()["body"]["contents"][1]["parts"][0]
    assert part["thoughtSignature"] == "skip_thought_signature_validator"


def test_gemini_cached_tokens_and_safety(gw: Gateway, gem: ProviderSim) -> None:
    c = client(gw)
    msgs: Any = [{"role": "user", "content": LONG_PROMPT}]
    c.chat.completions.create(model="gemini-2.5-flash", messages=msgs)
    again = c.chat.completions.create(model="gemini-2.5-flash", messages=msgs)
    details = again.usage.prompt_tokens_details  # type: ignore[union-attr]
    assert details is not None and (details.cached_tokens or 0) >= 1024
    unsafe = c.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "SIM_UNSAFE story"}]
    )
    assert unsafe.choices[0].finish_reason == "content_filter"
    blocked = c.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "SIM_BLOCK_PROMPT"}]
    )
    assert blocked.choices[0].finish_reason == "content_filter"
    assert blocked.choices[0].message.content is None
    chunks = list(
        c.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": "SIM_BLOCK_PROMPT"}],
            stream=True,
        )
    )
    assert _finish(chunks) == ["content_filter"]


def test_gemini_errors_in_openai_shape(gw: Gateway, gem: ProviderSim) -> None:
    c = client(gw)
    with pytest.raises(openai.BadRequestError) as exc:
        c.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": "hi"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert exc.value.param == "tool_choice"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as exc2:
        c.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": "hi"}],
            temperature=2.5,
        )
    assert "temperature" in str(exc2.value) and exc2.value.code == "INVALID_ARGUMENT"  # type: ignore[attr-defined]
    with pytest.raises(openai.AuthenticationError) as exc3:
        c.chat.completions.create(
            model="gemini-badkey", messages=[{"role": "user", "content": "hi"}]
        )
    assert "gemini-bad" in str(exc3.value) and "rejected the API key" in str(exc3.value)
    assert BAD_GEMINI_KEY not in str(exc3.value)


# -- routing across providers -----------------------------------------------------------


def test_openai_429_falls_back_to_gemini(gw: Gateway, oai: ProviderSim, gem: ProviderSim) -> None:
    oai.fault(status=429, retry_after=5, times=1)
    r = client(gw).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert r.model == "gemini-2.5-flash"  # answered by the fallback, under its own name
    assert oai.requests() == 1
    assert gem.last_request()["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"


def test_when_every_provider_fails_the_last_error_is_relayed(
    gw: Gateway, oai: ProviderSim, gem: ProviderSim
) -> None:
    oai.fault(status=429, retry_after=5, times=None)
    gem.fault(status=503, times=None)
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    status, body, _ = http_json(
        gw.url + "/v1/chat/completions", "POST", {"model": "gpt-4o", **chat}
    )
    assert status == 503  # the fallback's answer, translated to OpenAI's shape
    assert body["error"]["type"] == "server_error" and body["error"]["code"] == "UNAVAILABLE"
    # gpt-4o-mini has no fallback: OpenAI's 429 reaches the client with its retry-after.
    status, body, headers = http_json(
        gw.url + "/v1/chat/completions", "POST", {"model": "gpt-4o-mini", **chat}
    )
    assert status == 429 and headers.get("retry-after") == "5"
    assert body["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_hang_past_first_byte_falls_back(
    gw: Gateway, oai: ProviderSim, gem: ProviderSim, stream: bool
) -> None:
    gem.fault(hang=True, times=1)
    c = client(gw)
    msgs: Any = [{"role": "user", "content": "hi"}]
    if stream:
        chunks = list(
            c.chat.completions.create(model="gemini-2.5-flash", messages=msgs, stream=True)
        )
        assert chunks[0].model == "gpt-4o" and _finish(chunks) == ["stop"]
    else:
        r = c.chat.completions.create(model="gemini-2.5-flash", messages=msgs)
        assert r.model == "gpt-4o"
    assert gem.requests() == 1
    assert oai.last_request()["body"]["model"] == "gpt-4o"


def test_models_lists_every_route(gw: Gateway) -> None:
    ids = {m.id for m in client(gw).models.list()}
    assert {"gpt-4o", "gpt-4o-mini", "gemini-2.5-flash", "gemini-3-pro", "sim-model"} <= ids
    assert "sim-embedding" not in ids  # listed by Gemini, but it cannot generateContent


def test_engine_route_still_serves_self_hosted(gw: Gateway) -> None:
    r = client(gw).chat.completions.create(
        model="sim-model", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert r.model == "sim-model" and r.usage is not None and r.usage.completion_tokens == 3


def test_keys_never_in_debug_logs_nor_admin(gw: Gateway) -> None:
    c = client(gw)
    for model in ("gpt-4o", "gemini-2.5-flash"):
        c.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    for model in ("gpt-badkey", "gemini-badkey"):
        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    dumps = [http_get(gw.admin + p)[1].decode() for p in ("/config", "/clusters")]
    logs = gw.proc.output()
    assert '"level"' in logs or "debug" in logs.lower()
    for secret in ALL_KEYS:
        assert secret not in logs
        for d in dumps:
            assert secret not in d
