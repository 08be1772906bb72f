"""Settings of the simulated engine, shared by every port it serves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Immutable knobs of one simulator process (latencies in their CLI units)."""

    host: str = "127.0.0.1"
    ports: tuple[int, ...] = (8000,)
    model: str = "sim-model"
    seed: int = 0
    block_size: int = 16
    cache_blocks: int = 4096
    ttft_base_ms: float = 2.0
    ttft_per_token_us: float = 1.0
    itl_ms: float = 1.0
    itl_per_request_ms: float = 0.01
    max_running: int = 256
    output_tokens: int = 16
    max_model_len: int = 131072
    fail_rate: float = 0.0
    fail_status: int = 503
    hang_rate: float = 0.0
    drop_after_chunks: int | None = None
    slow_start_s: float = 0.0
    embedding_dim: int = 64
    role: str = "both"
    """``both`` (a whole engine), ``prefill`` or ``decode`` (one leg of PD, see ``pd.py``)."""
    pd_style: str = "sglang"
    bootstrap_port: int = 8998
    """Prefill role: the KV transfer port (SGLang bootstrap port, vLLM NIXL side channel)."""
    kv_timeout_s: float = 10.0

    def validate(self) -> None:
        """Raise ValueError for settings that cannot be simulated."""
        checks = [
            (self.block_size >= 1, "--block-size must be >= 1"),
            (self.cache_blocks >= 0, "--cache-blocks must be >= 0"),
            (self.max_running >= 1, "--max-running must be >= 1"),
            (self.output_tokens >= 0, "--output-tokens must be >= 0"),
            (self.max_model_len >= 1, "--max-model-len must be >= 1"),
            (0.0 <= self.fail_rate <= 1.0, "--fail-rate must be within [0, 1]"),
            (0.0 <= self.hang_rate <= 1.0, "--hang-rate must be within [0, 1]"),
            (100 <= self.fail_status <= 599, "--fail-status must be an HTTP status"),
            (self.embedding_dim >= 1, "--embedding-dim must be >= 1"),
            (
                self.drop_after_chunks is None or self.drop_after_chunks >= 0,
                "--drop-after-chunks must be >= 0",
            ),
            (self.slow_start_s >= 0, "--slow-start must be >= 0"),
            (self.role in ("both", "prefill", "decode"), "--role must be both, prefill or decode"),
            (self.pd_style in ("sglang", "vllm"), "--pd-style must be sglang or vllm"),
            (0 <= self.bootstrap_port <= 65535, "--bootstrap-port must be a port (0: any)"),
            (self.kv_timeout_s > 0, "--kv-timeout must be > 0"),
            (
                self.role == "both" or len(self.ports) == 1,
                "a prefill or decode engine serves one --port",
            ),
        ]
        latencies = (
            self.ttft_base_ms,
            self.ttft_per_token_us,
            self.itl_ms,
            self.itl_per_request_ms,
        )
        checks.append((all(x >= 0 for x in latencies), "latencies must be >= 0"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if not self.ports:
            raise ValueError("no port to listen on")


def parse_port_range(spec: str) -> tuple[int, ...]:
    """Turn ``A-B`` (inclusive) or a single ``A`` into a tuple of ports."""
    lo_s, sep, hi_s = spec.partition("-")
    try:
        lo = int(lo_s)
        hi = int(hi_s) if sep else lo
    except ValueError:
        raise ValueError(f"bad port range {spec!r}, expected A-B") from None
    if not (1 <= lo <= hi <= 65535):
        raise ValueError(f"bad port range {spec!r}")
    if hi - lo >= 1024:
        raise ValueError(f"port range {spec!r} is too wide (max 1024 engines)")
    return tuple(range(lo, hi + 1))
