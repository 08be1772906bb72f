"""The flavour-independent part of an engine client: the Generate stream and Abort."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ClassVar

import grpc
from smg_grpc_proto.generated import common_pb2

from smg.errors import UpstreamError, UpstreamReset, UpstreamTimeout
from smg.upstreams.grpc.errors import map_rpc_error
from smg.upstreams.grpc.sampling import SamplingParams
from smg.upstreams.grpc.types import (
    Disaggregation,
    EmbedResult,
    GenerateChunk,
    LoadReport,
    ModelInfo,
    ServerInfo,
)

log = logging.getLogger("smg.grpc")

# Abort calls outlive the request that was cancelled: keep them referenced.
_BACKGROUND: set[asyncio.Task[Any]] = set()
ABORT_TIMEOUT = 5.0


def spawn(coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` detached (used for Abort after a cancel, which must not block it)."""
    task = asyncio.get_running_loop().create_task(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


DRAIN_AFTER_ABORT = 2.0
"""Seconds an aborted Generate call is read on (counting tokens) before it is cancelled."""

Decode = Callable[[Any], list[GenerateChunk]]
Metadata = tuple[tuple[str, str], ...]
"""gRPC call metadata (here: the W3C trace context of the attempt)."""


class GenerateStream(AsyncIterator[GenerateChunk]):
    """The neutral chunks of one Generate call; cancelling it before the end sends Abort.

    The iterator ends once every sequence (``n``) has finished. If it is closed,
    cancelled (client gone, deadline) or garbage before that, the gRPC call is cancelled
    and the engine is told ``Abort(request_id)``, so it frees the slot at once.
    """

    def __init__(
        self,
        call: Any,
        decode: Decode,
        abort: Callable[[], Coroutine[Any, Any, None]],
        n: int,
        idle_timeout: float | None = None,
    ) -> None:
        self._call = call
        self._decode = decode
        self._abort = abort
        self._left = n
        self._idle = idle_timeout
        self._pending: deque[GenerateChunk] = deque()
        self._ended = False
        self.aborted = False
        self.after_cancel: Callable[[int], None] | None = None
        """Told how many tokens arrived after an Abort (the stream was cancelled unfinished)."""

    @property
    def finished(self) -> bool:
        """Did every sequence finish (nothing to abort)."""
        return self._left <= 0

    async def __anext__(self) -> GenerateChunk:
        while not self._pending:
            if self._ended or self._left <= 0:
                raise StopAsyncIteration
            msg = await self._read()
            if msg is grpc.aio.EOF:
                self._ended = True
                if self._left > 0:
                    raise UpstreamReset("the engine ended the stream before the last token")
                raise StopAsyncIteration
            self._pending.extend(self._decode(msg))
        chunk = self._pending.popleft()
        if chunk.finish_reason is not None:
            self._left -= 1
        return chunk

    async def _read(self) -> Any:
        try:
            if self._idle is None:
                return await self._call.read()
            async with asyncio.timeout(self._idle):
                return await self._call.read()
        except grpc.aio.AioRpcError as exc:
            self._ended = True  # the call is over; the engine already dropped it
            raise map_rpc_error(exc) from None
        except TimeoutError:
            self.cancel()
            raise UpstreamTimeout(f"no token from the engine within {self._idle:g}s") from None
        except UpstreamError:
            raise
        except BaseException:
            # Cancelled (the client went away) or a bug: stop the engine's work.
            self.cancel()
            raise

    def cancel(self) -> None:
        """Stop now: if a sequence is unfinished, send Abort and end the call.

        Whatever the engine still sends between the Abort and the end of its stream is
        counted (``after_cancel``: tokens it generated for nobody), for at most
        ``DRAIN_AFTER_ABORT`` seconds, then the call is cancelled.
        """
        if self._ended:
            return
        self._ended = True
        if self._left > 0:
            self.aborted = True
            spawn(self._abort_and_drain())

    async def _abort_and_drain(self) -> None:
        tokens = 0
        try:
            await self._abort()
            async with asyncio.timeout(DRAIN_AFTER_ABORT):
                while True:
                    msg = await self._call.read()
                    if msg is grpc.aio.EOF:
                        break
                    tokens += sum(len(c.token_ids) for c in self._decode(msg))
        except (Exception, asyncio.CancelledError):  # the call is over one way or another
            pass
        finally:
            self._call.cancel()
        if self.after_cancel is not None:
            self.after_cancel(tokens)

    async def aclose(self) -> None:
        """Close the stream (Abort if unfinished)."""
        self.cancel()

    def __del__(self) -> None:
        if not self._ended and self._left > 0:
            # No running loop (interpreter exit): nothing left to tell the engine.
            with contextlib.suppress(RuntimeError):
                self.cancel()


class EngineClient:
    """A typed client of one engine endpoint; subclasses speak one flavour."""

    flavour: ClassVar[str] = ""
    server_type: ClassVar[str] = ""
    pb: ClassVar[Any] = None
    """The flavour's generated message module."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.stub: Any = None

    def generate(
        self,
        input_ids: list[int],
        sampling: SamplingParams,
        *,
        stream: bool,
        request_id: str,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        prompt_text: str = "",
        metadata: Metadata | None = None,
        disagg: Disaggregation | None = None,
    ) -> GenerateStream:
        """Start Generate; iterate the result for neutral chunks (deltas, then finish).

        ``disagg``: the PD fields of a prefill or decode leg (sglang and vllm flavours).
        """
        call = self._start_generate(
            input_ids, sampling, stream, request_id, timeout, prompt_text, metadata, disagg=disagg
        )

        async def abort() -> None:
            await self.abort_quietly(request_id)

        return GenerateStream(call, self._decoder(stream), abort, sampling.n, idle_timeout)

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
        raise NotImplementedError

    def _decoder(self, stream: bool) -> Decode:
        raise NotImplementedError

    async def abort(self, request_id: str) -> None:
        """Tell the engine to stop ``request_id`` (raises mapped errors)."""
        raise NotImplementedError

    async def embed(
        self, input_ids: list[int], request_id: str, timeout: float | None = None
    ) -> EmbedResult:
        """The Embed RPC: one input's embedding (raises mapped errors)."""
        req = self.pb.EmbedRequest(request_id=request_id, tokenized=self._tokenized(input_ids))
        r = await self._unary(self.stub.Embed, req, timeout)
        return EmbedResult(list(r.embedding), int(r.prompt_tokens) or len(input_ids))

    def _tokenized(self, input_ids: list[int]) -> Any:
        return self.pb.TokenizedInput(input_ids=input_ids)

    async def abort_quietly(self, request_id: str) -> None:
        """Abort, logging instead of raising (runs detached after a cancel)."""
        try:
            await asyncio.wait_for(self.abort(request_id), ABORT_TIMEOUT)
        except Exception as exc:
            log.debug("abort of %s failed: %r", request_id, exc)

    async def health_check(self, timeout: float | None = None) -> bool:
        """The engine's HealthCheck RPC: True if it says it is healthy."""
        raise NotImplementedError

    async def get_model_info(self, timeout: float | None = None) -> ModelInfo:
        """GetModelInfo, flavour-neutral."""
        raise NotImplementedError

    async def get_server_info(self, timeout: float | None = None) -> ServerInfo:
        """GetServerInfo, flavour-neutral."""
        raise NotImplementedError

    async def get_loads(self, timeout: float | None = None) -> list[LoadReport]:
        """GetLoads per data-parallel rank (empty where the engine has no such RPC)."""
        return []

    async def get_tokenizer(self, timeout: float | None = None) -> bytes:
        """The engine's tokenizer files as zip bytes (GetTokenizer), checksum verified."""
        call = self.stub.GetTokenizer(common_pb2.GetTokenizerRequest(), timeout=timeout)
        return await self._collect_zip(call)

    @staticmethod
    async def _unary(method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise map_rpc_error(exc) from None

    @staticmethod
    async def _collect_zip(call: Any) -> bytes:
        parts: list[bytes] = []
        digest = ""
        try:
            async for chunk in call:
                parts.append(chunk.data)
                digest = chunk.sha256 or digest
        except grpc.aio.AioRpcError as exc:
            raise map_rpc_error(exc) from None
        data = b"".join(parts)
        if digest and hashlib.sha256(data).hexdigest() != digest:
            raise UpstreamReset("the tokenizer archive does not match its sha256")
        return data


class SchedulerClient(EngineClient):
    """vLLM and SGLang share HealthCheck, GetModelInfo and GetLoads message shapes."""

    async def health_check(self, timeout: float | None = None) -> bool:
        """HealthCheck → ``healthy``."""
        r = await self._unary(self.stub.HealthCheck, self.pb.HealthCheckRequest(), timeout)
        return bool(r.healthy)

    async def get_model_info(self, timeout: float | None = None) -> ModelInfo:
        """GetModelInfo."""
        r = await self._unary(self.stub.GetModelInfo, self.pb.GetModelInfoRequest(), timeout)
        return ModelInfo(
            model_path=r.model_path,
            served_model_name=r.served_model_name,
            tokenizer_path=r.tokenizer_path,
            max_context_length=r.max_context_length,
            vocab_size=r.vocab_size,
            eos_token_ids=tuple(r.eos_token_ids),
            bos_token_id=r.bos_token_id,
            pad_token_id=r.pad_token_id,
            is_generation=r.is_generation,
            default_sampling_params_json=r.default_sampling_params_json,
        )

    async def get_loads(self, timeout: float | None = None) -> list[LoadReport]:
        """GetLoads per data-parallel rank."""
        r = await self._unary(self.stub.GetLoads, self.pb.GetLoadsRequest(), timeout)
        return [load_report(x) for x in r.loads]


def load_report(x: Any) -> LoadReport:
    """A ``SchedulerLoad`` (vLLM and SGLang share it) → neutral report."""
    return LoadReport(
        dp_rank=x.dp_rank,
        running=x.num_running_reqs,
        waiting=x.num_waiting_reqs,
        token_usage=x.token_usage,
        cache_hit_rate=x.cache_hit_rate,
        max_running=x.max_running_requests,
    )
