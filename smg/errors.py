"""Typed gateway errors, rendered to the client's dialect in exactly one place.

Tree::

    GatewayError                 status, code, blame, retryable, local_origin
    ├── BadRequest               400  downstream  (malformed body, wrong field type)
    │   └── PayloadTooLarge      413
    ├── Unauthorized             401  downstream
    ├── NotFound                 404  downstream  (unknown path)
    │   └── ModelNotFound        404  downstream  (no route serves the model)
    ├── RateLimited              429  downstream
    ├── UpstreamError            502  upstream    (worker answered badly / stream cut)
    │   ├── UpstreamConnectError 503  upstream, local origin, retryable
    │   ├── UpstreamReset        502  upstream, local origin, retryable
    │   └── UpstreamStatus       status of the worker, retryable for 5xx/429
    ├── NoHealthyEndpoint        503  upstream, retryable
    ├── UpstreamTimeout          504  upstream, local origin, retryable
    ├── ShuttingDown             503  internal, retryable (drain deadline passed)
    └── InternalError            500  internal (a bug in the gateway)

``blame`` says who caused it (``downstream`` = the client, ``upstream`` = a worker,
``internal`` = us); ``local_origin`` marks failures observed at the socket (refused,
reset, timed out) rather than a status the worker chose to send.
"""

from __future__ import annotations

from typing import Literal

Blame = Literal["downstream", "upstream", "internal"]


class GatewayError(Exception):
    """Base of every error the gateway renders to a client."""

    status: int = 500
    code: str = "internal_error"
    type: str = "server_error"
    blame: Blame = "internal"
    retryable: bool = False
    local_origin: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = headers or {}

    @property
    def kind(self) -> str:
        """Short snake-case name used in logs and metrics."""
        return self.code


class BadRequest(GatewayError):
    """The client sent something the gateway cannot accept."""

    status = 400
    code = "invalid_request_error"
    type = "invalid_request_error"
    blame = "downstream"


class PayloadTooLarge(BadRequest):
    """The body exceeds the listener's max payload size."""

    status = 413
    code = "payload_too_large"


class Unauthorized(GatewayError):
    """Missing or wrong API key."""

    status = 401
    code = "invalid_api_key"
    type = "invalid_request_error"
    blame = "downstream"


class NotFound(GatewayError):
    """Unknown path."""

    status = 404
    code = "not_found"
    type = "invalid_request_error"
    blame = "downstream"


class ModelNotFound(NotFound):
    """No route serves the requested model."""

    code = "model_not_found"


class RateLimited(GatewayError):
    """A limit of the gateway said no."""

    status = 429
    code = "rate_limit_exceeded"
    type = "rate_limit_error"
    blame = "downstream"


class UpstreamError(GatewayError):
    """A worker failed to give a usable answer."""

    status = 502
    code = "upstream_error"
    type = "server_error"
    blame = "upstream"


class UpstreamConnectError(UpstreamError):
    """Could not connect to the worker."""

    status = 503
    code = "upstream_connect_error"
    retryable = True
    local_origin = True


class UpstreamReset(UpstreamError):
    """The worker closed the connection before a complete answer."""

    code = "upstream_reset"
    retryable = True
    local_origin = True


class UpstreamStatus(UpstreamError):
    """The worker answered with an error status; its body is relayed as is."""

    code = "upstream_status"

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        *,
        dialect: str = "openai",
    ) -> None:
        super().__init__(f"upstream answered {status}", status=status, headers=headers)
        self.body = body
        self.content_type = content_type
        self.dialect = dialect
        """The API dialect ``body`` is written in (re-rendered for a client speaking another)."""
        self.retryable = status >= 500 or status == 429


class NoHealthyEndpoint(UpstreamError):
    """The cluster has no endpoint that may take the request."""

    status = 503
    code = "no_healthy_upstream"
    retryable = True


class UpstreamTimeout(UpstreamError):
    """A deadline expired while waiting for the worker."""

    status = 504
    code = "upstream_timeout"
    retryable = True
    local_origin = True


class ShuttingDown(GatewayError):
    """The drain deadline passed while this request was still running."""

    status = 503
    code = "shutting_down"
    type = "server_error"
    blame = "internal"
    retryable = True


class InternalError(GatewayError):
    """A bug in the gateway; logged with its traceback, rendered without it."""

    status = 500
    code = "internal_error"
    blame = "internal"
