"""The router's real attempt path with cache_aware: load back to zero, retries, usage checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from cluster_helpers import make_cluster

from smg.clusters.cluster import Cluster
from smg.clusters.endpoint import EndpointState
from smg.clusters.lb.base import PickContext
from smg.clusters.lb.cache_aware import CacheAware
from smg.errors import UpstreamStatus
from smg.filters.base import RequestContext
from smg.filters.router import RouterFilter
from smg.protocol.request import GatewayRequest, GatewayResponse

PROMPT = "<|system|>\n" + "a long shared instruction block " * 30 + "\n<|user|>\nhi\n"
USAGE = b'{"usage":{"prompt_tokens":300,"prompt_tokens_details":{"cached_tokens":%d}}}'


class FakeUpstream:
    """Answers like a worker that reports ``cached`` tokens; may fail some endpoints."""

    def __init__(self, stream: bool = False, fail: frozenset[str] = frozenset()) -> None:
        self.stream = stream
        self.fail = fail
        self.cached = 64
        self.seen: list[str] = []

    async def send(self, ctx: RequestContext, ep: EndpointState) -> GatewayResponse:
        self.seen.append(ep.url)
        await asyncio.sleep(0)
        if ep.url in self.fail:
            raise UpstreamStatus(503, b"busy", "text/plain")
        if not self.stream:
            return GatewayResponse(200, "application/json", [], body=USAGE % self.cached)
        return GatewayResponse(200, "text/event-stream", [], stream=self._events())

    async def _events(self) -> AsyncIterator[bytes]:
        yield b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'
        yield b"data: " + USAGE % self.cached + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def close(self) -> None:
        return None


def setup(**upstream: Any) -> tuple[Cluster, FakeUpstream, CacheAware]:
    cluster = make_cluster(
        3,
        lb_policy={"type": "cache_aware"},
        retry_policy={"max_retries": 2, "backoff": {"base": "1ms", "max": "1ms"}},
    )
    fake = FakeUpstream(**upstream)
    cluster.upstream = fake  # type: ignore[assignment]
    assert isinstance(cluster.lb, CacheAware)
    return cluster, fake, cluster.lb


def request_ctx(stream: bool = False, usage: bool = True) -> tuple[RequestContext, PickContext]:
    body: dict[str, Any] = {"model": "m", "prompt": PROMPT, "stream": stream}
    if stream and usage:
        body["stream_options"] = {"include_usage": True}
    req = GatewayRequest("POST", "/v1/completions", "completions", {}, b"", body, "m", stream)
    listener = SimpleNamespace(config=SimpleNamespace(route_header=False))
    ctx = RequestContext(req, None, listener)  # type: ignore[arg-type]
    return ctx, PickContext({}, body, "m", kind="completions")


def in_flight(cluster: Cluster) -> list[int]:
    return [ep.in_flight for ep in cluster.endpoints]


def test_whole_answers_release_load_and_feed_the_validator() -> None:
    cluster, fake, lb = setup()

    async def run() -> None:
        for _ in range(3):
            ctx, pick = request_ctx()
            resp = await RouterFilter("router", {})._send(ctx, cluster, pick)
            assert resp.body is not None
            assert in_flight(cluster) == [0, 0, 0]

    asyncio.run(run())
    assert len(set(fake.seen)) == 1  # the same prompt stays on one endpoint
    predicted, reported = lb.validator.totals(fake.seen[0])
    assert reported > 0 and predicted > 0  # the 2nd and 3rd requests predicted a hit


def test_a_failed_endpoint_is_excluded_and_every_attempt_released() -> None:
    cluster, fake, lb = setup()
    home = cluster.endpoints[0].url
    lb.tree.insert(PROMPT, home)
    fake.fail = frozenset({home})

    async def run() -> None:
        ctx, pick = request_ctx()
        await RouterFilter("router", {})._send(ctx, cluster, pick)
        assert ctx.attempts == 2

    asyncio.run(run())
    assert fake.seen[0] == home and fake.seen[1] != home
    assert in_flight(cluster) == [0, 0, 0]
    assert lb.reason().endswith("retry 1")


def test_streams_hold_load_until_closed_and_report_usage_at_the_end() -> None:
    cluster, _, lb = setup(stream=True)

    async def one(disconnect: bool, usage: bool = True) -> str:
        ctx, pick = request_ctx(stream=True, usage=usage)
        resp = await RouterFilter("router", {})._send(ctx, cluster, pick)
        assert resp.stream is not None
        assert sum(in_flight(cluster)) == 1
        async for _chunk in resp.stream:
            if disconnect:
                break
        await resp.stream.aclose()  # type: ignore[attr-defined]
        resp.close(asyncio.CancelledError() if disconnect else None)
        assert in_flight(cluster) == [0, 0, 0]
        return ctx.endpoint_url or ""

    async def run() -> None:
        url = await one(False)
        await one(False)
        # Both final usage events were read (decayed sum: 64 * 0.98 + 64), and the
        # second stream was predicted a hit.
        predicted, reported = lb.validator.totals(url)
        assert reported == 64 * 1.98 and predicted > 0
        await one(True)  # a client that goes away reports nothing, but load is released
        assert lb.validator.totals(url)[1] == 64 * 1.98
        # A stream that did not ask for usage is not checked (nor counted as unreported).
        await one(False, usage=False)
        assert lb.validator.totals(url)[1] == 64 * 1.98
        assert lb.validator._eps[url].unreported == 0

    asyncio.run(run())
