"""Anthropic stream events → OpenAI ``chat.completion.chunk`` SSE (the cluster protocol side).

``message_start`` → the role chunk; ``text_delta`` → ``content``; ``thinking_delta`` →
``reasoning_content``; a ``tool_use`` block start → a tool call with its id and name
and empty arguments, each ``input_json_delta`` → an ``arguments`` fragment of that call
(indexes count tool calls, not blocks); ``message_delta`` → the finish chunk;
``message_stop`` → the usage chunk (when the client asked for it) and ``[DONE]``. An
``error`` event raises ``UpstreamStatus`` carrying the Anthropic body, so the client gets
it in its own dialect. Every fragment is forwarded once, in order, as it came.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from smg.errors import UpstreamError, UpstreamStatus
from smg.protocol.anthropic.errors import ANTHROPIC, status_of_type
from smg.protocol.anthropic.shapes import finish_reason, usage_to_openai

DONE = b"data: [DONE]\n\n"


def raise_stream_error(data: bytes | str, doc: Any) -> None:
    """An ``error`` event as a ``UpstreamStatus`` in Anthropic's shape."""
    err = doc.get("error") if isinstance(doc, dict) else None
    kind = err.get("type") if isinstance(err, dict) else None
    body = data.encode() if isinstance(data, str) else data
    raise UpstreamStatus(status_of_type(kind), body, "application/json", dialect=ANTHROPIC)


class MessagesToChunks:
    """One Anthropic stream's translator; feed events in order, get OpenAI SSE bytes back."""

    __slots__ = (
        "_blocks",
        "_created",
        "_id",
        "_include_usage",
        "_model",
        "_tools",
        "_usage",
        "done",
        "started",
    )

    def __init__(self, include_usage: bool, model: str | None = None) -> None:
        self._include_usage = include_usage
        self._created = int(time.time())
        self._id = ""
        self._model = model or ""
        self._usage: dict[str, Any] = {}
        self._tools = 0
        self._blocks: dict[int, int] = {}  # tool_use block index → tool call index
        self.started = False
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return (
            b"data: "
            + orjson.dumps(
                {
                    "id": self._id,
                    "object": "chat.completion.chunk",
                    "created": self._created,
                    "model": self._model,
                    "choices": [
                        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                    ],
                }
            )
            + b"\n\n"
        )

    def feed(self, data: bytes | str) -> bytes:
        """Translate one event's ``data``; returns the OpenAI SSE bytes it makes (maybe none)."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError("The Anthropic stream carried an event that is not JSON.") from None
        kind = doc.get("type") if isinstance(doc, dict) else None
        if kind == "content_block_delta":
            return self._delta(doc)
        if kind == "message_start":
            return self._start(doc)
        if kind == "content_block_start":
            return self._block_start(doc)
        if kind == "message_delta":
            return self._message_delta(doc)
        if kind == "message_stop":
            return self._stop()
        if kind == "error":
            raise_stream_error(data, doc)
        return b""  # ping, content_block_stop, and event types added later

    def _start(self, doc: dict[str, Any]) -> bytes:
        msg = doc.get("message") or {}
        self._id = str(msg.get("id") or "")
        self._model = str(msg.get("model") or self._model)
        usage = msg.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)
        self.started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, doc: dict[str, Any]) -> bytes:
        block = doc.get("content_block") or {}
        kind = block.get("type")
        if kind == "tool_use":
            tool = self._tools
            self._tools += 1
            self._blocks[doc.get("index", -1)] = tool
            args = block.get("input")
            call = {
                "index": tool,
                "id": block.get("id"),
                "type": "function",
                "function": {
                    "name": block.get("name"),
                    # A streamed tool_use starts with an empty input, filled by deltas.
                    "arguments": orjson.dumps(args).decode() if args else "",
                },
            }
            return self._chunk({"tool_calls": [call]})
        if kind == "text" and block.get("text"):
            return self._chunk({"content": block["text"]})
        if kind == "thinking" and block.get("thinking"):
            return self._chunk({"reasoning_content": block["thinking"]})
        return b""

    def _delta(self, doc: dict[str, Any]) -> bytes:
        delta = doc.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return self._chunk({"content": text}) if text else b""
        if kind == "input_json_delta":
            part = delta.get("partial_json")
            tool = self._blocks.get(doc.get("index", -1))
            if not part or tool is None:
                return b""
            return self._chunk({"tool_calls": [{"index": tool, "function": {"arguments": part}}]})
        if kind == "thinking_delta":
            text = delta.get("thinking")
            return self._chunk({"reasoning_content": text}) if text else b""
        return b""  # signature_delta, citations_delta

    def _message_delta(self, doc: dict[str, Any]) -> bytes:
        usage = doc.get("usage")
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        reason = (doc.get("delta") or {}).get("stop_reason")
        if reason is None:
            return b""
        return self._chunk({}, finish_reason(reason))

    def _stop(self) -> bytes:
        self.done = True
        if not self._include_usage:
            return DONE
        tail = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [],
            "usage": usage_to_openai(self._usage),
        }
        return b"data: " + orjson.dumps(tail) + b"\n\n" + DONE
