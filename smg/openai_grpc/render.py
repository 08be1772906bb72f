"""OpenAI ``chat.completion`` / ``text_completion`` answers built from the engine's chunks.

One renderer per request (installed as ``state.RENDERER`` by the tokenize filter). Whole
and streamed answers go through the same per-choice path (``choice.Choice``), so a
stream's deltas concatenate to exactly the non-streamed message. Streams: a role chunk
per choice (chat), deltas, a finish chunk per choice, a usage chunk when
``stream_options.include_usage``, then ``data: [DONE]``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import orjson

from smg.openai_grpc.choice import Choice, Settings, Step, logprobs_json, usage
from smg.parsers import OutputParser
from smg.protocol.request import GatewayResponse
from smg.upstreams.grpc.state import ENGINE_EOS_IDS
from smg.upstreams.grpc.types import GenerateChunk

if TYPE_CHECKING:
    from smg.filters.base import RequestContext

_SSE = "text/event-stream"
_JSON = "application/json"
ParserFactory = Callable[[int], "OutputParser | None"]


def _event(doc: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"


class OpenAIRenderer:
    """Renders one request's chunks as chat completions (``chat``) or text completions."""

    def __init__(
        self,
        *,
        chat: bool,
        model: str,
        request_id: str,
        settings: Settings,
        parsers: ParserFactory,
        prompt_len: int,
        include_usage: bool = False,
        logprobs: bool = False,
        top_logprobs: bool = False,
    ) -> None:
        self.chat = chat
        self.model = model
        self.id = ("chatcmpl-" if chat else "cmpl-") + request_id
        self.created = int(time.time())
        self.settings = settings
        self.prompt_len = prompt_len
        self.include_usage = include_usage
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs
        n = settings.sampling.n
        self.choices = [Choice(i, settings, parsers(i)) for i in range(n)]

    async def render(
        self, ctx: RequestContext, chunks: AsyncIterator[GenerateChunk], stream: bool
    ) -> GatewayResponse:
        """The whole answer, or a stream whose events follow the chunks."""
        engine_eos = ctx.get(ENGINE_EOS_IDS, ())
        if engine_eos:
            for choice in self.choices:
                choice.out.stop_tokens.add_eos(engine_eos)
        if stream:
            resp = GatewayResponse(status=200, content_type=_SSE, headers=[])
            resp.stream = self._events(chunks)
            return resp
        async for c in chunks:
            if 0 <= c.index < len(self.choices):
                self.choices[c.index].step(c)
            if all(ch.done for ch in self.choices):
                break
        body = orjson.dumps(self.whole())
        return GatewayResponse(status=200, content_type=_JSON, headers=[], body=body)

    # -- whole answers -----------------------------------------------------------------

    def whole(self) -> dict[str, Any]:
        """The non-streamed response document."""
        return {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [self._whole_choice(c) for c in self.choices],
            "usage": usage(self.choices, self.prompt_len),
        }

    def _whole_choice(self, c: Choice) -> dict[str, Any]:
        lps = self._logprobs(c.logprobs) if self.logprobs else None
        if not self.chat:
            return {
                "index": c.index,
                "text": c.content,
                "logprobs": lps,
                "finish_reason": c.finish_reason,
            }
        msg: dict[str, Any] = {"role": "assistant", "content": c.content or None}
        if c.reasoning:
            msg["reasoning_content"] = c.reasoning
        if c.tool_calls:
            msg["tool_calls"] = [
                {
                    "id": t.id,
                    "type": "function",
                    "function": {"name": t.name, "arguments": t.arguments},
                }
                for t in c.tool_calls
            ]
        return {"index": c.index, "message": msg, "logprobs": lps, "finish_reason": c.finish_reason}

    def _logprobs(self, lps: list[Any]) -> dict[str, Any] | None:
        tok = self.settings.tokenizer
        doc = logprobs_json(tok, lps, self.top_logprobs)
        if self.chat:
            return doc
        # Completions use the legacy parallel-array shape.
        content = doc["content"]
        return {
            "tokens": [e["token"] for e in content],
            "token_logprobs": [e["logprob"] for e in content],
            "top_logprobs": [
                {t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in content
            ],
        }

    # -- streams -----------------------------------------------------------------------

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            doc["usage"] = None
        return doc

    def _stream_choice(self, c: Choice, step: Step) -> dict[str, Any] | None:
        d = step.delta
        if not d and step.finish_reason is None and not step.logprobs:
            return None
        lps = self._logprobs(step.logprobs) if self.logprobs and step.logprobs else None
        if self.chat:
            return {
                "index": c.index,
                "delta": d.to_openai(),
                "logprobs": lps,
                "finish_reason": step.finish_reason,
            }
        return {
            "index": c.index,
            "text": d.content,
            "logprobs": lps,
            "finish_reason": step.finish_reason,
        }

    async def _events(self, chunks: AsyncIterator[GenerateChunk]) -> AsyncIterator[bytes]:
        if self.chat:
            yield _event(
                self._chunk(
                    [
                        {
                            "index": c.index,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                        for c in self.choices
                    ]
                )
            )
        async for chunk in chunks:
            if not 0 <= chunk.index < len(self.choices):
                continue
            c = self.choices[chunk.index]
            was_done = c.done
            out = self._stream_choice(c, c.step(chunk))
            if out is not None and not was_done:
                yield _event(self._chunk([out]))
            if all(ch.done for ch in self.choices):
                break
        if self.include_usage:
            doc = self._chunk([])
            doc["usage"] = usage(self.choices, self.prompt_len)
            yield _event(doc)
        yield b"data: [DONE]\n\n"
