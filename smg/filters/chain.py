"""Runs a listener's ordered filters through their phases."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence

from smg.filters.base import Filter, RequestContext, implements
from smg.observability import metrics
from smg.protocol.request import GatewayResponse

log = logging.getLogger("smg.filters")


class FilterChain:
    """An ordered list of filter instances with the per-phase lists computed once."""

    __slots__ = ("complete", "filters", "has_chunk", "names", "timers")

    def __init__(self, filters: Sequence[Filter], listener: str = "") -> None:
        self.filters = tuple(filters)
        self.names = tuple(f.name for f in filters)
        self.timers = tuple(metrics.FILTER_DURATION.labels(listener, f.name) for f in filters)
        """``smg_filter_duration_seconds`` of each filter, in chain order."""
        self.complete = tuple(f for f in reversed(self.filters) if implements(f, "on_complete"))
        self.has_chunk = any(implements(f, "on_chunk") for f in self.filters)

    async def run(self, ctx: RequestContext) -> GatewayResponse:
        """``on_request`` in order until one answers, then ``on_response`` in reverse."""
        ran = 0
        resp: GatewayResponse | None = None
        trace = ctx.trace
        timers = self.timers
        for f in self.filters:
            t0 = time.perf_counter()
            try:
                if trace is None:
                    resp = await f.on_request(ctx)
                else:
                    resp = await trace.run_filter(f, ctx)
            finally:
                timers[ran].observe(time.perf_counter() - t0)
            ran += 1
            if resp is not None:
                break
        if resp is None:  # pragma: no cover - config validation puts a router last
            raise RuntimeError("filter chain ended without a terminal filter")
        for i in range(ran - 1, -1, -1):
            f = self.filters[i]
            if implements(f, "on_response"):
                resp = await f.on_response(ctx, resp)
        if resp.stream is not None and self.has_chunk:
            resp.stream = self._wrap_stream(ctx, resp.stream, self.filters[:ran])
        return resp

    async def _wrap_stream(
        self, ctx: RequestContext, inner: AsyncIterator[bytes], ran: Sequence[Filter]
    ) -> AsyncIterator[bytes]:
        chunkers = [f for f in reversed(ran) if implements(f, "on_chunk")]
        enders = [f for f in reversed(ran) if implements(f, "on_stream_end")]
        try:
            async for chunk in inner:
                for f in chunkers:
                    chunk = f.on_chunk(ctx, chunk)
                if chunk:
                    yield chunk
        finally:
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                await aclose()
        for f in enders:
            tail = await f.on_stream_end(ctx)
            if tail:
                yield tail

    def finish(self, ctx: RequestContext) -> None:
        """Run every ``on_complete`` (reverse order); one failing does not stop the rest."""
        for f in self.complete:
            try:
                f.on_complete(ctx)
            except Exception:  # accounting must never break the response path
                log.exception("on_complete of %s failed", f.name)
