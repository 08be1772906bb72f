"""Errors rendered in the client's dialect, in the one place errors become bytes."""

from __future__ import annotations

import orjson
import pytest

from smg.errors import (
    BadRequest,
    GatewayError,
    InternalError,
    NoHealthyEndpoint,
    NotFound,
    RateLimited,
    Unauthorized,
    UpstreamStatus,
    UpstreamTimeout,
)
from smg.protocol.dialects import dialect_of_path, encode_response, match_ingress
from smg.protocol.openai_errors import error_payload, stream_error_event
from smg.protocol.request import GatewayRequest, GatewayResponse
from smg.protocol.sse import SseDecoder

OVERLOADED = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'


@pytest.mark.parametrize(
    ("err", "status", "kind"),
    [
        (
            BadRequest("max_tokens: Field required", param="max_tokens"),
            400,
            "invalid_request_error",
        ),
        (Unauthorized("no key"), 401, "authentication_error"),
        (NotFound("no such path"), 404, "not_found_error"),
        (RateLimited("slow down"), 429, "rate_limit_error"),
        (InternalError("bug"), 500, "api_error"),
        (NoHealthyEndpoint("none"), 503, "overloaded_error"),
        (UpstreamTimeout("late"), 504, "timeout_error"),
        (UpstreamStatus(529, b"", "application/json"), 529, "overloaded_error"),
    ],
)
def test_gateway_errors_in_anthropic_shape(err: GatewayError, status: int, kind: str) -> None:
    got_status, body, ctype = error_payload(err, "anthropic")
    doc = orjson.loads(body)
    assert got_status == status and ctype == "application/json"
    assert doc["type"] == "error" and doc["error"]["type"] == kind
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]


def test_anthropic_upstream_body_passes_through_to_anthropic_clients() -> None:
    err = UpstreamStatus(529, OVERLOADED, "application/json", dialect="anthropic")
    assert error_payload(err, "anthropic") == (529, OVERLOADED, "application/json")


def test_anthropic_upstream_body_is_rerendered_for_openai_clients() -> None:
    err = UpstreamStatus(529, OVERLOADED, "application/json", dialect="anthropic")
    status, body, _ = error_payload(err)
    assert status == 529
    assert orjson.loads(body) == {
        "error": {
            "message": "Overloaded",
            "type": "server_error",
            "param": None,
            "code": "overloaded_error",
        }
    }
    limited = b'{"type":"error","error":{"type":"rate_limit_error","message":"Too many"}}'
    err = UpstreamStatus(429, limited, "application/json", dialect="anthropic")
    assert orjson.loads(error_payload(err)[1])["error"]["type"] == "rate_limit_error"


def test_openai_and_vllm_upstream_bodies_are_rerendered_for_anthropic_clients() -> None:
    openai_body = b'{"error":{"message":"bad temp","type":"invalid_request_error","param":"t"}}'
    err = UpstreamStatus(400, openai_body, "application/json")
    doc = orjson.loads(error_payload(err, "anthropic")[1])
    assert doc == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "bad temp"},
    }
    vllm_body = b'{"object":"error","message":"context too long","type":"BadRequestError"}'
    err = UpstreamStatus(400, vllm_body, "application/json")
    assert (
        orjson.loads(error_payload(err, "anthropic")[1])["error"]["message"] == "context too long"
    )
    # OpenAI clients keep getting OpenAI bodies untouched.
    assert error_payload(UpstreamStatus(400, openai_body, "application/json"))[1] == openai_body


def test_stream_error_event_in_anthropic_shape() -> None:
    (ev,) = SseDecoder().feed(stream_error_event(RateLimited("slow down"), "anthropic"))
    assert ev.event == "error"
    assert orjson.loads(ev.data)["error"] == {"type": "rate_limit_error", "message": "slow down"}
    err = UpstreamStatus(529, OVERLOADED, "application/json", dialect="anthropic")
    (ev,) = SseDecoder().feed(stream_error_event(err, "anthropic"))
    assert ev.data.encode() == OVERLOADED
    (ev,) = SseDecoder().feed(stream_error_event(err))
    assert ev.event is None and orjson.loads(ev.data)["error"]["code"] == "overloaded_error"


def test_ingress_paths() -> None:
    found = match_ingress("/v1/messages")
    assert found is not None and (found.kind, found.dialect) == ("chat", "anthropic")
    assert found.openai_path == "/v1/chat/completions"
    assert dialect_of_path("/v1/messages/count_tokens") == "anthropic"
    assert match_ingress("/v1/chat/completions") is None
    assert dialect_of_path("/nope") == "openai"


def _req(kind: str = "chat") -> GatewayRequest:
    return GatewayRequest(
        "POST", "/v1/messages", kind, {}, b"", {}, "claude-x", False, dialect="anthropic"
    )


def test_encode_response_translates_openai_bodies_only() -> None:
    body = orjson.dumps(
        {
            "id": "chatcmpl-1",
            "model": "m",
            "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
        }
    )
    resp = GatewayResponse(200, "application/json", [], body=body)
    encode_response(_req(), resp)
    assert resp.dialect == "anthropic" and resp.body is not None
    doc = orjson.loads(resp.body)
    assert doc["content"] == [{"type": "text", "text": "hi"}] and doc["stop_reason"] == "end_turn"
    native = GatewayResponse(200, "application/json", [], body=b"{}", dialect="anthropic")
    encode_response(_req(), native)
    assert native.body == b"{}"
    count = GatewayResponse(200, "application/json", [], body=b'{"count": 12, "tokens": []}')
    encode_response(_req("tokenize"), count)
    assert count.body is not None and orjson.loads(count.body) == {"input_tokens": 12}
