"""Decodes an HTTP request body into a ``GatewayRequest``, rejecting bad input by field."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from smg.errors import BadRequest, PayloadTooLarge
from smg.protocol.request import GatewayRequest

# Field that must be present per request kind (OpenAI / SGLang semantics).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "chat": ("messages",),
    "completions": ("prompt",),
    "embeddings": ("input",),
}


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


def _check_fields(kind: str, doc: dict[str, Any]) -> None:
    for name in _REQUIRED.get(kind, ()):
        if name not in doc:
            raise BadRequest(f"Missing required parameter: '{name}'.", param=name)
    if kind == "chat":
        msgs = doc["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise BadRequest("'messages' must be a non-empty array.", param="messages")
    if kind == "generate" and "text" not in doc and "input_ids" not in doc:
        raise BadRequest("Missing required parameter: 'text' or 'input_ids'.", param="text")


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


async def decode_request(request: web.BaseRequest, kind: str, limit: int) -> GatewayRequest:
    """Turn the wire request into the internal one; the body is parsed exactly once."""
    ctype = request.headers.get("Content-Type")
    if ctype is not None and not ctype.startswith("application/json"):
        raise BadRequest(
            f"Unsupported content type '{ctype}'; send application/json.",
            status=415,
            code="unsupported_media_type",
        )
    body = await read_body(request, limit)
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
    )
