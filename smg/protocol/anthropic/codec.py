"""The ``anthropic`` dialect codec: ``/v1/messages`` in; Anthropic bodies, streams, errors out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from smg.errors import GatewayError, UpstreamError, UpstreamStatus
from smg.protocol.anthropic import errors
from smg.protocol.anthropic.request_in import count_tokens_to_openai, messages_to_openai
from smg.protocol.anthropic.response import openai_to_message
from smg.protocol.anthropic.stream_out import ChunksToMessages
from smg.protocol.dialects import Decoded, Ingress
from smg.protocol.request import GatewayRequest
from smg.protocol.sse import SseDecoder


def _load(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError("The worker answered with a body that is not JSON.") from None


async def chunks_to_events(
    req: GatewayRequest, stream: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """An OpenAI SSE stream re-encoded as Anthropic events, chunk by chunk.

    What a chunk translated to before a failure in it (an error event, a bad chunk) is
    still sent; then the failure ends the stream (the writer adds the error event).
    """
    tr = ChunksToMessages(req.model)
    decoder = SseDecoder()
    try:
        async for data in stream:
            out: list[bytes] = []
            failure: GatewayError | None = None
            try:
                for ev in decoder.feed(data):
                    if tr.ended:
                        break
                    if ev.data == "[DONE]":
                        out.append(tr.end())
                    else:
                        out.append(tr.feed(_load(ev.data)))
            except GatewayError as exc:
                failure = exc
            joined = b"".join(out)
            if joined:
                yield joined
            if failure is not None:
                raise failure
        if not tr.ended:
            yield tr.end()
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


class AnthropicCodec:
    """Translations between the Messages API and the internal OpenAI shape."""

    name = errors.ANTHROPIC

    def decode(self, ingress: Ingress, path: str, doc: dict[str, Any]) -> Decoded:
        """A ``/v1/messages`` (or ``count_tokens``) body as an OpenAI body."""
        if ingress.kind == "tokenize":
            return count_tokens_to_openai(doc)
        return messages_to_openai(doc)

    def encode_body(self, req: GatewayRequest, status: int, body: bytes) -> bytes:
        """``chat.completion`` → ``message``; a tokenize count → ``{"input_tokens"}``."""
        if status >= 400:
            return errors.error_payload(UpstreamStatus(status, body, "application/json"))[1]
        doc = _load(body)
        if not isinstance(doc, dict):
            raise UpstreamError("The worker answered with JSON that is not an object.")
        if req.kind == "tokenize":
            count = doc.get("count")
            if count is None:
                count = len(doc.get("tokens") or ())
            return orjson.dumps({"input_tokens": count})
        return orjson.dumps(openai_to_message(doc, req.model))

    def encode_stream(
        self, req: GatewayRequest, stream: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """OpenAI chunks → Anthropic events."""
        return chunks_to_events(req, stream)

    def error_payload(self, err: GatewayError) -> tuple[int, bytes, str]:
        """Anthropic's error shape."""
        return errors.error_payload(err)

    def stream_error_event(self, err: GatewayError) -> bytes:
        """``event: error``."""
        return errors.stream_error_event(err)


CODEC = AnthropicCodec()
