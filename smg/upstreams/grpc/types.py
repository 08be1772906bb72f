"""Engine-neutral types the gRPC clients yield, whatever the engine flavour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length", "abort", "error"]


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """Log probability of one output token, with the top alternatives if asked for."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(slots=True)
class GenerateChunk:
    """One step of one sequence: new token ids, and the finish when it is the last.

    ``token_ids`` is always a delta (the tokens not yet yielded for sequence
    ``index``), in streaming and non-streaming mode alike; a non-streamed request
    yields one chunk per sequence carrying all its tokens and its finish reason.
    Token counts are the engine's running totals for this sequence.
    """

    index: int = 0
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    """None until the sequence ends."""
    matched_stop: int | str | None = None
    """The stop token id or stop string that ended the sequence, if any."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    kv_transfer_params: str | None = None
    """vLLM PD prefill: the ``kv_transfer_params_json`` its last chunk returned."""

    @property
    def finished(self) -> bool:
        """Is this the sequence's last chunk."""
        return self.finish_reason is not None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the engine says about its model (GetModelInfo), flavour-neutral."""

    model_path: str
    served_model_name: str = ""
    tokenizer_path: str = ""
    max_context_length: int = 0
    vocab_size: int = 0
    eos_token_ids: tuple[int, ...] = ()
    bos_token_id: int | None = None
    pad_token_id: int | None = None
    is_generation: bool = True
    default_sampling_params_json: str = ""

    @property
    def name(self) -> str:
        """The model name clients use: the served name, else the path."""
        return self.served_model_name or self.model_path


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A few facts about the engine process (GetServerInfo), plus the raw fields."""

    server_type: str
    active_requests: int = 0
    uptime_seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoadReport:
    """One scheduler's load (GetLoads), per data-parallel rank."""

    dp_rank: int
    running: int
    waiting: int
    token_usage: float
    cache_hit_rate: float = 0.0
    max_running: int = 0


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """One input's embedding (the Embed RPC), flavour-neutral."""

    embedding: list[float]
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class Disaggregation:
    """The PD fields of one Generate leg (``clusters/pd.py``, ``upstreams/grpc/pd.py``).

    SGLang: ``bootstrap_host``, ``bootstrap_port`` and ``bootstrap_room`` go into
    ``DisaggregatedParams``. vLLM: ``kv_transfer_params`` (JSON) into
    ``kv_transfer_params_json``.
    """

    bootstrap_host: str = ""
    bootstrap_port: int = 0
    bootstrap_room: int = 0
    kv_transfer_params: str | None = None
