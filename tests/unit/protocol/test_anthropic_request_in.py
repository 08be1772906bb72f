"""``/v1/messages`` bodies → OpenAI chat bodies, and rejections that name the field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from smg.errors import BadRequest
from smg.protocol.anthropic.errors import error_payload
from smg.protocol.anthropic.request_in import count_tokens_to_openai, messages_to_openai


def body(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model": "claude-x",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    doc.update(over)
    return doc


def rejects(doc: dict[str, Any]) -> BadRequest:
    with pytest.raises(BadRequest) as ei:
        messages_to_openai(doc)
    return ei.value


@pytest.mark.parametrize("field", ["model", "max_tokens", "messages"])
def test_required_fields_are_named(field: str) -> None:
    doc = body()
    del doc[field]
    err = rejects(doc)
    assert err.param == field and err.status == 400
    assert "Field required" in err.message


def test_system_role_in_messages_gets_the_apis_hint() -> None:
    err = rejects(body(messages=[{"role": "system", "content": "x"}]))
    assert err.param == "messages.0.role"
    assert "top-level `system` parameter" in err.message


@pytest.mark.parametrize(
    ("over", "param"),
    [
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages.0.content.0.type"),
        ({"messages": [{"role": "user", "content": []}]}, "messages.0.content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a"}]}]},
            "messages.0.content.0.type",
        ),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"stop_sequences": "x"}, "stop_sequences"),
        ({"stream": "yes"}, "stream"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
        ({"metadata": {"user_id": 3}}, "metadata.user_id"),
    ],
)
def test_bad_fields_are_named(over: dict[str, Any], param: str) -> None:
    err = rejects(body(**over))
    assert err.param == param
    # Rendered for an Anthropic client: the path leads the message.
    status, raw, _ = error_payload(err)
    doc = orjson.loads(raw)
    assert status == 400
    assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error"
    assert doc["error"]["message"].startswith(param)


def test_system_text_and_sampling_fields() -> None:
    out = messages_to_openai(
        body(
            system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
            temperature=0.2,
            top_p=0.9,
            top_k=5,
            stop_sequences=["END"],
            metadata={"user_id": "u-1"},
        )
    ).json
    assert out["messages"][0] == {"role": "system", "content": "Be brief.\nBe kind."}
    assert out["messages"][1] == {"role": "user", "content": "hi"}
    assert (out["temperature"], out["top_p"], out["top_k"]) == (0.2, 0.9, 5)
    assert out["stop"] == ["END"] and out["user"] == "u-1" and out["max_tokens"] == 64
    assert "stream" not in out


def test_stream_asks_for_usage() -> None:
    d = messages_to_openai(body(stream=True))
    assert d.stream and d.json["stream"] is True
    assert d.json["stream_options"] == {"include_usage": True}


def test_images_become_content_parts() -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
    ]
    out = messages_to_openai(body(messages=[{"role": "user", "content": content}])).json
    parts = out["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "what is this?"}
    assert parts[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}
    assert parts[2] == {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}}


def test_tool_use_and_results_become_calls_and_tool_messages() -> None:
    msgs = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "two calls", "signature": "s"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "w", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "here:"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "rain"}],
                    "is_error": False,
                },
            ],
        },
    ]
    out = messages_to_openai(body(messages=msgs)).json["messages"]
    assistant = out[1]
    assert assistant["content"] == "Checking."  # the thinking block is not replayed
    assert [c["id"] for c in assistant["tool_calls"]] == ["toolu_1", "toolu_2"]
    assert orjson.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {"city": "Rome"}
    # Tool messages come right after the calls, before the rest of the user turn.
    assert out[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
    assert out[3] == {"role": "tool", "tool_call_id": "toolu_2", "content": "rain"}
    assert out[4] == {"role": "user", "content": "here:"}


def test_images_inside_a_tool_result_follow_in_a_user_message() -> None:
    msgs = [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "s", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [
                        {"type": "text", "text": "screenshot"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/gif", "data": "R0"},
                        },
                    ],
                }
            ],
        },
    ]
    out = messages_to_openai(body(messages=msgs)).json["messages"]
    assert out[1] == {"role": "tool", "tool_call_id": "t", "content": "screenshot"}
    assert out[2]["role"] == "user"
    assert out[2]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0"}}
    ]


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "w"}, {"type": "function", "function": {"name": "w"}}, None),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
    ],
)
def test_tools_and_tool_choice(choice: dict[str, Any], expected: Any, parallel: Any) -> None:
    tools = [{"name": "w", "description": "Weather", "input_schema": {"type": "object"}}]
    out = messages_to_openai(body(tools=tools, tool_choice=choice)).json
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "w", "parameters": {"type": "object"}, "description": "Weather"},
        }
    ]
    assert out["tool_choice"] == expected
    assert out.get("parallel_tool_calls") == parallel


def test_what_only_a_passthrough_can_serve_is_a_deferred_problem() -> None:
    doc = body(
        tools=[{"type": "web_search_20250305", "name": "web_search"}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "text", "data": "x"}},
                    {"type": "text", "text": "summarise"},
                ],
            }
        ],
    )
    d = messages_to_openai(doc)
    assert d.problem is not None and d.problem.status == 400
    assert d.problem.param == "messages.0.content.0.type"
    assert "anthropic cluster" in d.problem.message
    assert d.json["messages"] == [{"role": "user", "content": "summarise"}]
    assert "tools" not in d.json


def test_cache_control_and_thinking_switch_are_dropped_quietly() -> None:
    d = messages_to_openai(
        body(
            system=[{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
            thinking={"type": "enabled", "budget_tokens": 2048},
            max_tokens=4096,
        )
    )
    assert d.problem is None
    assert d.json["messages"][0] == {"role": "system", "content": "S"}
    assert "thinking" not in d.json


def test_count_tokens_needs_no_max_tokens() -> None:
    doc = {"model": "m", "messages": [{"role": "user", "content": "count me"}]}
    d = count_tokens_to_openai(doc)
    assert d.json == {"model": "m", "messages": [{"role": "user", "content": "count me"}]}
