"""OpenAI-shaped error bodies: the one place a GatewayError becomes bytes."""

from __future__ import annotations

import orjson

from smg.errors import GatewayError, UpstreamStatus


def error_body(err: GatewayError) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}`` as OpenAI clients expect."""
    return orjson.dumps(
        {
            "error": {
                "message": err.message,
                "type": err.type,
                "param": err.param,
                "code": err.code,
            }
        }
    )


def error_payload(err: GatewayError) -> tuple[int, bytes, str]:
    """Status, body and content type for an error; upstream error bodies pass through."""
    if isinstance(err, UpstreamStatus) and err.body:
        return err.status, err.body, err.content_type or "application/json"
    return err.status, error_body(err), "application/json"


def stream_error_event(err: GatewayError) -> bytes:
    """An SSE event carrying an OpenAI error object; the openai SDK raises on it."""
    return b"data: " + error_body(err) + b"\n\n"
