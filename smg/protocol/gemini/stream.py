"""Gemini ``streamGenerateContent?alt=sse`` events → OpenAI ``chat.completion.chunk`` events.

Each Gemini event is a partial ``GenerateContentResponse``: text parts are deltas,
``functionCall`` parts arrive whole (one tool-call delta carrying the complete JSON
arguments, so no argument can be cut), the last event of a candidate carries its
``finishReason``, and ``usageMetadata`` is cumulative (the last one counts). The
translation sends the role first, content and tool calls as they come, a separate
chunk with the ``finish_reason``, a usage chunk (``choices: []``) when the client asked
for ``stream_options.include_usage``, then ``data: [DONE]``.

A stream that ends before every candidate finished, or that carries an ``error``
object, raises (the writer ends the client's stream with an error event).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from smg.errors import UpstreamError, UpstreamReset
from smg.protocol.gemini.response import (
    SignatureSink,
    completion_id,
    finish_reason,
    split_parts,
    usage,
)

DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class _Choice:
    role_sent: bool = False
    calls: int = 0
    finished: bool = False


class GeminiStreamTranslator:
    """Feeds on decoded Gemini events; returns the OpenAI SSE bytes they become."""

    def __init__(self, model: str, include_usage: bool, sink: SignatureSink | None = None) -> None:
        self.model = model
        self.include_usage = include_usage
        self.sink = sink
        self.id: str | None = None
        self.created = int(time.time())
        self._choices: dict[int, _Choice] = {}
        self._usage: Any = None

    def _chunk(self, index: int, delta: dict[str, Any], reason: str | None = None) -> bytes:
        doc = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": reason}
            ],
        }
        return b"data: " + orjson.dumps(doc) + b"\n\n"

    def feed(self, data: str) -> bytes:
        """The OpenAI events for one Gemini event's ``data`` (may be empty)."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError("Gemini sent an unreadable stream event.") from None
        if not isinstance(doc, dict):
            raise UpstreamError("Gemini sent an unreadable stream event.")
        err = doc.get("error")
        if isinstance(err, dict):
            raise UpstreamError(f"Gemini ended the stream with an error: {err.get('message')}")
        if self.id is None:
            self.id = completion_id(doc)
        if isinstance(doc.get("modelVersion"), str):
            self.model = doc["modelVersion"]
        if doc.get("usageMetadata") is not None:
            self._usage = doc["usageMetadata"]
        out: list[bytes] = []
        candidates = doc.get("candidates")
        if not candidates:
            fb = doc.get("promptFeedback")
            if isinstance(fb, dict) and fb.get("blockReason"):
                st = self._choices.setdefault(0, _Choice())
                if not st.finished:
                    out.append(self._chunk(0, {"role": "assistant", "content": None}))
                    out.append(self._chunk(0, {}, "content_filter"))
                    st.role_sent = st.finished = True
            return b"".join(out)
        for pos, cand in enumerate(candidates):
            if isinstance(cand, dict):
                self._candidate(int(cand.get("index", pos) or 0), cand, out)
        return b"".join(out)

    def _candidate(self, index: int, cand: dict[str, Any], out: list[bytes]) -> None:
        st = self._choices.setdefault(index, _Choice())
        if st.finished:
            return
        content = cand.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        texts, thoughts, calls = split_parts(parts, self.sink)
        delta: dict[str, Any] = {}
        if not st.role_sent:
            delta["role"] = "assistant"
            st.role_sent = True
        if thoughts:
            delta["reasoning_content"] = "".join(thoughts)
        if texts:
            delta["content"] = "".join(texts)
        if calls:
            delta["tool_calls"] = [{"index": st.calls + i, **call} for i, call in enumerate(calls)]
            st.calls += len(calls)
        if delta:
            if "role" in delta and "content" not in delta and "tool_calls" not in delta:
                delta["content"] = ""
            out.append(self._chunk(index, delta))
        reason = cand.get("finishReason")
        if reason:
            st.finished = True
            out.append(self._chunk(index, {}, finish_reason(reason, st.calls > 0)))

    def end(self) -> bytes:
        """The closing events: the usage chunk (if asked for) and ``[DONE]``."""
        if not self._choices or not all(c.finished for c in self._choices.values()):
            raise UpstreamReset("The Gemini stream ended before its finish reason.")
        tail = b""
        if self.include_usage:
            doc: dict[str, Any] = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage(self._usage),
            }
            tail = b"data: " + orjson.dumps(doc) + b"\n\n"
        return tail + DONE
