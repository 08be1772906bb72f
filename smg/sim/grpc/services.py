"""The vLLM and SGLang gRPC services of the simulator, over one ``SimCore``.

Both answer Embed (a deterministic unit vector of ``--embedding-dim`` for the ids),
Generate (streamed: one chunk per token per sequence, then a complete per
sequence; whole: one complete per sequence), Abort (recorded, and a running request
ends with finish ``abort``), HealthCheck (unhealthy during ``--slow-start``),
GetModelInfo, GetServerInfo, GetLoads. The sim's counters (requests, aborts with the
aborted ids, cancelled calls, the trace context of the last Generate) are in SGLang's
``GetServerInfo.scheduler_info``.
Injected failures use ``--fail-status`` mapped to a gRPC code; ``--drop-after-chunks N``
ends a stream with UNAVAILABLE after N messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import struct_pb2
from smg_grpc_proto import (
    sglang_scheduler_pb2,
    sglang_scheduler_pb2_grpc,
    vllm_engine_pb2,
    vllm_engine_pb2_grpc,
)

from smg.sim.grpc.core import FIRST_ID, VOCAB_SIZE, GenOptions, SimCore, SimFault, SimRequest
from smg.sim.tokens import embedding, ids_to_prompt

vpb: Any = vllm_engine_pb2
spb: Any = sglang_scheduler_pb2

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}

# Builds (pb module, GenerateResponse fields) for one step or finish.
Msg = Callable[..., Any]


def status_code(status: int) -> grpc.StatusCode:
    """The gRPC code an engine would use for an HTTP-like status."""
    return _CODES.get(status, grpc.StatusCode.INTERNAL)


def fake_logprob(token: int) -> float:
    """A deterministic log probability for a token."""
    return -0.05 * (1 + token % 20)


def _logprobs(pb: Any, ids: list[int], top: int | None) -> Any:
    out = pb.OutputLogProbs(token_ids=ids, token_logprobs=[fake_logprob(t) for t in ids])
    if top:
        for t in ids:
            alts = [t] + [FIRST_ID + (t + k) % 256 for k in range(1, top)]
            out.top_logprobs.add(token_ids=alts, values=[fake_logprob(a) for a in alts])
    return out


class _Generator:
    """Runs one admitted request and yields GenerateResponse messages of ``pb``."""

    def __init__(self, core: SimCore, pb: Any, req: SimRequest, stream: bool, rid_field: bool):
        self.core = core
        self.pb = pb
        self.req = req
        self.stream = stream
        self.extra = {"request_id": req.opts.request_id} if rid_field else {}
        self.sent = 0

    def _counts(self, produced: int) -> dict[str, int]:
        r = self.req
        return {
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": produced,
            "cached_tokens": r.cached_tokens,
        }

    def _complete(self, index: int, ids: list[int], finish: str, matched: int | None) -> Any:
        pb = self.pb
        c = pb.GenerateComplete(
            output_ids=ids, finish_reason=finish, index=index, **self._counts(len(ids))
        )
        if matched is not None:
            c.matched_token_id = matched
        if self.req.opts.top_logprobs is not None and not self.stream:
            c.output_logprobs.CopyFrom(_logprobs(pb, ids, self.req.opts.top_logprobs))
        leg = self.req.job.pd
        if leg is not None and leg.kv_transfer_params is not None and pb is vpb:
            c.kv_transfer_params_json = json.dumps(leg.kv_transfer_params)
        return pb.GenerateResponse(complete=c, **self.extra)

    def _check_drop(self) -> None:
        self.sent += 1
        drop = self.core.cfg.drop_after_chunks
        if drop is not None and self.sent >= drop:
            raise SimFault(503, "simulated connection drop")

    async def run(self) -> AsyncIterator[Any]:
        """The response messages; honours Abort between tokens."""
        req, core, pb = self.req, self.core, self.pb
        engine = core.engine
        seqs = req.seqs
        longest = max((len(s.ids) for s in seqs), default=0)
        if not self.stream:
            delay = engine.itl() * max(longest - 1, 0)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(req.aborted.wait(), delay)
            for s in seqs:
                if req.aborted.is_set():
                    yield self._complete(s.index, [], "abort", None)
                else:
                    yield self._complete(s.index, s.ids, s.finish, s.matched)
                self._check_drop()
            req.job.produced = 0 if req.aborted.is_set() else longest
            req.job.outcome = "aborted" if req.aborted.is_set() else "completed"
            return
        for pos in range(longest):
            if pos:
                itl = engine.itl()
                if itl > 0:
                    await asyncio.sleep(itl)
            if req.aborted.is_set():
                for s in seqs:
                    if pos < len(s.ids):
                        yield self._complete(s.index, s.ids[:pos], "abort", None)
                req.job.outcome = "aborted"
                return
            for s in seqs:
                if pos >= len(s.ids):
                    continue
                ids = s.ids[pos : pos + 1]
                chunk = pb.GenerateStreamChunk(
                    token_ids=ids, index=s.index, **self._counts(pos + 1)
                )
                if req.opts.top_logprobs is not None:
                    chunk.output_logprobs.CopyFrom(_logprobs(pb, ids, req.opts.top_logprobs))
                yield pb.GenerateResponse(chunk=chunk, **self.extra)
                self._check_drop()
                if pos == len(s.ids) - 1:
                    yield self._complete(s.index, s.ids, s.finish, s.matched)
            req.job.produced = pos + 1
        req.job.outcome = "completed"


async def _generate(
    core: SimCore, pb: Any, opts: GenOptions, ids: list[int], stream: bool, context: Any, sg: bool
) -> AsyncIterator[Any]:
    core.note_trace_context(context.invocation_metadata())
    if not ids:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "input_ids must not be empty")
    req: SimRequest | None = None
    try:
        req = await core.admit(ids, opts)
        async for msg in _Generator(core, pb, req, stream, sg).run():
            yield msg
    except SimFault as f:
        if req is not None:
            req.job.outcome = "dropped"
        await context.abort(status_code(f.status), f.message)
    except asyncio.CancelledError:
        core.cancelled_rpcs += 1
        raise
    finally:
        if req is not None:
            core.release(req)


async def _embed(core: SimCore, request: Any, context: Any) -> tuple[list[float], int]:
    """A deterministic unit vector for ``tokenized.input_ids`` (``--embedding-dim``)."""
    ids = list(request.tokenized.input_ids)
    if not ids:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "input_ids must not be empty")
    if len(ids) > core.cfg.max_model_len:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input ({len(ids)} tokens) exceeds {core.cfg.max_model_len}",
        )
    core.embeds += 1
    return embedding(core.cfg.seed, ids_to_prompt(ids), core.cfg.embedding_dim), len(ids)


def _sglang_pd(request: Any) -> dict[str, Any]:
    """SGLang's DisaggregatedParams as the HTTP fields the PD checks read (sim/pd.py)."""
    if not request.HasField("disaggregated_params"):
        return {}
    dp = request.disaggregated_params
    return {
        "bootstrap_host": dp.bootstrap_host,
        "bootstrap_port": dp.bootstrap_port or None,
        "bootstrap_room": dp.bootstrap_room,
    }


async def _vllm_pd(request: Any, context: Any) -> dict[str, Any]:
    """vLLM's kv_transfer_params_json as the HTTP fields the PD checks read (sim/pd.py)."""
    fields: dict[str, Any] = {"stream": request.stream}
    if request.HasField("kv_transfer_params_json"):
        try:
            fields["kv_transfer_params"] = json.loads(request.kv_transfer_params_json)
        except ValueError:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "kv_transfer_params_json is not JSON"
            )
    return fields


def _server_stats(core: SimCore) -> Any:
    s = struct_pb2.Struct()
    s.update(core.stats())
    return s


class VllmSim(vllm_engine_pb2_grpc.VllmEngineServicer):  # type: ignore[misc]
    """``vllm.grpc.engine.VllmEngine`` on the sim core."""

    def __init__(self, core: SimCore) -> None:
        self.core = core

    async def Generate(self, request: Any, context: Any) -> AsyncIterator[Any]:
        """Generate from ``tokenized.input_ids``."""
        sp = request.sampling_params
        if request.WhichOneof("input") != "tokenized":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the sim needs token ids")
        opts = GenOptions(
            request_id=request.request_id,
            max_tokens=sp.max_tokens if sp.HasField("max_tokens") else None,
            stop_ids=frozenset(sp.stop_token_ids),
            n=sp.n or 1,
            ignore_eos=sp.ignore_eos,
            top_logprobs=sp.logprobs if sp.HasField("logprobs") else None,
            pd=await _vllm_pd(request, context) if self.core.engine.pd is not None else None,
        )
        ids = list(request.tokenized.input_ids)
        async for msg in _generate(self.core, vpb, opts, ids, request.stream, context, False):
            yield msg

    async def Embed(self, request: Any, context: Any) -> Any:
        """A deterministic embedding of the token ids."""
        vec, n = await _embed(self.core, request, context)
        return vpb.EmbedResponse(embedding=vec, prompt_tokens=n, embedding_dim=len(vec))

    async def Abort(self, request: Any, context: Any) -> Any:
        """Record and stop the named requests."""
        for rid in request.request_ids:
            self.core.abort(rid)
        return vpb.AbortResponse()

    async def HealthCheck(self, request: Any, context: Any) -> Any:
        """Unhealthy while starting."""
        starting = self.core.engine.starting()
        return vpb.HealthCheckResponse(healthy=not starting, message="starting" if starting else "")

    async def GetModelInfo(self, request: Any, context: Any) -> Any:
        """The simulated model."""
        cfg = self.core.cfg
        return vpb.GetModelInfoResponse(
            model_path=cfg.model,
            served_model_name=cfg.model,
            tokenizer_path=cfg.model,
            is_generation=True,
            max_context_length=cfg.max_model_len,
            vocab_size=VOCAB_SIZE,
            eos_token_ids=list(self.core.eos_ids),
            bos_token_id=1,
            pad_token_id=0,
            max_req_input_len=cfg.max_model_len,
        )

    async def GetServerInfo(self, request: Any, context: Any) -> Any:
        """Live request count and uptime."""
        e = self.core.engine
        return vpb.GetServerInfoResponse(
            active_requests=e.running + e.waiting,
            uptime_seconds=time.time() - e.started_wall,
            server_type="vllm-grpc",
            max_num_seqs=self.core.cfg.max_running,
            block_size=self.core.cfg.block_size,
        )

    async def GetLoads(self, request: Any, context: Any) -> Any:
        """One scheduler's load."""
        return vpb.GetLoadsResponse(dp_rank_count=1, loads=[_load(vpb, self.core)])


def _load(pb: Any, core: SimCore) -> Any:
    e = core.engine
    q = e.cache_query_tokens
    return pb.SchedulerLoad(
        num_running_reqs=e.running,
        num_waiting_reqs=e.waiting,
        num_total_reqs=e.running + e.waiting,
        token_usage=e.kv_usage(),
        cache_hit_rate=e.cache_hit_tokens / q if q else 0.0,
        max_running_requests=core.cfg.max_running,
    )


class SglangSim(sglang_scheduler_pb2_grpc.SglangSchedulerServicer):  # type: ignore[misc]
    """``sglang.grpc.scheduler.SglangScheduler`` on the sim core."""

    def __init__(self, core: SimCore) -> None:
        self.core = core

    async def Generate(self, request: Any, context: Any) -> AsyncIterator[Any]:
        """Generate from ``tokenized.input_ids``."""
        sp = request.sampling_params
        opts = GenOptions(
            request_id=request.request_id,
            max_tokens=sp.max_new_tokens if sp.HasField("max_new_tokens") else None,
            stop_ids=frozenset(sp.stop_token_ids),
            n=sp.n or 1,
            ignore_eos=sp.ignore_eos,
            top_logprobs=request.top_logprobs_num if request.return_logprob else None,
            pd=_sglang_pd(request) if self.core.engine.pd is not None else None,
        )
        ids = list(request.tokenized.input_ids)
        async for msg in _generate(self.core, spb, opts, ids, request.stream, context, True):
            yield msg

    async def Embed(self, request: Any, context: Any) -> Any:
        """A deterministic embedding of the token ids."""
        vec, n = await _embed(self.core, request, context)
        return spb.EmbedResponse(embedding=vec, prompt_tokens=n, embedding_dim=len(vec))

    async def Abort(self, request: Any, context: Any) -> Any:
        """Record and stop the request."""
        self.core.abort(request.request_id)
        return spb.AbortResponse(success=True)

    async def HealthCheck(self, request: Any, context: Any) -> Any:
        """Unhealthy while starting."""
        starting = self.core.engine.starting()
        return spb.HealthCheckResponse(healthy=not starting, message="starting" if starting else "")

    async def GetModelInfo(self, request: Any, context: Any) -> Any:
        """The simulated model."""
        cfg = self.core.cfg
        return spb.GetModelInfoResponse(
            model_path=cfg.model,
            tokenizer_path=cfg.model,
            served_model_name=cfg.model,
            is_generation=True,
            max_context_length=cfg.max_model_len,
            vocab_size=VOCAB_SIZE,
            eos_token_ids=list(self.core.eos_ids),
            bos_token_id=1,
            max_req_input_len=cfg.max_model_len,
            weight_version="default",
        )

    async def GetServerInfo(self, request: Any, context: Any) -> Any:
        """Server facts; ``scheduler_info`` carries the sim's counters."""
        e = self.core.engine
        return spb.GetServerInfoResponse(
            scheduler_info=_server_stats(self.core),
            active_requests=e.running + e.waiting,
            uptime_seconds=time.time() - e.started_wall,
            sglang_version="0.0.0-sim",
            server_type="grpc",
            max_total_num_tokens=self.core.cfg.cache_blocks * self.core.cfg.block_size,
        )

    async def GetLoads(self, request: Any, context: Any) -> Any:
        """One scheduler's load."""
        return spb.GetLoadsResponse(dp_rank_count=1, loads=[_load(spb, self.core)])
