"""The ``Upstream`` of gRPC clusters: ``vllm_grpc``, ``sglang_grpc``, ``trtllm_grpc``.

Input: token ids and sampling params from the context (``state.PROMPT_IDS``,
``state.SAMPLING``), else from an SGLang ``/generate`` body (``input_ids``,
``sampling_params``, ``stream``, ``rid``, ``return_logprob``, ``top_logprobs_num``).
Output: whatever ``state.RENDERER`` builds from the neutral chunks, else SGLang's
``/generate`` JSON / SSE (``generate_api.py``).

``send`` returns once the first chunk is in (for a non-streamed request: the whole
answer), so connect failures, refusals and engine errors surface before any byte
reached the client and the router may retry. The engine request id is
``<gateway request id>-<attempt>`` unless the body names one (``rid``); a stream
closed before its end (client gone, deadline, error) cancels the call and sends Abort.
Before rendering, the engine's eos ids (GetModelInfo, asked at warm-up or on first use)
go to the renderer as ``state.ENGINE_EOS_IDS``. Embeddings (``state.EMBED_INPUTS``) are
one Embed call per input, rendered by ``state.EMBED_RENDERER``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from smg.clusters.endpoint import EndpointState
from smg.errors import BadRequest, UpstreamTimeout
from smg.observability import metrics
from smg.observability.tracing import grpc_metadata
from smg.protocol.request import GatewayResponse
from smg.upstreams.grpc.channel import ChannelPool
from smg.upstreams.grpc.client import EngineClient, GenerateStream, spawn
from smg.upstreams.grpc.generate_api import GenerateRenderer
from smg.upstreams.grpc.sampling import SamplingParams, from_openai, from_sglang
from smg.upstreams.grpc.sglang import SglangClient
from smg.upstreams.grpc.state import (
    EMBED_INPUTS,
    EMBED_RENDERER,
    ENGINE_EOS_IDS,
    ENGINE_REQUEST_ID,
    PROMPT_IDS,
    PROMPT_TEXT,
    RENDERER,
    SAMPLING,
    ChunkRenderer,
)
from smg.upstreams.grpc.trtllm import TrtllmClient
from smg.upstreams.grpc.types import Disaggregation, GenerateChunk, ModelInfo
from smg.upstreams.grpc.vllm import VllmClient

if TYPE_CHECKING:
    from smg.config.model import ClusterConfig
    from smg.filters.base import RequestContext

log = logging.getLogger("smg.grpc")

# Requests still running when an endpoint leaves get this long before its channel closes.
_FORGET_GRACE_S = 30.0
# GetModelInfo outside warm-up: its timeout, and how long a failure is remembered.
_INFO_TIMEOUT_S = 2.0
_INFO_RETRY_S = 30.0


def prompt_ids(body: dict[str, Any]) -> list[int]:
    """The ``input_ids`` of a ``/generate`` body (one prompt)."""
    ids = body.get("input_ids")
    if ids is None:
        raise BadRequest(
            "This cluster speaks gRPC: send 'input_ids' (the prompt as token ids) until a "
            "tokenize filter runs before the router.",
            param="input_ids",
        )
    if not isinstance(ids, list) or not ids or not all(type(i) is int and i >= 0 for i in ids):
        raise BadRequest(
            "'input_ids' must be a non-empty list of token ids (batches are not supported "
            "in gRPC mode).",
            param="input_ids",
        )
    return ids


def sampling_of(ctx: RequestContext) -> SamplingParams:
    """The request's sampling params: from the context, else from its body."""
    sp = ctx.get(SAMPLING, None)
    if sp is not None:
        return sp
    body = ctx.request.json
    if ctx.request.kind == "generate":
        params = body.get("sampling_params") or {}
        if not isinstance(params, dict):
            raise BadRequest("'sampling_params' must be an object.", param="sampling_params")
        return from_sglang(params, body)
    return from_openai(body)


async def _prepend(
    first: GenerateChunk, rest: AsyncIterator[GenerateChunk]
) -> AsyncIterator[GenerateChunk]:
    yield first
    async for c in rest:
        yield c


class GrpcUpstream:
    """One gRPC cluster: a channel and a typed client per endpoint."""

    client_class: ClassVar[type[EngineClient]] = EngineClient

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self._channels = ChannelPool()
        self._clients: dict[str, EngineClient] = {}
        self._infos: dict[str, ModelInfo] = {}
        self._info_tried: dict[str, float] = {}
        self._tokens_after_cancel = metrics.TOKENS_AFTER_CANCEL.labels(config.name)

    def client(self, ep: EndpointState) -> EngineClient:
        """The endpoint's typed client (its channel is created on first use)."""
        c = self._clients.get(ep.url)
        if c is None:
            c = self.client_class(self._channels.get(ep.url))
            self._clients[ep.url] = c
        return c

    def _engine_request_id(self, ctx: RequestContext) -> str:
        rid = ctx.request.json.get("rid") if ctx.request.kind == "generate" else None
        if isinstance(rid, str) and rid and ctx.attempts <= 1:
            return rid
        base = ctx.request_id or uuid.uuid4().hex
        return f"{base}-{ctx.attempts}"

    def start(
        self,
        ctx: RequestContext,
        ep: EndpointState,
        ids: list[int],
        sp: SamplingParams,
        *,
        stream: bool | None = None,
        disagg: Disaggregation | None = None,
    ) -> GenerateStream:
        """Start Generate on ``ep`` for the request (the lower-level entry for filters).

        ``stream`` overrides the request's; ``disagg`` makes it a PD leg (``grpc/pd.py``).
        """
        if stream is None:
            stream = ctx.request.stream
        t = self.config.timeouts
        rid = self._engine_request_id(ctx)
        ctx.put(ENGINE_REQUEST_ID, rid)
        timeout = t.total
        if ctx.deadline:
            timeout = min(timeout, ctx.deadline - time.monotonic())
            if timeout <= 0:
                raise UpstreamTimeout("The request deadline passed before it could be sent.")
        gen = self.client(ep).generate(
            ids,
            sp,
            stream=stream,
            request_id=rid,
            timeout=timeout,
            idle_timeout=t.idle if stream else None,
            prompt_text=ctx.get(PROMPT_TEXT, ""),
            metadata=grpc_metadata(ctx),
            disagg=disagg,
        )
        gen.after_cancel = self._tokens_after_cancel.inc
        return gen

    async def model_info(self, ep: EndpointState) -> ModelInfo | None:
        """GetModelInfo of ``ep``: from warm-up, else asked once (again after a while)."""
        info = self._infos.get(ep.url)
        if info is not None:
            return info
        now = time.monotonic()
        if now - self._info_tried.get(ep.url, -_INFO_RETRY_S) < _INFO_RETRY_S:
            return None
        self._info_tried[ep.url] = now
        try:
            info = await self.client(ep).get_model_info(_INFO_TIMEOUT_S)
        except Exception as exc:  # an engine without it still serves Generate
            log.info("%s: GetModelInfo failed: %r", ep.url, exc)
            return None
        self._infos[ep.url] = info
        return info

    async def embed(self, ctx: RequestContext, ep: EndpointState) -> GatewayResponse:
        """One Embed call per input on ``ep`` (concurrently), rendered as one response."""
        inputs = ctx.get(EMBED_INPUTS, None)
        renderer = ctx.get(EMBED_RENDERER, None)
        if inputs is None or renderer is None:
            raise BadRequest(
                "Embeddings in gRPC mode need the model's tokenizer: set "
                "models.<name>.tokenizer and put the tokenize filter before the router.",
                param="model",
            )
        per_try = self.config.retry_policy.per_try_timeout or self.config.timeouts.first_byte
        if ctx.deadline:
            per_try = min(per_try, ctx.deadline - time.monotonic())
        client = self.client(ep)
        base = f"{ctx.request_id or uuid.uuid4().hex}-{ctx.attempts}"
        calls = [
            asyncio.ensure_future(client.embed(ids, f"{base}-{i}", per_try))
            for i, ids in enumerate(inputs)
        ]
        try:
            results = await asyncio.gather(*calls)
        except BaseException:
            for c in calls:
                c.cancel()
            raise
        return renderer.render(results)

    async def send(self, ctx: RequestContext, ep: EndpointState) -> GatewayResponse:
        """Generate on ``ep``; returns when the first chunk is in (Embed for embeddings)."""
        if ctx.request.kind == "embeddings":
            return await self.embed(ctx, ep)
        ctx.request.check_translated()
        ids = ctx.get(PROMPT_IDS, None)
        if ids is None:
            ids = prompt_ids(ctx.request.json)
        sp = sampling_of(ctx)
        if ctx.get(RENDERER, None) is not None:  # only renderers detokenize and stop
            info = await self.model_info(ep)
            if info is not None and info.eos_token_ids:
                ctx.put(ENGINE_EOS_IDS, info.eos_token_ids)
        per_try = self.config.retry_policy.per_try_timeout or self.config.timeouts.first_byte
        if ctx.deadline:
            per_try = min(per_try, ctx.deadline - time.monotonic())
        gen = self.start(ctx, ep, ids, sp)
        try:
            async with asyncio.timeout(per_try):
                first = await anext(gen)
            renderer: ChunkRenderer = ctx.get(RENDERER, None) or GenerateRenderer(sp.n)
            resp = await renderer.render(ctx, _prepend(first, gen), ctx.request.stream)
        except TimeoutError:
            gen.cancel()
            raise UpstreamTimeout(f"No answer from the engine within {per_try:g}s.") from None
        except BaseException:
            gen.cancel()
            raise
        if resp.stream is None:
            gen.cancel()  # a whole body is complete: nothing left to abort
        else:
            resp.on_close(lambda _exc: gen.cancel())
        return resp

    async def probe_models(self, ep: EndpointState, timeout: float) -> tuple[str, ...]:
        """GetModelInfo → the served model name."""
        info = await self.client(ep).get_model_info(timeout)
        self._infos[ep.url] = info
        return (info.name,) if info.name else ()

    async def probe_health(self, ep: EndpointState, path: str, timeout: float) -> bool:
        """The HealthCheck RPC (``path`` is an HTTP notion and is ignored)."""
        return await self.client(ep).health_check(timeout)

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """One channel per endpoint; ``idle`` 1 when it is connected (READY)."""
        return {
            url: {"size": 1, "idle": int(self._channels.state(url) == "READY"), "in_use": 0}
            for url in self._channels.urls()
        }

    def forget(self, url: str) -> None:
        """An endpoint left: close its channel once running calls had time to finish."""
        self._clients.pop(url, None)
        self._infos.pop(url, None)
        self._info_tried.pop(url, None)
        ch = self._channels.pop(url)
        if ch is not None:
            spawn(ch.close(grace=_FORGET_GRACE_S))

    async def close(self) -> None:
        """Close every channel."""
        self._clients.clear()
        await self._channels.close()


class VllmGrpcUpstream(GrpcUpstream):
    """``protocol: vllm_grpc``."""

    client_class = VllmClient


class SglangGrpcUpstream(GrpcUpstream):
    """``protocol: sglang_grpc``."""

    client_class = SglangClient


class TrtllmGrpcUpstream(GrpcUpstream):
    """``protocol: trtllm_grpc``."""

    client_class = TrtllmClient
