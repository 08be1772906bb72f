"""The two-legged send of PD clusters: what HTTP and gRPC senders share.

``run_legs`` runs a prefill and a decode leg at once: the first leg to fail is blamed on
the pair (``PdPair.blame``) and its error raised after the other leg was cancelled (its
connection closed, its gRPC call aborted); a cancelled request (client gone) cancels
both. ``PdMetrics`` holds the ``smg_pd_*`` children of one cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from smg.errors import GatewayError
from smg.observability import metrics
from smg.protocol.request import GatewayResponse

if TYPE_CHECKING:
    from smg.clusters.pd import PdCluster, PdPair
    from smg.filters.base import RequestContext

P = TypeVar("P")
D = TypeVar("D")

GENERATION_KINDS = frozenset({"chat", "completions", "generate"})


class PdSender(Protocol):
    """Sends one attempt's two legs; returns the decode leg's answer (head, for a stream)."""

    async def send(self, ctx: RequestContext, pair: PdPair) -> GatewayResponse:
        """Both legs to ``pair``; a failure names its leg (``pair.blame``) and is raised."""
        ...


def sender_for(cluster: PdCluster) -> PdSender:
    """The sender of ``cluster``'s protocol and style."""
    pd_metrics = PdMetrics(cluster.name, cluster.style)
    protocol = cluster.config.protocol
    if protocol == "openai_http":
        from smg.upstreams.openai_http import OpenAIHttpUpstream
        from smg.upstreams.pd_http import PdHttpSender

        assert isinstance(cluster.upstream, OpenAIHttpUpstream)
        return PdHttpSender(cluster.style, cluster.upstream, pd_metrics)
    from smg.upstreams.grpc.adapter import GrpcUpstream
    from smg.upstreams.grpc.pd import PdGrpcSender

    assert isinstance(cluster.upstream, GrpcUpstream)
    return PdGrpcSender(cluster.style, cluster.upstream, pd_metrics)


class PdMetrics:
    """The ``smg_pd_*`` children of one cluster, looked up once."""

    __slots__ = ("_errors", "_prefill", "_ttft", "cluster")

    def __init__(self, cluster: str, style: str) -> None:
        self.cluster = cluster
        self._ttft = metrics.PD_TTFT.labels(cluster, style)
        self._prefill = metrics.PD_PREFILL_DURATION.labels(cluster, style)
        self._errors: dict[tuple[str, str], Any] = {}

    def prefill_done(self, seconds: float) -> None:
        """The prefill leg answered completely after ``seconds``."""
        self._prefill.observe(seconds)

    def leg_error(self, leg: str, kind: str) -> None:
        """An attempt failed on ``leg`` with an error of ``kind``."""
        child = self._errors.get((leg, kind))
        if child is None:
            child = self._errors[leg, kind] = metrics.PD_LEG_ERRORS.labels(self.cluster, leg, kind)
        child.inc()

    def timed(self, resp: GatewayResponse, sent_at: float) -> GatewayResponse:
        """Observe a streamed decode answer's first chunk (TTFT) and its failures."""
        if resp.stream is not None:
            resp.stream = self._watch(resp.stream, sent_at)
        return resp

    async def _watch(self, stream: AsyncIterator[bytes], sent_at: float) -> AsyncIterator[bytes]:
        first = True
        try:
            async for chunk in stream:
                if first:
                    first = False
                    self._ttft.observe(time.monotonic() - sent_at)
                yield chunk
        except GatewayError as err:
            self.leg_error("decode", err.kind)
            raise
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()


async def _settle(task: asyncio.Future[Any]) -> None:
    """Wait until a cancelled leg has stopped (its connection closed); ignore its outcome."""
    with contextlib.suppress(BaseException):
        await task


def abandon(result: Any) -> None:
    """Release a leg's answer nobody will read (closes its connection or aborts its call)."""
    if isinstance(result, GatewayResponse):
        result.close(None)
    elif isinstance(result, tuple):
        for part in result:
            abandon(part)
    else:
        cancel = getattr(result, "cancel", None)  # a gRPC GenerateStream: Abort
        if cancel is not None:
            cancel()


async def run_legs(
    pair: PdPair,
    pd_metrics: PdMetrics,
    prefill: Awaitable[P],
    decode: Awaitable[D],
) -> tuple[P, D]:
    """Both legs at once; the first failure cancels the other and is raised, blamed on its leg.

    A cancellation of the caller (the client went away) cancels both legs, decode first,
    and waits until they stopped, so neither keeps running on its engine.
    """
    p = asyncio.ensure_future(prefill)
    d = asyncio.ensure_future(decode)
    try:
        await asyncio.wait((p, d), return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        # The decode leg first, and stopped before the prefill is touched: the decode
        # engine then sees its client leave, not a failed KV transfer from the prefill.
        for task in (d, p):
            task.cancel()
            await _settle(task)
            if task.done() and not task.cancelled() and task.exception() is None:
                abandon(task.result())
        raise
    failed = next(
        (t for t in (p, d) if t.done() and not t.cancelled() and t.exception() is not None),
        None,
    )
    if failed is None:
        return p.result(), d.result()
    other = d if failed is p else p
    other.cancel()
    await _settle(other)
    if other.done() and not other.cancelled() and other.exception() is None:
        abandon(other.result())
    leg = "prefill" if failed is p else "decode"
    pair.blame(pair.prefill if failed is p else pair.decode)
    exc = failed.exception()
    assert exc is not None
    if isinstance(exc, GatewayError):
        pd_metrics.leg_error(leg, exc.kind)
    raise exc
