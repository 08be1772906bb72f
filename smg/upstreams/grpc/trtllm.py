"""Client of TensorRT-LLM's ``trtllm.TrtllmService``."""

from __future__ import annotations

from typing import Any

from smg_grpc_proto import trtllm_service_pb2, trtllm_service_pb2_grpc

from smg.errors import BadRequest
from smg.upstreams.grpc.client import Decode, EngineClient, Metadata
from smg.upstreams.grpc.sampling import SamplingParams, to_trtllm
from smg.upstreams.grpc.types import (
    Disaggregation,
    GenerateChunk,
    ModelInfo,
    ServerInfo,
    TokenLogprob,
)

pb: Any = trtllm_service_pb2


def _logprobs(items: Any) -> list[TokenLogprob]:
    return [
        TokenLogprob(x.token_id, x.logprob, tuple((t.token_id, t.logprob) for t in x.top_logprobs))
        for x in items
    ]


def _decoder(stream: bool) -> Decode:
    def decode(msg: Any) -> list[GenerateChunk]:
        if msg.WhichOneof("response") == "chunk":
            c = msg.chunk
            return [
                GenerateChunk(
                    index=c.sequence_index,
                    token_ids=list(c.token_ids),
                    logprobs=_logprobs(c.logprobs),
                    prompt_tokens=c.prompt_tokens,
                    completion_tokens=c.completion_tokens,
                    cached_tokens=c.cached_tokens,
                )
            ]
        d = msg.complete
        which = d.WhichOneof("matched_stop")
        return [
            GenerateChunk(
                index=d.sequence_index,
                token_ids=[] if stream else list(d.output_token_ids),
                logprobs=[] if stream else _logprobs(d.logprobs),
                finish_reason=d.finish_reason or "stop",
                matched_stop=None if which is None else getattr(d, which),
                prompt_tokens=d.prompt_tokens,
                completion_tokens=d.completion_tokens,
                cached_tokens=d.cached_tokens,
            )
        ]

    return decode


class TrtllmClient(EngineClient):
    """Typed calls to one TensorRT-LLM gRPC server."""

    flavour = "trtllm"
    pb = pb

    def __init__(self, channel: Any) -> None:
        super().__init__(channel)
        self.stub: Any = trtllm_service_pb2_grpc.TrtllmServiceStub(channel)

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
            tokenized=pb.TokenizedInput(original_text=prompt_text, input_token_ids=input_ids),
            streaming=stream,
        )
        to_trtllm(sampling, pb, req)
        if disagg is not None:
            raise BadRequest("TensorRT-LLM's gRPC protocol has no PD disaggregation.")
        return self.stub.Generate(req, timeout=timeout, metadata=metadata)

    def _decoder(self, stream: bool) -> Decode:
        return _decoder(stream)

    def _tokenized(self, input_ids: list[int]) -> Any:
        return pb.TokenizedInput(input_token_ids=input_ids)

    async def abort(self, request_id: str) -> None:
        """Abort(request_id)."""
        await self._unary(self.stub.Abort, pb.AbortRequest(request_id=request_id), 5.0)

    async def health_check(self, timeout: float | None = None) -> bool:
        """HealthCheck → ``status == "OK"``."""
        r = await self._unary(self.stub.HealthCheck, pb.HealthCheckRequest(), timeout)
        return str(r.status).upper() == "OK"

    async def get_model_info(self, timeout: float | None = None) -> ModelInfo:
        """GetModelInfo (TRT-LLM reports no eos ids or served name)."""
        r = await self._unary(self.stub.GetModelInfo, pb.GetModelInfoRequest(), timeout)
        return ModelInfo(
            model_path=r.model_id, max_context_length=r.max_seq_len, vocab_size=r.vocab_size
        )

    async def get_server_info(self, timeout: float | None = None) -> ServerInfo:
        """GetServerInfo."""
        r = await self._unary(self.stub.GetServerInfo, pb.GetServerInfoRequest(), timeout)
        return ServerInfo(
            server_type="trtllm-grpc",
            extra={"version": r.version, "backend": r.backend, "world_size": r.world_size},
        )
