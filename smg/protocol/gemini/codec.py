"""The ``gemini`` dialect codec: Gemini ``generateContent`` clients served from any cluster.

Ingress paths (matched in ``smg.protocol.dialects``):
``/{v1,v1beta}/models/{model}:generateContent`` and ``:streamGenerateContent`` (the model
comes from the path). Translations live in ``ingress.py``; errors are written in
Google's shape ``{"error": {code, message, status}}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import orjson

from smg.errors import BadRequest, GatewayError, UpstreamError, UpstreamStatus
from smg.protocol.dialects import Decoded, Ingress
from smg.protocol.error_bodies import read_error
from smg.protocol.gemini.ingress import ChunksToGemini, from_chat_completion, to_openai
from smg.protocol.request import GatewayRequest
from smg.protocol.sse import SseDecoder

GEMINI: Final = "gemini"
PREFIXES: Final = ("/v1beta/models/", "/v1/models/")
_METHODS: Final = {"generateContent": False, "streamGenerateContent": True}
_STATUS: Final = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _target(path: str) -> tuple[str, bool]:
    for prefix in PREFIXES:
        if path.startswith(prefix):
            model, _, method = path[len(prefix) :].rpartition(":")
            return model, _METHODS[method]
    raise BadRequest(f"Unknown Gemini path {path}.")


def render(status: int, message: str) -> bytes:
    """A Google API error body."""
    name = _STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return orjson.dumps({"error": {"code": status, "message": message, "status": name}})


def _message(err: GatewayError) -> str:
    if isinstance(err, UpstreamStatus) and err.body:
        return read_error(err.body, err.status).message
    if err.param and err.param not in err.message:
        return f"{err.param}: {err.message}"
    return err.message


def _load(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError("The worker answered with a body that is not JSON.") from None


async def _events(req: GatewayRequest, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    tr = ChunksToGemini(req.model)
    decoder = SseDecoder()
    try:
        async for data in stream:
            out: list[bytes] = []
            for ev in decoder.feed(data):
                if tr.ended:
                    break
                if ev.data == "[DONE]":
                    out.append(tr.end())
                    continue
                doc = _load(ev.data)
                if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
                    err = doc["error"]
                    raise UpstreamError(str(err.get("message") or "The worker failed."))
                if isinstance(doc, dict):
                    out.append(tr.feed(doc))
            if out:
                yield b"".join(out)
        if not tr.ended:
            yield tr.end()
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


class GeminiCodec:
    """Translations between ``generateContent`` and the internal OpenAI shape."""

    name = GEMINI

    def decode(self, ingress: Ingress, path: str, doc: dict[str, Any]) -> Decoded:
        """A ``generateContent`` body (model and streaming from the path) as OpenAI chat."""
        model, stream = _target(path)
        return Decoded(to_openai(model, stream, doc), model, stream)

    def encode_body(self, req: GatewayRequest, status: int, body: bytes) -> bytes:
        """``chat.completion`` → ``GenerateContentResponse`` (errors in Google's shape)."""
        if status >= 400:
            return render(status, read_error(body, status).message)
        doc = _load(body)
        if not isinstance(doc, dict):
            raise UpstreamError("The worker answered with JSON that is not an object.")
        return orjson.dumps(from_chat_completion(doc, req.model))

    def encode_stream(
        self, req: GatewayRequest, stream: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """OpenAI chunks → Gemini SSE events."""
        return _events(req, stream)

    def error_payload(self, err: GatewayError) -> tuple[int, bytes, str]:
        """Google's error shape."""
        return err.status, render(err.status, _message(err)), "application/json"

    def stream_error_event(self, err: GatewayError) -> bytes:
        """An ``error`` object as the stream's last event."""
        return b"data: " + render(err.status, _message(err)) + b"\r\n\r\n"


CODEC = GeminiCodec()
