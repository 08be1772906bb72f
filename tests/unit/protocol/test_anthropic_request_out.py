"""OpenAI chat bodies → Messages API bodies (what the ``anthropic`` protocol sends)."""

from __future__ import annotations

from typing import Any

import pytest

from smg.errors import BadRequest
from smg.protocol.anthropic.request_out import openai_to_messages
from smg.protocol.anthropic.shapes import DEFAULT_MAX_TOKENS

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "get_time"}},
]


def chat(messages: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": "claude-x", "messages": messages}
    doc.update(over)
    return doc


def test_system_messages_collect_into_system_and_max_tokens_defaults() -> None:
    out = openai_to_messages(
        chat(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
                {"role": "developer", "content": [{"type": "text", "text": "Be kind."}]},
            ]
        )
    )
    assert out["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Be kind."},
    ]
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert out["max_tokens"] == DEFAULT_MAX_TOKENS
    assert out["model"] == "claude-x" and "stream" not in out


def test_one_system_message_is_a_string() -> None:
    out = openai_to_messages(
        chat([{"role": "system", "content": "S"}, {"role": "user", "content": "u"}])
    )
    assert out["system"] == "S"


def test_sampling_fields() -> None:
    out = openai_to_messages(
        chat(
            [{"role": "user", "content": "u"}],
            max_completion_tokens=99,
            max_tokens=5,
            stop="END",
            temperature=1.7,
            top_p=0.5,
            top_k=3,
            user="alice",
            stream=True,
            seed=1,
        )
    )
    assert out["max_tokens"] == 99  # max_completion_tokens wins, as in OpenAI
    assert out["stop_sequences"] == ["END"]
    assert out["temperature"] == 1.0  # the Messages API's maximum
    assert (out["top_p"], out["top_k"]) == (0.5, 3)
    assert out["metadata"] == {"user_id": "alice"}
    assert out["stream"] is True and "seed" not in out


def test_images_data_urls_and_http_urls() -> None:
    out = openai_to_messages(
        chat(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    ],
                }
            ]
        )
    )
    blocks = out["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"},
    }
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}


def test_tool_round_trip_merges_results_and_the_next_user_message() -> None:
    msgs = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
        {"role": "user", "content": "thanks"},
    ]
    out = openai_to_messages(chat(msgs, tools=TOOLS))
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "noon"},
        {"type": "text", "text": "thanks"},
    ]
    assert out["tools"] == [
        {
            "name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "description": "Weather for a city",
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]


def test_consecutive_turns_of_one_role_merge() -> None:
    out = openai_to_messages(
        chat([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, None),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            None,
            {"type": "tool", "name": "get_time"},
        ),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice(choice: Any, parallel: Any, expected: Any) -> None:
    over: dict[str, Any] = {"tools": TOOLS}
    if choice is not None:
        over["tool_choice"] = choice
    if parallel is not None:
        over["parallel_tool_calls"] = parallel
    out = openai_to_messages(chat([{"role": "user", "content": "u"}], **over))
    assert out.get("tool_choice") == expected


def test_tool_choice_without_tools_is_not_sent() -> None:
    out = openai_to_messages(chat([{"role": "user", "content": "u"}], tool_choice="required"))
    assert "tool_choice" not in out and "tools" not in out


@pytest.mark.parametrize(
    ("over", "messages", "param"),
    [
        ({"n": 2}, None, "n"),
        ({"logprobs": True}, None, "logprobs"),
        ({"response_format": {"type": "json_object"}}, None, "response_format"),
        ({"max_tokens": 0}, None, "max_tokens"),
        (
            {},
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
            "messages[0].content[0].type",
        ),
        (
            {},
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}],
            "messages[0].content[0].image_url.url",
        ),
        (
            {},
            [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "[1]"},
                        }
                    ],
                }
            ],
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({}, [{"role": "tool", "content": "x"}], "messages[0].tool_call_id"),
        ({}, [{"role": "function", "name": "f", "content": "x"}], "messages[0].role"),
        ({}, [{"role": "system", "content": "only a system prompt"}], "messages"),
    ],
)
def test_untranslatable_fields_are_refused_by_name(
    over: dict[str, Any], messages: list[dict[str, Any]] | None, param: str
) -> None:
    with pytest.raises(BadRequest) as ei:
        openai_to_messages(chat(messages or [{"role": "user", "content": "u"}], **over))
    assert ei.value.param == param and ei.value.status == 400


def test_cache_control_breakpoints_are_kept() -> None:
    eph = {"type": "ephemeral"}
    out = openai_to_messages(
        chat(
            [
                {
                    "role": "system",
                    "content": [{"type": "text", "text": "S", "cache_control": eph}],
                },
                {"role": "user", "content": [{"type": "text", "text": "U", "cache_control": eph}]},
            ],
            tools=[{**TOOLS[0], "cache_control": eph}],
        )
    )
    assert out["system"] == [{"type": "text", "text": "S", "cache_control": eph}]
    assert out["messages"][0]["content"] == [{"type": "text", "text": "U", "cache_control": eph}]
    assert out["tools"][0]["cache_control"] == eph
