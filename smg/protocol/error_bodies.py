"""Reads any provider's error body (OpenAI, vLLM, Anthropic, Gemini) into one neutral form.

Used when an upstream error has to be shown to a client that speaks another dialect: the
body is re-rendered from what this module extracts, never relayed in a foreign shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What an error body says, whatever its shape."""

    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None


def _str(v: Any) -> str | None:
    if isinstance(v, str) and v:
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return None


def read_error(body: bytes, status: int) -> ErrorInfo:
    """The message, type, code and param of an error body (a generic message if unreadable)."""
    fallback = ErrorInfo(f"The upstream answered {status}.")
    if not body:
        return fallback
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:500].decode("utf-8", "replace").strip()
        return ErrorInfo(text) if text else fallback
    if not isinstance(doc, dict):
        return fallback
    err = doc.get("error")
    if isinstance(err, dict):
        # OpenAI {"error": {message, type, param, code}}, Anthropic {"type": "error",
        # "error": {type, message}}, Gemini {"error": {code, message, status}}.
        return ErrorInfo(
            _str(err.get("message")) or fallback.message,
            _str(err.get("type")) or _str(err.get("status")),
            _str(err.get("code")),
            _str(err.get("param")),
        )
    if isinstance(err, str):
        return ErrorInfo(err)
    # vLLM / SGLang: {"object": "error", "message", "type", "param", "code"}.
    message = _str(doc.get("message")) or _str(doc.get("detail"))
    if message is None:
        return fallback
    return ErrorInfo(message, _str(doc.get("type")), _str(doc.get("code")), _str(doc.get("param")))
