"""Whole answers both ways: Anthropic ``message`` ⇄ OpenAI ``chat.completion``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from smg.errors import UpstreamError
from smg.protocol.anthropic.response import message_to_openai, openai_to_message


def test_message_to_openai_text_thinking_tools_and_cached_usage() -> None:
    msg = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_9", "name": "w", "input": {"city": "Zürich"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 7,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 900,
        },
    }
    doc = message_to_openai(msg, created=5)
    assert doc["object"] == "chat.completion" and doc["created"] == 5
    choice = doc["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    m = choice["message"]
    assert m["content"] == "Let me check." and m["reasoning_content"] == "hmm"
    (call,) = m["tool_calls"]
    assert call["id"] == "toolu_9" and call["function"]["name"] == "w"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Zürich"}
    assert doc["usage"]["prompt_tokens"] == 1010  # input + cache creation + cache read
    assert doc["usage"]["completion_tokens"] == 7 and doc["usage"]["total_tokens"] == 1017
    assert doc["usage"]["prompt_tokens_details"] == {"cached_tokens": 900}
    assert doc["usage"]["cache_creation_input_tokens"] == 100


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reason_to_finish_reason(stop: str, finish: str) -> None:
    msg = {"id": "m", "content": [{"type": "text", "text": "x"}], "stop_reason": stop, "usage": {}}
    assert message_to_openai(msg)["choices"][0]["finish_reason"] == finish


def test_tool_only_answer_has_null_content() -> None:
    msg = {"content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}], "usage": {}}
    m = message_to_openai(msg)["choices"][0]["message"]
    assert m["content"] is None and m["tool_calls"][0]["function"]["arguments"] == "{}"


def completion(message: dict[str, Any], finish: str, **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, **choice}],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 9,
            "prompt_tokens_details": {"cached_tokens": 32},
        },
    }


def test_openai_to_message_reasoning_text_tools() -> None:
    doc = completion(
        {
            "role": "assistant",
            "reasoning_content": "think",
            "content": "Sure.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"city":"Paris","days":2}'},
                }
            ],
        },
        "tool_calls",
    )
    msg = openai_to_message(doc, "asked")
    assert msg["id"] == "msg_chatcmpl-1" and msg["type"] == "message" and msg["model"] == "qwen"
    assert msg["content"] == [
        {"type": "thinking", "thinking": "think", "signature": ""},
        {"type": "text", "text": "Sure."},
        {"type": "tool_use", "id": "call_a", "name": "w", "input": {"city": "Paris", "days": 2}},
    ]
    assert msg["stop_reason"] == "tool_use" and msg["stop_sequence"] is None
    assert msg["usage"] == {
        "input_tokens": 18,
        "output_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 32,
    }


def test_matched_stop_string_becomes_stop_sequence() -> None:
    doc = completion({"role": "assistant", "content": "abc"}, "stop", stop_reason="END")
    msg = openai_to_message(doc, None)
    assert (msg["stop_reason"], msg["stop_sequence"]) == ("stop_sequence", "END")
    doc = completion({"role": "assistant", "content": "abc"}, "length")
    assert openai_to_message(doc, None)["stop_reason"] == "max_tokens"


def test_tool_arguments_that_are_not_an_object_are_an_upstream_error() -> None:
    doc = completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1, 2"}}],
        },
        "tool_calls",
    )
    with pytest.raises(UpstreamError) as ei:
        openai_to_message(doc, None)
    assert "'f'" in ei.value.message and ei.value.status == 502
