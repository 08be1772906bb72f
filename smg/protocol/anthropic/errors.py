"""Anthropic error bodies: ``{"type": "error", "error": {"type", "message"}}``.

The error ``type`` follows the status as the Messages API documents it: 400
invalid_request_error, 401 authentication_error, 402 billing_error, 403
permission_error, 404 not_found_error, 413 request_too_large, 429 rate_limit_error,
500 api_error, 504 timeout_error, 529 overloaded_error (503 too: the gateway's own
"no capacity" answers). Headers such as ``retry-after`` travel on the error, not here.
"""

from __future__ import annotations

from typing import Final

import orjson

from smg.errors import GatewayError, UpstreamStatus
from smg.protocol.error_bodies import read_error
from smg.protocol.sse import encode_event

ANTHROPIC: Final = "anthropic"

_TYPE_BY_STATUS: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    """The Anthropic error type of an HTTP status."""
    found = _TYPE_BY_STATUS.get(status)
    if found is not None:
        return found
    return "api_error" if status >= 500 else "invalid_request_error"


def render(status: int, message: str) -> bytes:
    """An Anthropic error body."""
    return orjson.dumps(
        {"type": "error", "error": {"type": error_type(status), "message": message}}
    )


def _message(err: GatewayError) -> str:
    if isinstance(err, UpstreamStatus) and err.body:
        return read_error(err.body, err.status).message
    if err.param and err.param not in err.message:
        return f"{err.param}: {err.message}"
    return err.message


def error_payload(err: GatewayError) -> tuple[int, bytes, str]:
    """Status, body and content type of ``err`` for an Anthropic client."""
    if isinstance(err, UpstreamStatus) and err.body and err.dialect == ANTHROPIC:
        return err.status, err.body, err.content_type or "application/json"
    return err.status, render(err.status, _message(err)), "application/json"


def stream_error_event(err: GatewayError) -> bytes:
    """``event: error`` ending an Anthropic stream (the SDK raises the matching error)."""
    return encode_event(error_payload(err)[1], "error")


def status_of_type(kind: str | None, default: int = 500) -> int:
    """The HTTP status an Anthropic error type stands for (for errors inside a stream)."""
    for status, name in _TYPE_BY_STATUS.items():
        if name == kind and status not in (405, 503):
            return status
    return default
