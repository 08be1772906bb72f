"""Error bodies: the one place a GatewayError becomes bytes, in the client's dialect.

OpenAI clients get ``{"error": {message, type, param, code}}``; other dialects (Anthropic's
``{"type": "error", "error": {type, message}}``, …) are rendered by their codec in
:mod:`smg.protocol.dialects`. An upstream error body passes through untouched when it is
already in the client's dialect, and is re-rendered from its message otherwise.
"""

from __future__ import annotations

import orjson

from smg.errors import GatewayError, UpstreamStatus
from smg.protocol.dialects import codec
from smg.protocol.error_bodies import read_error

OPENAI = "openai"


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


def _foreign_body(err: UpstreamStatus) -> bytes:
    """An upstream error written in another dialect, re-rendered for an OpenAI client."""
    info = read_error(err.body, err.status)
    kind = "server_error" if err.status >= 500 else (info.type or "invalid_request_error")
    return orjson.dumps(
        {
            "error": {
                "message": info.message,
                "type": kind,
                "param": info.param,
                "code": info.code or info.type,
            }
        }
    )


def error_payload(err: GatewayError, dialect: str = OPENAI) -> tuple[int, bytes, str]:
    """Status, body and content type for an error in ``dialect``."""
    if dialect != OPENAI:
        return codec(dialect).error_payload(err)
    if isinstance(err, UpstreamStatus) and err.body:
        if err.dialect == OPENAI:
            return err.status, err.body, err.content_type or "application/json"
        return err.status, _foreign_body(err), "application/json"
    return err.status, error_body(err), "application/json"


def stream_error_event(err: GatewayError, dialect: str = OPENAI) -> bytes:
    """An SSE event carrying the error in ``dialect``; the provider SDKs raise on it."""
    if dialect != OPENAI:
        return codec(dialect).stream_error_event(err)
    if isinstance(err, UpstreamStatus) and err.body and err.dialect != OPENAI:
        return b"data: " + _foreign_body(err) + b"\n\n"
    return b"data: " + error_body(err) + b"\n\n"
