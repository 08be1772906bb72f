"""OpenAI ``chat.completion.chunk`` SSE → Anthropic stream events (the ``/v1/messages`` side).

The event sequence is the Messages API's: ``message_start``; per content block
``content_block_start``, its deltas, ``content_block_stop`` (one block open at a time,
indexes counting up); ``message_delta`` with the stop reason and usage; ``message_stop``.

* ``reasoning_content`` (or ``reasoning``) → a ``thinking`` block of ``thinking_delta``s;
* ``content`` → a ``text`` block of ``text_delta``s;
* each tool call (by its ``index``) → a ``tool_use`` block, opened once its name is
  known; every ``arguments`` fragment becomes one ``input_json_delta`` with exactly that
  text, in order — fragments that arrive before the name are held and sent first, none
  is dropped or repeated. A fragment for a call whose block was already closed (a server
  interleaving calls, which OpenAI-compatible servers do not do) ends the stream with an
  error rather than a wrong answer.

Only choice 0 is translated (the Messages API has one). Usage comes from the final usage
chunk the ingress asked for (``stream_options.include_usage``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from smg.errors import UpstreamError, UpstreamStatus
from smg.protocol.anthropic.shapes import stop_reason, usage_from_openai
from smg.protocol.sse import encode_event


def _event(kind: str, doc: dict[str, Any]) -> bytes:
    return encode_event(orjson.dumps(doc), kind)


@dataclass(slots=True)
class _Call:
    id: str | None = None
    name: str | None = None
    block: int | None = None
    closed: bool = False
    pending: list[str] = field(default_factory=list)


class ChunksToMessages:
    """One OpenAI stream's translator; feed parsed chunks, get Anthropic SSE bytes back."""

    __slots__ = (
        "_calls",
        "_finish",
        "_index",
        "_matched",
        "_model",
        "_open",
        "_started",
        "_usage",
        "ended",
    )

    def __init__(self, model: str | None) -> None:
        self._model = model
        self._started = False
        self._index = -1  # Anthropic index of the last block opened
        self._open: str | int | None = None  # "text" / "thinking" / a tool call index
        self._calls: dict[int, _Call] = {}
        self._finish: str | None = None
        self._matched: Any = None
        self._usage: Any = None
        self.ended = False

    # -- blocks ---------------------------------------------------------------------

    def _close(self, out: list[bytes]) -> None:
        if self._open is None:
            return
        if isinstance(self._open, int):
            self._calls[self._open].closed = True
        out.append(
            _event("content_block_stop", {"type": "content_block_stop", "index": self._index})
        )
        self._open = None

    def _begin(self, key: str | int, block: dict[str, Any], out: list[bytes]) -> None:
        self._close(out)
        self._index += 1
        self._open = key
        out.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": self._index, "content_block": block},
            )
        )

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        out.append(
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": self._index, "delta": delta},
            )
        )

    def _text(self, key: str, text: str, out: list[bytes]) -> None:
        if self._open != key:
            if key == "text":
                self._begin(key, {"type": "text", "text": ""}, out)
            else:
                self._begin(key, {"type": "thinking", "thinking": "", "signature": ""}, out)
        if key == "text":
            self._delta({"type": "text_delta", "text": text}, out)
        else:
            self._delta({"type": "thinking_delta", "thinking": text}, out)

    def _open_call(self, idx: int, call: _Call, out: list[bytes]) -> None:
        tid = call.id or f"toolu_{idx:02d}"
        block = {"type": "tool_use", "id": tid, "name": call.name or "", "input": {}}
        self._begin(idx, block, out)
        call.block = self._index
        if call.pending:
            self._delta({"type": "input_json_delta", "partial_json": "".join(call.pending)}, out)
            call.pending.clear()

    def _tool_delta(self, pos: int, tc: dict[str, Any], out: list[bytes]) -> None:
        idx = tc.get("index")
        if not isinstance(idx, int):
            idx = pos
        call = self._calls.get(idx)
        if call is None:
            call = self._calls[idx] = _Call()
        if call.closed:
            raise UpstreamError(
                f"The worker streamed tool call {idx} again after another call had started; "
                "its arguments cannot be placed in an Anthropic stream."
            )
        if tc.get("id") and call.id is None:
            call.id = tc["id"]
        fn = tc.get("function") or {}
        if fn.get("name") and call.name is None:
            call.name = fn["name"]
        args = fn.get("arguments")
        if call.block is None:
            if isinstance(args, str) and args:
                call.pending.append(args)
            if call.name is not None:
                self._open_call(idx, call, out)
        elif isinstance(args, str) and args:
            if self._open != idx:  # pragma: no cover - guarded by ``closed`` above
                raise UpstreamError(f"tool call {idx} is not the open block")
            self._delta({"type": "input_json_delta", "partial_json": args}, out)

    # -- chunks ---------------------------------------------------------------------

    def _start(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        self._started = True
        rid = str(chunk.get("id") or "")
        message: dict[str, Any] = {
            "id": rid if rid.startswith("msg_") else f"msg_{rid}",
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(_event("message_start", {"type": "message_start", "message": message}))

    def feed(self, chunk: Any) -> bytes:
        """Translate one parsed OpenAI chunk."""
        if not isinstance(chunk, dict):
            raise UpstreamError("The worker streamed a chunk that is not a JSON object.")
        if "error" in chunk:
            raise UpstreamStatus(500, orjson.dumps(chunk), "application/json")
        out: list[bytes] = []
        if not self._started:
            self._start(chunk, out)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self._text("thinking", reasoning, out)
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._text("text", content, out)
            for pos, tc in enumerate(delta.get("tool_calls") or ()):
                if isinstance(tc, dict):
                    self._tool_delta(pos, tc, out)
            if choice.get("finish_reason") is not None:
                self._finish = choice["finish_reason"]
                self._matched = choice.get("stop_reason")
        return b"".join(out)

    def end(self) -> bytes:
        """End the message: last block, ``message_delta`` (stop reason, usage), ``message_stop``."""
        out: list[bytes] = []
        if not self._started:
            self._start({}, out)
        for idx, call in self._calls.items():
            if call.block is None and not call.closed:
                # A call whose name never came: still deliver its arguments.
                self._open_call(idx, call, out)
        self._close(out)
        reason, sequence = stop_reason(self._finish, self._matched)
        usage = usage_from_openai(self._usage)
        out.append(
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": sequence},
                    "usage": usage,
                },
            )
        )
        out.append(_event("message_stop", {"type": "message_stop"}))
        self.ended = True
        return b"".join(out)
