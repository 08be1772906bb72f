"""Client of vLLM's ``vllm.grpc.engine.VllmEngine`` service."""

from __future__ import annotations

from typing import Any

from smg_grpc_proto import vllm_engine_pb2, vllm_engine_pb2_grpc

from smg.upstreams.grpc.client import Decode, Metadata, SchedulerClient
from smg.upstreams.grpc.sampling import SamplingParams, to_vllm
from smg.upstreams.grpc.types import (
    Disaggregation,
    GenerateChunk,
    ServerInfo,
    TokenLogprob,
)

pb: Any = vllm_engine_pb2


def output_logprobs(lp: Any) -> list[TokenLogprob]:
    """``OutputLogProbs`` (vLLM and SGLang share the shape) → neutral logprobs."""
    out: list[TokenLogprob] = []
    tops = list(lp.top_logprobs)
    for i, (tid, val) in enumerate(zip(lp.token_ids, lp.token_logprobs, strict=False)):
        top: tuple[tuple[int, float], ...] = ()
        if i < len(tops):
            top = tuple(zip(tops[i].token_ids, tops[i].values, strict=False))
        out.append(TokenLogprob(int(tid), float(val), top))
    return out


def matched_stop(msg: Any) -> int | str | None:
    """The ``matched_stop`` oneof of a GenerateComplete."""
    which = msg.WhichOneof("matched_stop")
    return None if which is None else getattr(msg, which)


def decoder(stream: bool) -> Decode:
    """Turns vLLM / SGLang GenerateResponse messages into neutral chunks.

    In streaming mode the tokens come in ``chunk`` messages and ``complete`` only ends
    the sequence; in non-streaming mode ``complete`` carries all ``output_ids``.
    """

    def decode(msg: Any) -> list[GenerateChunk]:
        if msg.WhichOneof("response") == "chunk":
            c = msg.chunk
            return [
                GenerateChunk(
                    index=c.index,
                    token_ids=list(c.token_ids),
                    logprobs=output_logprobs(c.output_logprobs),
                    prompt_tokens=c.prompt_tokens,
                    completion_tokens=c.completion_tokens,
                    cached_tokens=c.cached_tokens,
                    reasoning_tokens=getattr(c, "reasoning_tokens", 0),
                )
            ]
        d = msg.complete
        return [
            GenerateChunk(
                index=d.index,
                token_ids=[] if stream else list(d.output_ids),
                logprobs=[] if stream else output_logprobs(d.output_logprobs),
                finish_reason=d.finish_reason or "stop",
                matched_stop=matched_stop(d),
                prompt_tokens=d.prompt_tokens,
                completion_tokens=d.completion_tokens,
                cached_tokens=d.cached_tokens,
                reasoning_tokens=getattr(d, "reasoning_tokens", 0),
                kv_transfer_params=kv_transfer_params(d),
            )
        ]

    return decode


def kv_transfer_params(complete: Any) -> str | None:
    """vLLM's ``kv_transfer_params_json`` of a GenerateComplete (a PD prefill's handoff)."""
    if "kv_transfer_params_json" not in complete.DESCRIPTOR.fields_by_name:
        return None  # SGLang's GenerateComplete has no such field
    return (
        complete.kv_transfer_params_json if complete.HasField("kv_transfer_params_json") else None
    )


class VllmClient(SchedulerClient):
    """Typed calls to one vLLM gRPC engine."""

    flavour = "vllm"
    pb = pb

    def __init__(self, channel: Any) -> None:
        super().__init__(channel)
        self.stub: Any = vllm_engine_pb2_grpc.VllmEngineStub(channel)

    def _start_generate(
        self,
        input_ids: list[int],
        sampling: SamplingParams,
        stream: bool,
        request_id: str,
        timeout: float | None,
        prompt_text: str,
        metadata: Metadata | None = None,
        *,
        disagg: Disaggregation | None = None,
    ) -> Any:
        req = pb.GenerateRequest(
            request_id=request_id,
            tokenized=pb.TokenizedInput(original_text=prompt_text, input_ids=input_ids),
            sampling_params=to_vllm(sampling, pb),
            stream=stream,
        )
        if disagg is not None and disagg.kv_transfer_params is not None:
            req.kv_transfer_params_json = disagg.kv_transfer_params
        return self.stub.Generate(req, timeout=timeout, metadata=metadata)

    def _decoder(self, stream: bool) -> Decode:
        return decoder(stream)

    async def abort(self, request_id: str) -> None:
        """Abort(request_ids=[id])."""
        await self._unary(self.stub.Abort, pb.AbortRequest(request_ids=[request_id]), 5.0)

    async def get_server_info(self, timeout: float | None = None) -> ServerInfo:
        """GetServerInfo."""
        r = await self._unary(self.stub.GetServerInfo, pb.GetServerInfoRequest(), timeout)
        return ServerInfo(
            server_type=r.server_type or "vllm-grpc",
            active_requests=r.active_requests,
            uptime_seconds=r.uptime_seconds,
            extra={"is_paused": r.is_paused, "max_num_seqs": r.max_num_seqs},
        )
