"""Gemini error answers (``{"error": {"code", "message", "status", "details"}}``) → OpenAI shape.

The status is kept (429 ``RESOURCE_EXHAUSTED`` and 5xx stay retryable for the router);
a ``RetryInfo.retryDelay`` becomes a ``retry-after`` header. An invalid key (Gemini
answers 400 with reason ``API_KEY_INVALID``) is a 401, like every other provider's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True, slots=True)
class GeminiError:
    """A Gemini error answer, read."""

    status: int
    message: str
    code: str | None
    key_invalid: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def openai_body(self, message: str | None = None) -> bytes:
        """``{"error": {message, type, param, code}}`` for OpenAI clients."""
        kind = _TYPES.get(self.status, "server_error" if self.status >= 500 else "api_error")
        return orjson.dumps(
            {
                "error": {
                    "message": message or self.message,
                    "type": kind,
                    "param": None,
                    "code": self.code,
                }
            }
        )


def _retry_after(details: Any) -> dict[str, str]:
    for d in details if isinstance(details, list) else ():
        delay = d.get("retryDelay") if isinstance(d, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                secs = float(delay[:-1])
            except ValueError:
                continue
            return {"retry-after": str(max(1, round(secs)))}
    return {}


def _key_invalid(details: Any) -> bool:
    return any(
        isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID"
        for d in (details if isinstance(details, list) else ())
    )


def read_error(status: int, body: bytes) -> GeminiError:
    """The error a Gemini answer with ``status`` >= 400 carries (any body shape)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        err = doc[0].get("error")  # streamGenerateContent without alt=sse wraps it in a list
    if not isinstance(err, dict):
        return GeminiError(status, f"Gemini answered {status}.", f"gemini_{status}")
    details = err.get("details")
    invalid = _key_invalid(details)
    code = err.get("status")
    return GeminiError(
        401 if invalid else status,
        str(err.get("message") or f"Gemini answered {status}."),
        code if isinstance(code, str) else None,
        invalid,
        _retry_after(details),
    )
