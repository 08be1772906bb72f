"""PD over gRPC (``sglang_grpc`` / ``vllm_grpc`` clusters with ``pd``): two Generate legs.

The prompt ids, sampling params and renderer come from the context exactly as for a
single engine (``adapter.py``); only the decode leg's chunks reach the renderer.

- **sglang**: both legs at once, each with ``DisaggregatedParams`` naming the prefill
  endpoint's host, its bootstrap port and one random room (31 bits: the field is an
  int32). The attempt's head is ready once the prefill call ended and the decode leg's
  first chunk is in.
- **vllm**: the prefill leg first (``max_tokens`` 1, not streamed,
  ``kv_transfer_params_json`` asking for remote decode); its last chunk's
  ``kv_transfer_params_json`` goes with the decode leg.

A leg's call that is abandoned (the other leg failed, the client went away, the answer
closed early) is cancelled, which sends Abort to its engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from smg.clusters.endpoint import EndpointState
from smg.errors import BadRequest, GatewayError, UpstreamTimeout
from smg.protocol.pd import REMOTE_DECODE, new_room
from smg.protocol.request import GatewayResponse
from smg.upstreams.grpc.adapter import GrpcUpstream, prompt_ids, sampling_of
from smg.upstreams.grpc.client import GenerateStream
from smg.upstreams.grpc.generate_api import GenerateRenderer
from smg.upstreams.grpc.sampling import SamplingParams
from smg.upstreams.grpc.state import ENGINE_EOS_IDS, PROMPT_IDS, RENDERER, ChunkRenderer
from smg.upstreams.grpc.types import Disaggregation, GenerateChunk
from smg.upstreams.pd_base import GENERATION_KINDS, PdMetrics, run_legs

if TYPE_CHECKING:
    from smg.clusters.pd import PdPair
    from smg.filters.base import RequestContext

_ROOM_BITS = 31  # DisaggregatedParams.bootstrap_room is an int32


async def _with_first(
    first: GenerateChunk, rest: AsyncIterator[GenerateChunk]
) -> AsyncIterator[GenerateChunk]:
    yield first
    async for chunk in rest:
        yield chunk


class PdGrpcSender:
    """The two Generate legs of one attempt, in the cluster's PD style."""

    def __init__(self, style: str, upstream: GrpcUpstream, pd_metrics: PdMetrics) -> None:
        self.style = style
        self.upstream = upstream
        self.metrics = pd_metrics

    async def send(self, ctx: RequestContext, pair: PdPair) -> GatewayResponse:
        """Both legs; the decode leg's chunks rendered for the client."""
        req = ctx.request
        if req.kind not in GENERATION_KINDS:
            raise BadRequest(f"A PD cluster serves generation requests, not {req.path}.")
        req.check_translated()
        ids = ctx.get(PROMPT_IDS, None)
        if ids is None:
            ids = prompt_ids(req.json)
        sp = sampling_of(ctx)
        if ctx.get(RENDERER, None) is not None:  # the decode engine's eos ids end the text
            info = await self.upstream.model_info(pair.decode)
            if info is not None and info.eos_token_ids:
                ctx.put(ENGINE_EOS_IDS, info.eos_token_ids)
        cfg = self.upstream.config
        per_try = cfg.retry_policy.per_try_timeout or cfg.timeouts.first_byte
        if ctx.deadline:
            per_try = min(per_try, ctx.deadline - time.monotonic())
        sent_at = time.monotonic()
        if self.style == "sglang":
            d = Disaggregation(
                bootstrap_host=pair.prefill.endpoint.host,
                bootstrap_port=pair.bootstrap_port or 0,
                bootstrap_room=new_room(_ROOM_BITS),
            )
            _, (first, gen) = await run_legs(
                pair,
                self.metrics,
                self._prefill(ctx, pair, ids, sp, d, per_try, sent_at),
                # The decode's first token waits for the prefill's KV, then for itself.
                self._first(ctx, pair.decode, ids, sp, d, 2 * per_try),
            )
        else:
            params = await self._vllm_prefill(ctx, pair, ids, sp, per_try, sent_at)
            try:
                first, gen = await self._first(
                    ctx, pair.decode, ids, sp, Disaggregation(kv_transfer_params=params), per_try
                )
            except GatewayError as err:
                pair.blame(pair.decode)
                self.metrics.leg_error("decode", err.kind)
                raise
        renderer: ChunkRenderer = ctx.get(RENDERER, None) or GenerateRenderer(sp.n)
        try:
            resp = await renderer.render(ctx, _with_first(first, gen), req.stream)
        except BaseException as exc:
            gen.cancel()
            if isinstance(exc, GatewayError):
                pair.blame(pair.decode)
                self.metrics.leg_error("decode", exc.kind)
            raise
        if resp.stream is None:
            gen.cancel()  # a whole body is complete: nothing left to abort
        else:
            resp.on_close(lambda _exc: gen.cancel())
        return self.metrics.timed(resp, sent_at)

    async def _first(
        self,
        ctx: RequestContext,
        ep: EndpointState,
        ids: list[int],
        sp: SamplingParams,
        disagg: Disaggregation,
        per_try: float,
    ) -> tuple[GenerateChunk, GenerateStream]:
        """Start the decode leg; its first chunk and the rest of its stream."""
        gen = self.upstream.start(ctx, ep, ids, sp, disagg=disagg)
        try:
            async with asyncio.timeout(per_try):
                first = await anext(gen)
        except TimeoutError:
            gen.cancel()
            raise UpstreamTimeout(
                f"No answer from the decode engine within {per_try:g}s."
            ) from None
        except BaseException:
            gen.cancel()
            raise
        return first, gen

    async def _drain(self, gen: GenerateStream, per_try: float) -> list[GenerateChunk]:
        """Every chunk of a prefill leg (it ends after its first token)."""
        chunks: list[GenerateChunk] = []
        try:
            async with asyncio.timeout(per_try):
                async for chunk in gen:
                    chunks.append(chunk)
        except TimeoutError:
            gen.cancel()
            raise UpstreamTimeout(
                f"The prefill engine did not finish within {per_try:g}s."
            ) from None
        except BaseException:
            gen.cancel()
            raise
        return chunks

    async def _prefill(
        self,
        ctx: RequestContext,
        pair: PdPair,
        ids: list[int],
        sp: SamplingParams,
        disagg: Disaggregation,
        per_try: float,
        sent_at: float,
    ) -> None:
        """SGLang's prefill leg, to its end."""
        await self._drain(self.upstream.start(ctx, pair.prefill, ids, sp, disagg=disagg), per_try)
        pair.end_prefill()
        self.metrics.prefill_done(time.monotonic() - sent_at)

    async def _vllm_prefill(
        self,
        ctx: RequestContext,
        pair: PdPair,
        ids: list[int],
        sp: SamplingParams,
        per_try: float,
        sent_at: float,
    ) -> str | None:
        """vLLM's prefill leg; the ``kv_transfer_params_json`` it returned."""
        one = dataclasses.replace(sp, max_tokens=1, min_tokens=0, n=1)
        ask = Disaggregation(kv_transfer_params=json.dumps(REMOTE_DECODE))
        try:
            gen = self.upstream.start(ctx, pair.prefill, ids, one, stream=False, disagg=ask)
            chunks = await self._drain(gen, per_try)
        except GatewayError as err:
            pair.blame(pair.prefill)
            self.metrics.leg_error("prefill", err.kind)
            raise
        pair.end_prefill()
        self.metrics.prefill_done(time.monotonic() - sent_at)
        return next((c.kv_transfer_params for c in reversed(chunks) if c.kv_transfer_params), None)
