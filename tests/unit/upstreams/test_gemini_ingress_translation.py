"""The Gemini dialect at the edge: Gemini requests → OpenAI, OpenAI answers → Gemini."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from smg.errors import BadRequest
from smg.protocol.dialects import match_ingress
from smg.protocol.gemini.ingress import ChunksToGemini, from_chat_completion, to_openai
from smg.protocol.sse import SseDecoder


def test_ingress_paths() -> None:
    assert match_ingress("/v1beta/models/gemini-2.5-flash:generateContent") is not None
    assert match_ingress("/v1/models/x:streamGenerateContent") is not None
    assert match_ingress("/v1/models/gpt-4o") is None  # OpenAI's model card
    assert match_ingress("/v1beta/models/x:countTokens") is None


def test_request_with_calls_responses_images_and_config() -> None:
    doc = {
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "look"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAA"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "a", "args": {"x": 1}}},
                    {"functionCall": {"name": "b", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "b", "response": {"r": 2}}},
                    {"functionResponse": {"name": "a", "response": {"r": 1}}},
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "a",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"x": {"type": "INTEGER", "nullable": True}},
                        },
                    }
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a"]}},
        "generationConfig": {"maxOutputTokens": 9, "stopSequences": ["Z"], "topK": 3},
    }
    body = to_openai("m", True, doc)
    msgs = body["messages"]
    assert msgs[0] == {"role": "system", "content": "sys"}
    assert msgs[1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAA"},
    }
    ids = [c["id"] for c in msgs[2]["tool_calls"]]
    assert [(m["tool_call_id"], m["content"]) for m in msgs[3:]] == [
        (ids[1], '{"r":2}'),
        (ids[0], '{"r":1}'),
    ]
    params = body["tools"][0]["function"]["parameters"]
    assert params == {"type": "object", "properties": {"x": {"type": ["integer", "null"]}}}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "a"}}
    assert (body["max_tokens"], body["stop"], body["top_k"]) == (9, ["Z"], 3)
    assert body["stream_options"] == {"include_usage": True}


def test_response_without_matching_call_is_refused() -> None:
    doc = {
        "contents": [
            {"role": "user", "parts": [{"functionResponse": {"name": "a", "response": {}}}]}
        ]
    }
    with pytest.raises(BadRequest) as exc:
        to_openai("m", False, doc)
    assert exc.value.param == "contents[0].parts[0].functionResponse"


def test_whole_answer() -> None:
    doc = {
        "id": "chatcmpl-abc",
        "model": "m1",
        "choices": [
            {
                "index": 0,
                "message": {
                    "content": "hi",
                    "tool_calls": [
                        {"id": "c1", "function": {"name": "f", "arguments": '{"a": 1}'}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 3,
            "total_tokens": 8,
            "prompt_tokens_details": {"cached_tokens": 2},
        },
    }
    out = from_chat_completion(doc, "m")
    cand = out["candidates"][0]
    assert cand["content"]["parts"] == [
        {"text": "hi"},
        {"functionCall": {"name": "f", "args": {"a": 1}, "id": "c1"}},
    ]
    assert cand["finishReason"] == "STOP" and out["responseId"] == "abc"
    assert out["usageMetadata"] == {
        "promptTokenCount": 5,
        "candidatesTokenCount": 3,
        "totalTokenCount": 8,
        "cachedContentTokenCount": 2,
    }


def test_stream_sends_text_as_it_comes_and_calls_whole() -> None:
    args = json.dumps({"q": 'a "b" é', "n": [1, 2]})
    chunks: list[dict[str, Any]] = [
        {"id": "chatcmpl-s", "model": "m", "choices": [{"index": 0, "delta": {"content": "He"}}]},
        {"choices": [{"index": 0, "delta": {"content": "llo"}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}
                        ]
                    },
                }
            ]
        },
    ]
    chunks += [
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 5]}}]
                    },
                }
            ]
        }
        for i in range(0, len(args), 5)
    ]
    chunks += [
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6}},
    ]
    tr = ChunksToGemini("m")
    raw = b"".join(tr.feed(c) for c in chunks) + tr.end()
    events = [orjson.loads(e.data) for e in SseDecoder().feed(raw)]
    texts = [
        p["text"]
        for e in events
        for c in e["candidates"]
        for p in c["content"]["parts"]
        if "text" in p
    ]
    assert "".join(texts) == "Hello"
    last = events[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    call = last["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call == {"name": "f", "args": json.loads(args), "id": "c1"}
    assert last["usageMetadata"]["candidatesTokenCount"] == 6
    assert raw.endswith(b"\r\n\r\n")
