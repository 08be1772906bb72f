"""Client of SGLang's ``sglang.grpc.scheduler.SglangScheduler`` service."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from smg_grpc_proto import sglang_scheduler_pb2, sglang_scheduler_pb2_grpc

from smg.upstreams.grpc.client import Decode, Metadata, SchedulerClient
from smg.upstreams.grpc.sampling import SamplingParams, to_sglang
from smg.upstreams.grpc.types import Disaggregation, ServerInfo
from smg.upstreams.grpc.vllm import decoder

pb: Any = sglang_scheduler_pb2


class SglangClient(SchedulerClient):
    """Typed calls to one SGLang gRPC scheduler."""

    flavour = "sglang"
    pb = pb

    def __init__(self, channel: Any) -> None:
        super().__init__(channel)
        self.stub: Any = sglang_scheduler_pb2_grpc.SglangSchedulerStub(channel)

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
            sampling_params=to_sglang(sampling, pb),
            return_logprob=sampling.logprobs,
            top_logprobs_num=sampling.top_logprobs,
            # Logprobs of generated tokens only, not of the prompt.
            logprob_start_len=-1,
            stream=stream,
        )
        if disagg is not None:
            req.disaggregated_params.CopyFrom(
                pb.DisaggregatedParams(
                    bootstrap_host=disagg.bootstrap_host,
                    bootstrap_port=disagg.bootstrap_port,
                    bootstrap_room=disagg.bootstrap_room,
                )
            )
        return self.stub.Generate(req, timeout=timeout, metadata=metadata)

    def _decoder(self, stream: bool) -> Decode:
        # Same GenerateResponse shape as vLLM's (plus request_id and reasoning_tokens).
        return decoder(stream)

    async def abort(self, request_id: str) -> None:
        """Abort(request_id)."""
        req = pb.AbortRequest(request_id=request_id, reason="client disconnected")
        await self._unary(self.stub.Abort, req, 5.0)

    async def get_server_info(self, timeout: float | None = None) -> ServerInfo:
        """GetServerInfo; ``extra`` holds ``server_args`` and ``scheduler_info`` as dicts."""
        r = await self._unary(self.stub.GetServerInfo, pb.GetServerInfoRequest(), timeout)
        return ServerInfo(
            server_type=r.server_type or "grpc",
            active_requests=r.active_requests,
            uptime_seconds=r.uptime_seconds,
            extra={
                "server_args": json_format.MessageToDict(r.server_args),
                "scheduler_info": json_format.MessageToDict(r.scheduler_info),
                "sglang_version": r.sglang_version,
            },
        )
