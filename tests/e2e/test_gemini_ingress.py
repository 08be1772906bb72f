"""The Gemini-dialect ingress end to end with the official ``google-genai`` SDK.

``/v1beta/models/{model}:generateContent`` / ``:streamGenerateContent`` served from an
HTTP-mode engine (``smg sim``), the OpenAI simulator and the Gemini simulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from tests.support.procs import Gateway, free_port, gateway, http_json, sim
from tests.support.providers import ProviderSim, provider_sim

pytestmark = pytest.mark.e2e

KEY = "sk-ingresskey-1c2d3e4f5a"
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city.",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={
            "city": types.Schema(type=types.Type.STRING),
            "days": types.Schema(type=types.Type.INTEGER, nullable=True),
        },
        required=["city"],
    ),
)
ARGS = {"city": 'Zürich "old town"', "days": 3}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("gemini-ingress")
    with (
        provider_sim(tmp, "openai", ["gpt-4o"], KEY) as oai,
        provider_sim(tmp, "gemini", ["gemini-2.5-flash"], KEY) as gem,
        sim(tmp, model="sim-model") as engine,
    ):
        port, admin = free_port(), free_port()
        doc = {
            "admin": {"address": f"127.0.0.1:{admin}"},
            "listeners": [
                {
                    "name": "public",
                    "address": f"127.0.0.1:{port}",
                    "filters": ["request_id", "router"],
                    "routes": [
                        {"match": {"model": "gpt-*"}, "cluster": "openai"},
                        {"match": {"model": "gemini-*"}, "cluster": "gemini"},
                        {"match": {"model": "*"}, "cluster": "engines"},
                    ],
                }
            ],
            "filters": {"request_id": {"type": "request_id"}},
            "clusters": [
                {
                    "name": "openai",
                    "protocol": "openai",
                    "endpoints": [oai.url + "/v1"],
                    "provider": {"api_key": "${SIM_KEY}"},
                },
                {
                    "name": "gemini",
                    "protocol": "gemini",
                    "endpoints": [gem.url],
                    "provider": {"api_key": "${SIM_KEY}"},
                },
                {"name": "engines", "endpoints": [engine]},
            ],
        }
        with gateway(tmp, doc, {"SIM_KEY": KEY}) as gw:
            yield {"gw": gw, "openai": oai, "gemini": gem}


def client(fleet: dict[str, Any]) -> genai.Client:
    gw: Gateway = fleet["gw"]
    return genai.Client(api_key="client-key", http_options=types.HttpOptions(base_url=gw.url))


def test_text_and_stream_from_a_self_hosted_engine(fleet: dict[str, Any]) -> None:
    c = client(fleet)
    cfg = types.GenerateContentConfig(max_output_tokens=6, system_instruction="Be brief.")
    whole = c.models.generate_content(model="sim-model", contents="Tell me a story", config=cfg)
    assert whole.text
    assert whole.candidates is not None
    assert whole.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert whole.usage_metadata is not None
    assert whole.usage_metadata.candidates_token_count == 6
    chunks = list(
        c.models.generate_content_stream(model="sim-model", contents="Tell me a story", config=cfg)
    )
    assert "".join(ch.text or "" for ch in chunks) == whole.text
    last = chunks[-1]
    assert last.usage_metadata is not None and last.usage_metadata.candidates_token_count == 6


def test_forced_function_call_through_the_gemini_cluster(fleet: dict[str, Any]) -> None:
    cfg = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"]
            )
        ),
    )
    c = client(fleet)  # keep the client alive: it closes its connections when collected
    r = c.models.generate_content(model="gemini-2.5-flash", contents="Weather please", config=cfg)
    calls = r.function_calls or []
    assert [(fc.name, fc.args) for fc in calls] == [
        ("get_weather", {"city": "sim-city", "days": 7})
    ]
    sent = fleet["gemini"].last_request()["body"]
    assert sent["toolConfig"]["functionCallingConfig"] == {
        "mode": "ANY",
        "allowedFunctionNames": ["get_weather"],
    }


def test_streamed_function_call_arrives_whole(fleet: dict[str, Any]) -> None:
    """The OpenAI simulator streams arguments in 7-character pieces; Gemini gets one call."""
    import json

    cfg = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    c = client(fleet)
    chunks = list(
        c.models.generate_content_stream(
            model="gpt-4o", contents="call get_weather " + json.dumps(ARGS), config=cfg
        )
    )
    calls = [fc for ch in chunks for fc in (ch.function_calls or [])]
    assert [(fc.name, fc.args) for fc in calls] == [("get_weather", ARGS)]
    assert chunks[-1].candidates is not None
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


def test_function_response_round_trip(fleet: dict[str, Any]) -> None:
    oai: ProviderSim = fleet["openai"]
    contents = [
        types.Content(role="user", parts=[types.Part(text="call get_weather")]),
        types.Content(
            role="model",
            parts=[types.Part(function_call=types.FunctionCall(name="get_weather", args=ARGS))],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        name="get_weather", response={"temp_c": 4}
                    )
                )
            ],
        ),
    ]
    cfg = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    c = client(fleet)
    r = c.models.generate_content(model="gpt-4o", contents=contents, config=cfg)
    assert r.text == 'Tool get_weather returned: {"temp_c":4}'
    msgs = oai.last_request()["body"]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool"]
    assert msgs[2]["tool_call_id"] == msgs[1]["tool_calls"][0]["id"]
    assert oai.last_request()["headers"]["authorization"] == f"Bearer {KEY}"


def test_errors_come_in_googles_shape(fleet: dict[str, Any]) -> None:
    c = client(fleet)
    bad = [types.Content(role="assistant", parts=[types.Part(text="hi")])]
    with pytest.raises(errors.ClientError) as exc:
        c.models.generate_content(model="gemini-2.5-flash", contents=bad)
    assert exc.value.code == 400 and exc.value.status == "INVALID_ARGUMENT"
    assert "valid role" in (exc.value.message or "")
    gw: Gateway = fleet["gw"]
    url = gw.url + "/v1beta/models/sim-model:generateContent"
    status, body, _ = http_json(url, "POST", {"contents": []})
    assert status == 400
    assert body["error"] == {
        "code": 400,
        "message": "contents is not specified.",
        "status": "INVALID_ARGUMENT",
    }
    cfg = types.GenerateContentConfig(temperature=3.0)
    with pytest.raises(errors.ClientError) as exc2:
        c.models.generate_content(model="gpt-4o", contents="hi", config=cfg)
    assert exc2.value.code == 400 and "temperature" in (exc2.value.message or "")
