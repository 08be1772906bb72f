"""Decodes an HTTP request body into a ``GatewayRequest``, rejecting bad input by field."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from smg.errors import BadRequest, PayloadTooLarge
from smg.protocol.dialects import Decoded, Ingress, codec
from smg.protocol.request import GatewayRequest

# Field that must be present per request kind (OpenAI / SGLang semantics).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "chat": ("messages",),
    "completions": ("prompt",),
    "embeddings": ("input",),
    "detokenize": ("tokens",),
}
# Kinds that carry no sampling fields to check.
_NO_SAMPLING = frozenset({"embeddings", "tokenize", "detokenize"})


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """Read the whole body, refusing more than ``limit`` bytes."""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise PayloadTooLarge(f"Request body of {length} bytes exceeds the {limit}-byte limit.")
        return await request.content.readexactly(length) if length else b""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"Request body exceeds the {limit}-byte limit.")
        parts.append(chunk)


_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Beyond any context window in existence: a typo or an attack, not a request.
_MAX_TOKENS_LIMIT = 16_777_216
_MAX_N = 128


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_messages(msgs: Any) -> None:
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("'messages' must be a non-empty array.", param="messages")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise BadRequest(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
        role = m.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise BadRequest(
                f"Invalid value for 'messages[{i}].role': {role!r}; expected one of "
                f"{', '.join(sorted(_ROLES))}.",
                param=f"messages[{i}].role",
            )


def _check_sampling(doc: dict[str, Any]) -> None:
    for name in ("max_tokens", "max_completion_tokens"):
        v = doc.get(name)
        if v is not None and (not _is_int(v) or not 0 <= v <= _MAX_TOKENS_LIMIT):
            raise BadRequest(
                f"'{name}' must be an integer between 0 and {_MAX_TOKENS_LIMIT}, got {v!r}.",
                param=name,
            )
    n = doc.get("n")
    if n is not None and (not _is_int(n) or not 1 <= n <= _MAX_N):
        raise BadRequest(f"'n' must be an integer between 1 and {_MAX_N}, got {n!r}.", param="n")
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        v = doc.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise BadRequest(f"'{name}' must be a number, got {v!r}.", param=name)
    t = doc.get("temperature")
    if isinstance(t, int | float) and t < 0:
        raise BadRequest("'temperature' must not be negative.", param="temperature")
    stop = doc.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(x, str) for x in stop))
    ):
        raise BadRequest("'stop' must be a string or an array of strings.", param="stop")
    so = doc.get("stream_options")
    if so is not None and not isinstance(so, dict):
        raise BadRequest("'stream_options' must be an object.", param="stream_options")


def _check_fields(kind: str, doc: dict[str, Any]) -> None:
    for name in _REQUIRED.get(kind, ()):
        if name not in doc:
            raise BadRequest(f"Missing required parameter: '{name}'.", param=name)
    if kind == "chat":
        _check_messages(doc["messages"])
    elif kind == "completions":
        prompt = doc["prompt"]
        if not isinstance(prompt, str | list) or (isinstance(prompt, list) and not prompt):
            raise BadRequest(
                "'prompt' must be a string, an array of strings or of token ids.", param="prompt"
            )
    elif kind == "embeddings":
        inp = doc["input"]
        if not isinstance(inp, str | list) or (isinstance(inp, list) and not inp):
            raise BadRequest("'input' must be a string or a non-empty array.", param="input")
    elif kind == "generate" and "text" not in doc and "input_ids" not in doc:
        raise BadRequest("Missing required parameter: 'text' or 'input_ids'.", param="text")
    elif kind == "tokenize" and "prompt" not in doc and "messages" not in doc:
        raise BadRequest("Missing required parameter: 'prompt' or 'messages'.", param="prompt")
    elif kind == "tokenize" and "messages" in doc:
        _check_messages(doc["messages"])
    if kind not in _NO_SAMPLING:
        _check_sampling(doc)


def decode_json(body: bytes, kind: str, model_required: bool = True) -> dict[str, Any]:
    """Parse and sanity-check a JSON request body."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"We could not parse the JSON body of your request: {exc}", param=None
        ) from None
    if not isinstance(doc, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = doc.get("model")
    if model is None:
        if model_required and kind != "generate":
            raise BadRequest("You must provide a model parameter.", param="model")
    elif not isinstance(model, str):
        raise BadRequest("'model' must be a string.", param="model")
    stream = doc.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise BadRequest("'stream' must be a boolean.", param="stream")
    _check_fields(kind, doc)
    return doc


def decode_dialect(body: bytes, ingress: Ingress, path: str) -> tuple[dict[str, Any], Decoded]:
    """A foreign-dialect body: parsed, checked and translated by its dialect's codec."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("The request body must be a JSON object.")
    return doc, codec(ingress.dialect).decode(ingress, path, doc)


async def decode_request(
    request: web.BaseRequest, kind: str, limit: int, ingress: Ingress | None = None
) -> GatewayRequest:
    """Turn the wire request into the internal one; the body is parsed exactly once.

    A request on an ingress path of another dialect (``/v1/messages``) is translated
    into the OpenAI shape here; its own body is kept for passthrough.
    """
    ctype = request.headers.get("Content-Type")
    if ctype is not None and not ctype.startswith("application/json"):
        raise BadRequest(
            f"Unsupported content type '{ctype}'; send application/json.",
            status=415,
            code="unsupported_media_type",
        )
    body = await read_body(request, limit)
    if ingress is not None:
        native, dec = decode_dialect(body, ingress, request.path)
        return GatewayRequest(
            method=request.method,
            path=request.path,
            kind=kind,
            headers=request.headers,
            body=orjson.dumps(dec.json),
            json=dec.json,
            model=dec.model,
            stream=dec.stream,
            raw_headers=request.raw_headers,
            dialect=ingress.dialect,
            openai_path=ingress.openai_path,
            native=native,
            native_body=body,
            translation_error=dec.problem,
        )
    doc = decode_json(body, kind)
    model = doc.get("model")
    return GatewayRequest(
        method=request.method,
        path=request.path,
        kind=kind,
        headers=request.headers,
        body=body,
        json=doc,
        model=model,
        stream=bool(doc.get("stream")),
        raw_headers=request.raw_headers,
    )
