"""GenAI semantic-convention attributes from requests and from answer bytes."""

from __future__ import annotations

from typing import Any

import orjson

from smg.observability.genai import request_attributes, response_attributes
from smg.protocol.request import KIND_BY_PATH, GatewayRequest


def request(path: str, body: dict[str, Any]) -> GatewayRequest:
    return GatewayRequest(
        "POST",
        path,
        KIND_BY_PATH[path],
        {},
        orjson.dumps(body),
        body,
        body.get("model"),
        bool(body.get("stream")),
    )


def test_chat_request_names_operation_model_and_sampling() -> None:
    req = request(
        "/v1/chat/completions",
        {
            "model": "m",
            "messages": [],
            "max_completion_tokens": 9,
            "max_tokens": 3,
            "temperature": 0,
            "top_p": 0.5,
        },
    )
    assert request_attributes(req) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m",
        "gen_ai.request.max_tokens": 9,  # the newer field wins, as OpenAI reads it
        "gen_ai.request.temperature": 0.0,
        "gen_ai.request.top_p": 0.5,
    }


def test_sampling_values_of_the_wrong_type_are_left_out() -> None:
    req = request(
        "/v1/completions",
        {"model": "m", "prompt": "x", "max_tokens": True, "temperature": "hot", "top_p": None},
    )
    assert request_attributes(req) == {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.request.model": "m",
    }


def test_generate_reads_sglang_sampling_params() -> None:
    req = request("/generate", {"input_ids": [1], "sampling_params": {"max_new_tokens": 4}})
    assert request_attributes(req) == {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.request.max_tokens": 4,
    }


def test_tokenize_is_not_a_genai_operation() -> None:
    assert request_attributes(request("/v1/tokenize", {"model": "m", "prompt": "x"})) == {}


def test_openai_body_gives_usage_model_and_finish_reasons() -> None:
    body = orjson.dumps(
        {
            "id": "c1",
            "model": "served-7b",
            "choices": [
                # Model text that looks like JSON stays escaped: it cannot match.
                {"index": 0, "message": {"content": '"model": "fake"'}, "finish_reason": "stop"},
                {"index": 1, "message": {"content": "x"}, "finish_reason": "length"},
            ],
            "usage": {
                "prompt_tokens": 11,
                "completion_tokens": 5,
                "total_tokens": 16,
                "prompt_tokens_details": {"cached_tokens": 8},
            },
        }
    )
    assert response_attributes(body, "chat") == {
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.cache_read.input_tokens": 8,
        "gen_ai.response.model": "served-7b",
        "gen_ai.response.finish_reasons": ["stop", "length"],
    }


def test_stream_tail_chunk_with_usage() -> None:
    tail = (
        b'data: {"id":"x","model":"m1","choices":[{"index":0,"text":"","finish_reason":"length"}]}'
        b"\n\n"
        b'data: {"id":"x","model":"m1","choices":[],"usage":{"prompt_tokens":3,'
        b'"total_tokens":5,"completion_tokens":2}}\n\ndata: [DONE]\n\n'
    )
    assert response_attributes(tail, "completions") == {
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.response.model": "m1",
        "gen_ai.response.finish_reasons": ["length"],
    }


def test_sglang_meta_info() -> None:
    body = b'{"text":"","output_ids":[1,2],"meta_info":{"id":"r","finish_reason":{"type":"stop",'
    body += b'"matched":2},"prompt_tokens":30,"completion_tokens":2,"cached_tokens":0}}'
    assert response_attributes(body, "generate") == {
        "gen_ai.usage.input_tokens": 30,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.response.finish_reasons": ["stop"],
    }


def test_embeddings_report_input_tokens_only() -> None:
    body = b'{"object":"list","data":[{"embedding":[0.1,0.2]}],"model":"e",'
    body += b'"usage":{"prompt_tokens":4,"total_tokens":4}}'
    assert response_attributes(body, "embeddings") == {
        "gen_ai.usage.input_tokens": 4,
        "gen_ai.response.model": "e",
    }


def test_nothing_known_gives_nothing() -> None:
    assert response_attributes(None, "chat") == {}
    assert response_attributes(b'{"error":{"message":"x"}}', "chat") == {}
