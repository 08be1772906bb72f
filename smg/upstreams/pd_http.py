"""PD over HTTP (``openai_http`` clusters with ``pd``): the SGLang and vLLM two-legged sends.

Each leg goes through the cluster's ``OpenAIHttpUpstream`` (its pools, timeouts and
header rules) with its own body.

- **sglang**: the bootstrap fields (``smg.protocol.pd``) go into one body sent to both
  endpoints at once. The attempt's head is ready when the decode head is in *and* the
  prefill answer was read to its end, so a prefill failure is still retryable and its
  input logprobs are known before the first decode chunk; the prefill endpoint's load
  ends with its answer.
- **vllm**: the prefill leg (one token, not streamed, ``kv_transfer_params`` asking for
  remote decode) is sent first; the decode leg follows with the params it returned.

Paths: ``/generate`` (sglang), ``/v1/chat/completions`` and ``/v1/completions``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from smg.errors import BadRequest, GatewayError, UpstreamError
from smg.protocol.pd import (
    bootstrap_fields,
    input_logprobs_by_index,
    merge_input_logprobs,
    sequence_count,
    vllm_decode_body,
    vllm_prefill_body,
    wants_input_logprobs,
)
from smg.protocol.request import GatewayResponse
from smg.protocol.sse import SseDecoder
from smg.upstreams.pd_base import GENERATION_KINDS, PdMetrics, run_legs

if TYPE_CHECKING:
    from smg.clusters.pd import PdPair
    from smg.filters.base import RequestContext
    from smg.upstreams.openai_http import OpenAIHttpUpstream


def leg_context(ctx: RequestContext, body: dict[str, Any]) -> RequestContext:
    """``ctx`` with its request carrying ``body`` (one leg's own JSON)."""
    req = dataclasses.replace(ctx.request, json=body, body=orjson.dumps(body), body_changed=False)
    return dataclasses.replace(ctx, request=req)


async def read_answer(resp: GatewayResponse, keep: bool) -> list[bytes]:
    """A leg's whole answer (the SSE events' data for a stream); releases its connection.

    ``keep`` False drains it without keeping anything.
    """
    out: list[bytes] = []
    try:
        if resp.stream is None:
            if keep and resp.body is not None:
                out.append(resp.body)
        else:
            decoder = SseDecoder() if keep else None
            async for chunk in resp.stream:
                if decoder is not None:
                    out.extend(e.data.encode() for e in decoder.feed(chunk) if e.data != "[DONE]")
    except BaseException as exc:
        resp.close(exc)
        raise
    resp.close(None)
    return out


def _parse(items: list[bytes]) -> list[Any]:
    docs: list[Any] = []
    for raw in items:
        try:
            docs.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            continue
    return docs


class PdHttpSender:
    """The two legs of one attempt over HTTP, in the cluster's PD style."""

    def __init__(self, style: str, upstream: OpenAIHttpUpstream, pd_metrics: PdMetrics) -> None:
        self.style = style
        self.upstream = upstream
        self.metrics = pd_metrics

    async def send(self, ctx: RequestContext, pair: PdPair) -> GatewayResponse:
        """Both legs; the decode leg's answer (its head, for a stream)."""
        req = ctx.request
        if req.kind not in GENERATION_KINDS or (self.style == "vllm" and req.kind == "generate"):
            paths = "/v1/chat/completions, /v1/completions"
            if self.style == "sglang":
                paths = "/generate, " + paths
            raise BadRequest(f"A PD cluster ({self.style} style) serves {paths}, not {req.path}.")
        if self.style == "sglang":
            return await self._sglang(ctx, pair)
        return await self._vllm(ctx, pair)

    # -- sglang: both legs at once, bootstrap fields ------------------------------

    async def _sglang(self, ctx: RequestContext, pair: PdPair) -> GatewayResponse:
        req = ctx.request
        body = dict(req.json)
        body.update(
            bootstrap_fields(
                pair.prefill.endpoint.host, pair.bootstrap_port, sequence_count(req.kind, body)
            )
        )
        leg = leg_context(ctx, body)
        logprobs = wants_input_logprobs(req.kind, body)
        sent_at = time.monotonic()
        # The decode head comes only after the prefill (the KV handoff): it gets the
        # prefill's wait and its own, so a stuck prefill is what times out and is blamed.
        cfg = self.upstream.config
        per_try = cfg.retry_policy.per_try_timeout or cfg.timeouts.first_byte
        prefill_lps, resp = await run_legs(
            pair,
            self.metrics,
            self._sglang_prefill(leg, pair, logprobs, sent_at),
            self.upstream.send(leg, pair.decode, first_byte=2 * per_try),
        )
        if prefill_lps:
            self._merge(resp, prefill_lps)
        return self.metrics.timed(resp, sent_at)

    async def _sglang_prefill(
        self, leg: RequestContext, pair: PdPair, logprobs: bool, sent_at: float
    ) -> dict[int, list[Any]]:
        """The prefill leg to its end; its input logprobs by output index when asked."""
        resp = await self.upstream.send(leg, pair.prefill)
        items = await read_answer(resp, logprobs)
        pair.end_prefill()
        self.metrics.prefill_done(time.monotonic() - sent_at)
        lps: dict[int, list[Any]] = {}
        for doc in _parse(items):
            for index, values in input_logprobs_by_index(doc).items():
                lps.setdefault(index, values)
        return lps

    def _merge(self, resp: GatewayResponse, lps: dict[int, list[Any]]) -> None:
        if resp.stream is not None:
            resp.stream = _merged_events(resp.stream, lps)
            return
        if resp.body is None:
            return
        try:
            doc = orjson.loads(resp.body)
        except orjson.JSONDecodeError:
            return
        if merge_input_logprobs(lps, doc):
            resp.body = orjson.dumps(doc)

    # -- vllm: prefill first, then decode with its kv_transfer_params ---------------

    async def _vllm(self, ctx: RequestContext, pair: PdPair) -> GatewayResponse:
        req = ctx.request
        prompt = req.json.get("prompt")
        if isinstance(prompt, list) and len(prompt) > 1 and not isinstance(prompt[0], int):
            raise BadRequest(
                "A vLLM-style PD cluster takes one prompt per request.", param="prompt"
            )
        sent_at = time.monotonic()
        try:
            answer = await self.upstream.send(
                leg_context(ctx, vllm_prefill_body(req.json)), pair.prefill
            )
            items = await read_answer(answer, True)
            params = _kv_transfer_params(items)
        except GatewayError as err:
            pair.blame(pair.prefill)
            self.metrics.leg_error("prefill", err.kind)
            raise
        pair.end_prefill()
        self.metrics.prefill_done(time.monotonic() - sent_at)
        try:
            resp = await self.upstream.send(
                leg_context(ctx, vllm_decode_body(req.json, params)), pair.decode
            )
        except GatewayError as err:
            pair.blame(pair.decode)
            self.metrics.leg_error("decode", err.kind)
            raise
        return self.metrics.timed(resp, sent_at)


def _kv_transfer_params(items: list[bytes]) -> dict[str, Any] | None:
    """The ``kv_transfer_params`` object of a vLLM prefill answer (None if it has none)."""
    docs = _parse(items)
    if not docs or not isinstance(docs[0], dict):
        raise UpstreamError("The prefill worker's answer is not a JSON object.")
    params = docs[0].get("kv_transfer_params")
    if params is not None and not isinstance(params, dict):
        raise UpstreamError("The prefill worker's kv_transfer_params are not an object.")
    return params


async def _merged_events(
    stream: AsyncIterator[bytes], lps: dict[int, list[Any]]
) -> AsyncIterator[bytes]:
    """Decode SSE events with the prefill's input logprobs put first in each."""
    decoder = SseDecoder()
    try:
        async for chunk in stream:
            out: list[bytes] = []
            for event in decoder.feed(chunk):
                data = event.data
                if data != "[DONE]":
                    try:
                        doc = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        doc = None
                    if doc is not None and merge_input_logprobs(lps, doc):
                        out.append(b"data: " + orjson.dumps(doc) + b"\n\n")
                        continue
                out.append(b"data: " + data.encode() + b"\n\n")
            if out:
                yield b"".join(out)
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
