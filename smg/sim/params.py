"""Request-body validation and OpenAI-style error bodies."""

from __future__ import annotations

from typing import Any

import orjson

from smg.sim.http import Request
from smg.sim.tokens import ids_to_prompt

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class BadRequest(Exception):
    """A client mistake, answered with 400 and an OpenAI error body."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | int | None = None
) -> bytes:
    """``{"error": {message, type, param, code}}`` as OpenAI writes it."""
    etype = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps(
        {"error": {"message": message, "type": etype, "param": param, "code": code}}
    )


def load_json(req: Request) -> dict[str, Any]:
    """The request body as a JSON object."""
    try:
        body = orjson.loads(req.body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"We could not parse the JSON body of your request: {exc}", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    return body


def opt_int(body: dict[str, Any], name: str, lo: int = 0, hi: int = 1 << 31) -> int | None:
    """An optional integer field within [lo, hi]."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{name}' must be an integer.", param=name, code="invalid_type")
    if not lo <= value <= hi:
        raise BadRequest(
            f"'{name}' must be between {lo} and {hi}.", param=name, code="invalid_value"
        )
    return value


def opt_bool(body: dict[str, Any], name: str) -> bool:
    """An optional boolean field (absent means false)."""
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be a boolean.", param=name, code="invalid_type")
    return value


def opt_str(body: dict[str, Any], name: str) -> str | None:
    """An optional string field."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string.", param=name, code="invalid_type")
    return value


def prompts_of(value: Any, param: str) -> list[bytes]:
    """Encode a prompt given as text, token ids, or a batch of either."""
    if isinstance(value, str):
        return [value.encode()]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return [v.encode() for v in value]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [ids_to_prompt(value)]
        if all(isinstance(v, list) and v and all(type(i) is int for i in v) for v in value):
            return [ids_to_prompt(v) for v in value]
    if value is None:
        raise BadRequest(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    raise BadRequest(
        f"'{param}' must be a string, a list of strings, or token ids.",
        param=param,
        code="invalid_type",
    )
