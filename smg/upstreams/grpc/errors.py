"""gRPC status codes → the gateway's typed errors (``smg/errors.py``)."""

from __future__ import annotations

import grpc
import orjson

from smg.errors import (
    GatewayError,
    UpstreamConnectError,
    UpstreamReset,
    UpstreamStatus,
    UpstreamTimeout,
)

_JSON = "application/json"

# Codes the engine chose to answer with, as the HTTP status an HTTP engine would use.
# 429 and 5xx are retryable (UpstreamStatus decides); 4xx are relayed to the client.
STATUS_BY_CODE: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.ABORTED: 503,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.DATA_LOSS: 500,
}

_ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error", 429: "rate_limit_error"}


def error_body(status: int, message: str, code: str) -> bytes:
    """An OpenAI-shaped error body, as an HTTP engine would send it."""
    etype = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps({"error": {"message": message, "type": etype, "param": None, "code": code}})


def map_status(code: grpc.StatusCode, details: str) -> GatewayError:
    """The gateway error for a call that ended with ``code``.

    UNAVAILABLE is a transport failure (refused, connection lost, server shutting
    down): retryable and of local origin, like a refused TCP connect. CANCELLED seen by
    the client means the server cut the stream (our own cancels never reach here).
    """
    msg = details or code.name
    if code == grpc.StatusCode.UNAVAILABLE:
        return UpstreamConnectError(f"engine unavailable: {msg}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return UpstreamTimeout(f"engine deadline exceeded: {msg}")
    if code == grpc.StatusCode.CANCELLED:
        return UpstreamReset(f"engine cancelled the call: {msg}")
    status = STATUS_BY_CODE.get(code, 502)
    return UpstreamStatus(status, error_body(status, msg, code.name.lower()), _JSON)


def map_rpc_error(exc: grpc.aio.AioRpcError) -> GatewayError:
    """The gateway error for a failed grpc.aio call."""
    return map_status(exc.code(), exc.details() or "")
