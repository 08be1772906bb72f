"""SGLang-style ``/generate`` answers built from neutral chunks (the default renderer).

Non-streamed: ``{"text": "", "output_ids": [...], "meta_info": {...}}`` (a list of
those, each with ``index``, when ``n`` > 1). Streamed: one SSE event per chunk with the
chunk's new ``output_ids`` (a delta) and ``meta_info``, then ``data: [DONE]``. ``text``
stays empty: gRPC engines return ids, and detokenizing is a later filter's job.
``meta_info.finish_reason`` is ``{"type": "length", "length": N}``, ``{"type": "stop",
"matched": id-or-string}`` or ``{"type": "abort"}``, as SGLang writes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from smg.protocol.request import GatewayResponse
from smg.upstreams.grpc.state import ENGINE_REQUEST_ID
from smg.upstreams.grpc.types import GenerateChunk, TokenLogprob

if TYPE_CHECKING:
    from smg.filters.base import RequestContext

_SSE = "text/event-stream"
_JSON = "application/json"


def finish_reason(chunk: GenerateChunk) -> dict[str, Any] | None:
    """SGLang's ``finish_reason`` object."""
    if chunk.finish_reason is None:
        return None
    if chunk.finish_reason == "length":
        return {"type": "length", "length": chunk.completion_tokens}
    if chunk.finish_reason == "stop":
        return {"type": "stop", "matched": chunk.matched_stop}
    return {"type": chunk.finish_reason}


def _logprobs(meta: dict[str, Any], lps: list[TokenLogprob]) -> None:
    meta["output_token_logprobs"] = [[lp.logprob, lp.token_id, None] for lp in lps]
    if any(lp.top for lp in lps):
        meta["output_top_logprobs"] = [[[v, t, None] for t, v in lp.top] for lp in lps]


def output(
    rid: str, chunk: GenerateChunk, ids: list[int], lps: list[TokenLogprob], n: int
) -> dict[str, Any]:
    """One SGLang output object for sequence ``chunk.index``."""
    meta: dict[str, Any] = {
        "id": rid if n == 1 else f"{rid}-{chunk.index}",
        "finish_reason": finish_reason(chunk),
        "prompt_tokens": chunk.prompt_tokens,
        "completion_tokens": chunk.completion_tokens or len(ids),
        "cached_tokens": chunk.cached_tokens,
    }
    if lps:
        _logprobs(meta, lps)
    out: dict[str, Any] = {"text": "", "output_ids": ids, "meta_info": meta}
    if n > 1:
        out["index"] = chunk.index
    return out


class GenerateRenderer:
    """Renders ``/generate`` answers: JSON when whole, SSE when streamed."""

    def __init__(self, n: int = 1) -> None:
        self.n = n

    async def render(
        self, ctx: RequestContext, chunks: AsyncIterator[GenerateChunk], stream: bool
    ) -> GatewayResponse:
        """The response; a stream's events are produced as the chunks come."""
        rid = ctx.get(ENGINE_REQUEST_ID, "")
        if stream:
            resp = GatewayResponse(status=200, content_type=_SSE, headers=[])
            resp.stream = self._events(rid, chunks)
            return resp
        outs: list[dict[str, Any]] = []
        async for c in chunks:
            if c.finished:
                outs.append(output(rid, c, c.token_ids, c.logprobs, self.n))
        outs.sort(key=lambda o: o.get("index", 0))
        doc: Any = outs[0] if self.n == 1 else outs
        return GatewayResponse(status=200, content_type=_JSON, headers=[], body=orjson.dumps(doc))

    async def _events(self, rid: str, chunks: AsyncIterator[GenerateChunk]) -> AsyncIterator[bytes]:
        async for c in chunks:
            out = output(rid, c, c.token_ids, c.logprobs, self.n)
            yield b"data: " + orjson.dumps(out) + b"\n\n"
        yield b"data: [DONE]\n\n"
