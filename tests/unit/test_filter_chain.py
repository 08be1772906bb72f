"""Filter chain phases: order, reverse order, early answer, stream hooks, on_complete always."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from smg.errors import Unauthorized
from smg.filters.base import Filter, RequestContext, StateKey, implements
from smg.filters.chain import FilterChain
from smg.protocol.request import GatewayRequest, GatewayResponse

LOG = StateKey[list[str]]("log")


def make_ctx() -> RequestContext:
    req = GatewayRequest("POST", "/v1/chat/completions", "chat", {}, b"{}", {}, "m", False)
    ctx = RequestContext(req, None, None)  # type: ignore[arg-type]
    ctx.put(LOG, [])
    return ctx


class Rec(Filter):
    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        ctx.get(LOG, []).append(f"req:{self.name}")
        return None

    async def on_response(self, ctx: RequestContext, resp: GatewayResponse) -> GatewayResponse:
        ctx.get(LOG, []).append(f"resp:{self.name}")
        return resp

    def on_chunk(self, ctx: RequestContext, chunk: bytes) -> bytes:
        return chunk + self.name.encode()

    async def on_stream_end(self, ctx: RequestContext) -> bytes | None:
        return f"[end:{self.name}]".encode()

    def on_complete(self, ctx: RequestContext) -> None:
        ctx.get(LOG, []).append(f"done:{self.name}")


class Terminal(Filter):
    terminal = True

    def __init__(self, name: str, config: Any, stream: bool = False) -> None:
        super().__init__(name, config)
        self.stream = stream

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        ctx.get(LOG, []).append("router")
        if not self.stream:
            return GatewayResponse(200, "application/json", [], body=b"{}")

        async def gen() -> AsyncIterator[bytes]:
            yield b"1"
            yield b"2"

        return GatewayResponse(200, "text/event-stream", [], stream=gen())


class Deny(Filter):
    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        raise Unauthorized("no")


def test_request_in_order_response_in_reverse() -> None:
    chain = FilterChain([Rec("a", {}), Rec("b", {}), Terminal("router", {})])
    ctx = make_ctx()
    asyncio.run(chain.run(ctx))
    chain.finish(ctx)
    assert ctx.get(LOG, []) == ["req:a", "req:b", "router", "resp:b", "resp:a", "done:b", "done:a"]


def test_chunks_pass_filters_in_reverse_and_stream_end_appends() -> None:
    chain = FilterChain([Rec("a", {}), Rec("b", {}), Terminal("router", {}, stream=True)])
    ctx = make_ctx()

    async def collect() -> list[bytes]:
        resp = await chain.run(ctx)
        assert resp.stream is not None
        return [c async for c in resp.stream]

    out = asyncio.run(collect())
    assert out == [b"1ba", b"2ba", b"[end:b]", b"[end:a]"]


def test_rejecting_filter_stops_chain_and_on_complete_still_runs() -> None:
    chain = FilterChain([Rec("a", {}), Deny("deny", {}), Terminal("router", {})])
    ctx = make_ctx()
    with pytest.raises(Unauthorized):
        asyncio.run(chain.run(ctx))
    chain.finish(ctx)
    assert ctx.get(LOG, []) == ["req:a", "done:a"]


def test_phase_detection_only_counts_overrides() -> None:
    assert implements(Rec("a", {}), "on_chunk")
    assert not implements(Terminal("r", {}), "on_chunk")
    chain = FilterChain([Terminal("router", {})])
    assert not chain.has_chunk
    assert chain.complete == ()
