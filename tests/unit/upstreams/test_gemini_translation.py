"""OpenAI chat ⇄ Gemini translation: requests, answers, streams (any chunking), errors."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smg.errors import BadRequest, UpstreamError, UpstreamReset
from smg.protocol.gemini.errors import read_error
from smg.protocol.gemini.request import SKIP_SIGNATURE, to_gemini
from smg.protocol.gemini.response import finish_reason, to_chat_completion, usage
from smg.protocol.gemini.schema import function_parameters, to_gemini_schema
from smg.protocol.gemini.stream import GeminiStreamTranslator
from smg.protocol.sse import SseDecoder

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a thing up.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


def chat(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-flash", "messages": messages, **extra}


# -- requests ---------------------------------------------------------------------------


def test_roles_system_and_merging() -> None:
    out = to_gemini(
        chat(
            [
                {"role": "system", "content": "S1"},
                {"role": "developer", "content": [{"type": "text", "text": "S2"}]},
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "b"}]},
                {"role": "assistant", "content": "c"},
                {"role": "user", "content": "d"},
            ]
        )
    )
    assert out["systemInstruction"] == {"parts": [{"text": "S1"}, {"text": "S2"}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}]},
        {"role": "user", "parts": [{"text": "d"}]},
    ]


def test_images_inline_and_by_uri() -> None:
    content = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "gs://bucket/cat.jpeg"}},
    ]
    parts = to_gemini(chat([{"role": "user", "content": content}]))["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    assert parts[2] == {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/cat.jpeg"}}
    with pytest.raises(BadRequest) as exc:
        bad = [{"type": "image_url", "image_url": {"url": "https://x/img"}}]
        to_gemini(chat([{"role": "user", "content": bad}]))
    assert exc.value.param == "messages[0].content[0].image_url.url"


def test_tool_calls_and_results_become_function_parts() -> None:
    msgs = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
                {"id": "c2", "type": "function", "function": {"name": "b", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": "plain text"},
        {"role": "tool", "tool_call_id": "c1", "content": '{"ok": true}'},
    ]
    sigs = {"c1": "sig-1"}
    out = to_gemini(chat(msgs), sigs.get)
    model, results = out["contents"][1], out["contents"][2]
    assert model == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "sig-1"},
            {"functionCall": {"name": "b", "args": {}}},
        ],
    }
    assert results["role"] == "user"
    assert [p["functionResponse"] for p in results["parts"]] == [
        {"name": "b", "response": {"result": "plain text"}, "id": "c2"},
        {"name": "a", "response": {"ok": True}, "id": "c1"},
    ]


def test_tool_result_for_unknown_call_names_the_field() -> None:
    with pytest.raises(BadRequest) as exc:
        to_gemini(chat([{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "z"}]))
    assert exc.value.param == "messages[1].tool_call_id"


def test_gemini3_history_without_signature_gets_the_sentinel() -> None:
    call = {"id": "c9", "type": "function", "function": {"name": "a", "arguments": "{}"}}
    msgs = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [call, {**call, "id": "c10"}]},
    ]
    body = chat(msgs, model="gemini-3-pro-preview")
    parts = to_gemini(body)["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == SKIP_SIGNATURE
    assert "thoughtSignature" not in parts[1]  # only the first call of a turn carries one
    assert "thoughtSignature" not in to_gemini(chat(msgs))["contents"][1]["parts"][0]


@pytest.mark.parametrize(
    ("choice", "config", "names"),
    [
        ("auto", {"mode": "AUTO"}, ["lookup", "other"]),
        ("none", {"mode": "NONE"}, ["lookup", "other"]),
        ("required", {"mode": "ANY"}, ["lookup", "other"]),
        (
            {"type": "function", "function": {"name": "other"}},
            {"mode": "ANY", "allowedFunctionNames": ["other"]},
            ["lookup", "other"],
        ),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "auto",
                    "tools": [{"type": "function", "function": {"name": "other"}}],
                },
            },
            {"mode": "AUTO"},
            ["other"],
        ),
    ],
)
def test_tool_choice_modes(choice: Any, config: dict[str, Any], names: list[str]) -> None:
    other = {"type": "function", "function": {"name": "other"}}
    out = to_gemini(
        chat([{"role": "user", "content": "x"}], tools=[TOOL, other], tool_choice=choice)
    )
    assert out["toolConfig"] == {"functionCallingConfig": config}
    assert [d["name"] for d in out["tools"][0]["functionDeclarations"]] == names


def test_tool_choice_naming_an_undeclared_function_is_refused() -> None:
    choice = {"type": "function", "function": {"name": "nope"}}
    with pytest.raises(BadRequest) as exc:
        to_gemini(chat([{"role": "user", "content": "x"}], tools=[TOOL], tool_choice=choice))
    assert exc.value.param == "tool_choice"
    with pytest.raises(BadRequest) as exc2:
        to_gemini(chat([{"role": "user", "content": "x"}], tools=[{"type": "custom"}]))
    assert exc2.value.param == "tools[0].type"


def test_generation_config_and_response_format() -> None:
    body = chat(
        [{"role": "user", "content": "x"}],
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        n=2,
        seed=11,
        max_completion_tokens=64,
        stop="END",
        presence_penalty=0.5,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "r",
                "schema": {
                    "type": "object",
                    "properties": {"a": {"type": "integer"}},
                    "additionalProperties": False,
                },
            },
        },
    )
    assert to_gemini(body)["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "topK": 40,
        "candidateCount": 2,
        "seed": 11,
        "presencePenalty": 0.5,
        "maxOutputTokens": 64,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
    }


def test_only_system_messages_is_refused() -> None:
    with pytest.raises(BadRequest) as exc:
        to_gemini(chat([{"role": "system", "content": "x"}]))
    assert exc.value.param == "messages"


# -- schemas ----------------------------------------------------------------------------


def test_schema_cleaning() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "site": {"type": "string", "format": "uri"},
            "n": {"type": ["integer", "null"], "format": "int64"},
            "kind": {"const": "fixed"},
            "level": {"type": "integer", "enum": [1, 2]},
            "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "either": {"oneOf": [{"type": "string"}, {"type": "number"}]},
            "node": {"$ref": "#/$defs/node"},
            "both": {"allOf": [{"type": "boolean"}], "description": "d"},
        },
        "required": ["when", "ghost"],
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/$defs/node"}, "label": {"type": "string"}},
            }
        },
    }
    out = to_gemini_schema(schema)
    p = out["properties"]
    assert "additionalProperties" not in out and "$schema" not in out and "$defs" not in out
    assert out["required"] == ["when"]
    assert p["when"] == {"type": "string", "format": "date-time"}
    assert p["site"] == {"type": "string"}
    assert p["n"] == {"type": "integer", "format": "int64", "nullable": True}
    assert p["kind"] == {"type": "string", "enum": ["fixed"]}
    assert p["level"] == {"type": "integer"}
    assert p["maybe"] == {"type": "string", "nullable": True}
    assert p["either"] == {"anyOf": [{"type": "string"}, {"type": "number"}]}
    assert p["node"]["properties"]["label"] == {"type": "string"}
    assert p["node"]["properties"]["child"] == {"type": "object"}  # recursion cut
    assert p["both"] == {"type": "boolean", "description": "d"}


def test_functions_without_arguments_have_no_parameters() -> None:
    assert function_parameters({"type": "object", "properties": {}}) is None
    assert function_parameters(None) is None
    assert function_parameters({"type": "object", "properties": {"a": {"type": "string"}}})


# -- answers ----------------------------------------------------------------------------


def test_answer_with_text_thoughts_calls_and_usage() -> None:
    seen: dict[str, str] = {}
    doc = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "thinking...", "thought": True},
                        {"text": "Sure."},
                        {
                            "functionCall": {"name": "f", "args": {"a": [1, "é"]}},
                            "thoughtSignature": "S",
                        },
                        {"functionCall": {"id": "gid", "name": "g", "args": {}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 10,
            "thoughtsTokenCount": 5,
            "cachedContentTokenCount": 64,
            "totalTokenCount": 115,
        },
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "r1",
    }
    out = to_chat_completion(doc, "gemini-2.5-flash", lambda i, s: seen.__setitem__(i, s))
    choice = out["choices"][0]
    assert out["id"] == "chatcmpl-r1" and out["model"] == "gemini-2.5-flash-001"
    assert choice["finish_reason"] == "tool_calls"
    msg = choice["message"]
    assert msg["content"] == "Sure." and msg["reasoning_content"] == "thinking..."
    calls = msg["tool_calls"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"a": [1, "é"]}
    assert calls[0]["id"].startswith("call_") and calls[1]["id"] == "gid"
    assert seen == {calls[0]["id"]: "S"}
    assert out["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 15,
        "total_tokens": 115,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }


@pytest.mark.parametrize(
    ("reason", "called", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("BLOCKLIST", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("SPII", False, "content_filter"),
        ("OTHER", False, "stop"),
        ("MALFORMED_FUNCTION_CALL", False, "stop"),
    ],
)
def test_finish_reasons(reason: str, called: bool, expected: str) -> None:
    assert finish_reason(reason, called) == expected


def test_blocked_prompt_is_one_filtered_choice_without_content() -> None:
    doc = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}
    out = to_chat_completion(doc, "m")
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] is None
    assert "SAFETY" in out["choices"][0]["message"]["refusal"]
    assert usage(doc["usageMetadata"])["prompt_tokens"] == 3


# -- streams ----------------------------------------------------------------------------

TRICKY = {"text": 'quote " backslash \\ newline \n emoji 🎉', "nested": {"list": [1, 2.5, None]}}


def gemini_stream() -> bytes:
    def ev(parts: list[dict[str, Any]], finish: str | None = None, out: int = 0) -> bytes:
        cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            cand["finishReason"] = finish
        meta = {
            "promptTokenCount": 9,
            "candidatesTokenCount": out,
            "totalTokenCount": 9 + out,
            "cachedContentTokenCount": 4,
        }
        doc = {"candidates": [cand], "usageMetadata": meta, "responseId": "rid"}
        return b"data: " + orjson.dumps(doc) + b"\r\n\r\n"

    return b"".join(
        [
            ev([{"text": "Héllo"}], out=1),
            ev([{"text": " wörld"}], out=2),
            ev([{"functionCall": {"name": "first", "args": TRICKY}}], out=10),
            ev([{"functionCall": {"name": "second", "args": {}}}], "STOP", out=12),
        ]
    )


def translate(raw: bytes, cuts: list[int], include_usage: bool = True) -> bytes:
    tr = GeminiStreamTranslator("gemini-x", include_usage)
    dec = SseDecoder()
    out = []
    last = 0
    for cut in [*sorted(cuts), len(raw)]:
        for event in dec.feed(raw[last:cut]):
            out.append(tr.feed(event.data))
        last = cut
    out.append(tr.end())
    return b"".join(out)


def openai_events(data: bytes) -> list[Any]:
    events = [e.data for e in SseDecoder().feed(data)]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(gemini_stream())), max_size=12))
def test_stream_translation_is_exact_for_any_chunking(cuts: list[int]) -> None:
    events = openai_events(translate(gemini_stream(), cuts))
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    assert deltas[0]["role"] == "assistant"
    assert "".join(d.get("content") or "" for d in deltas) == "Héllo wörld"
    calls = [c for d in deltas for c in d.get("tool_calls", ())]
    assert [c["index"] for c in calls] == [0, 1]
    assert [c["function"]["name"] for c in calls] == ["first", "second"]
    assert json.loads(calls[0]["function"]["arguments"]) == TRICKY
    assert calls[1]["function"]["arguments"] == "{}"
    finishes = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert [f for f in finishes if f] == ["tool_calls"]
    assert events[-1]["choices"] == []
    assert events[-1]["usage"]["completion_tokens"] == 12
    assert events[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}
    assert {e["id"] for e in events} == {"chatcmpl-rid"}


def test_stream_without_usage_request_ends_with_done_only() -> None:
    events = openai_events(translate(gemini_stream(), [], include_usage=False))
    assert all(e["choices"] for e in events)


def test_stream_cut_before_finish_raises() -> None:
    raw = gemini_stream()
    cut = raw.rindex(b"data: ")
    with pytest.raises(UpstreamReset):
        translate(raw[:cut], [])


def test_stream_error_event_raises() -> None:
    tr = GeminiStreamTranslator("m", False)
    with pytest.raises(UpstreamError, match="overloaded"):
        tr.feed('{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}')


def test_stream_blocked_prompt() -> None:
    tr = GeminiStreamTranslator("m", False)
    out = tr.feed('{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}') + tr.end()
    events = openai_events(out)
    assert [e["choices"][0]["finish_reason"] for e in events] == [None, "content_filter"]


# -- errors -----------------------------------------------------------------------------


def test_errors() -> None:
    quota = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36s"}],
        }
    }
    e = read_error(429, orjson.dumps(quota))
    assert (e.status, e.code, e.headers) == (429, "RESOURCE_EXHAUSTED", {"retry-after": "36"})
    body = json.loads(e.openai_body())
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["message"] == "Resource has been exhausted"
    bad_key = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"reason": "API_KEY_INVALID", "domain": "googleapis.com"}],
        }
    }
    k = read_error(400, orjson.dumps(bad_key))
    assert k.status == 401 and k.key_invalid
    html = read_error(502, b"<html>bad gateway</html>")
    assert html.status == 502 and json.loads(html.openai_body())["error"]["type"] == "server_error"
