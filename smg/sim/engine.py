"""One simulated engine: admission queue, prefix cache, latency model and counters."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from smg.sim.config import SimConfig
from smg.sim.kvcache import PrefixCache
from smg.sim.pd import Leg, PdRole
from smg.sim.tokens import count_tokens

NEW, WAITING, RUNNING, DONE = range(4)

Outcome = Literal["completed", "aborted", "dropped", "hung", "failed"]


class _HasHeaders(Protocol):
    @property
    def headers(self) -> dict[str, str]: ...


class Renderer(Protocol):
    """Turns a job's tokens into one API dialect's wire format."""

    def stream_head(self, job: Job) -> bytes:
        """Bytes sent with the first token (e.g. the role chunk), or b""."""
        ...

    def stream_step(self, job: Job, pos: int) -> bytes:
        """Every choice's token ``pos``, as one write."""
        ...

    def stream_steps(self, job: Job, start: int, stop: int) -> bytes:
        """Tokens ``start`` to ``stop`` (exclusive) of every choice."""
        ...

    def stream_tail(self, job: Job) -> bytes:
        """Finish chunks, usage and terminator."""
        ...

    def body(self, job: Job) -> bytes:
        """The whole non-streamed response."""
        ...


class Unstreamed:
    """A renderer's stream half for answers that are never streamed: every part empty."""

    def stream_head(self, job: Job) -> bytes:
        """Nothing: never streamed."""
        return b""

    def stream_step(self, job: Job, pos: int) -> bytes:
        """Nothing: never streamed."""
        return b""

    def stream_steps(self, job: Job, start: int, stop: int) -> bytes:
        """Nothing: never streamed."""
        return b""

    def stream_tail(self, job: Job) -> bytes:
        """Nothing: never streamed."""
        return b""


@dataclass(slots=True, eq=False)
class Job:
    """One inference request, from parse to last byte."""

    renderer: Renderer
    request_id: str
    model: str
    prompts: list[bytes]
    n: int = 1
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False
    generates: bool = True
    use_cache: bool = True
    headers: bytes = b""
    created: int = 0
    batch: bool = False
    prompt_tokens: int = 0
    # Filled in while the job runs.
    state: int = NEW
    wake: asyncio.Future[None] | None = None
    hashes: list[list[int]] = field(default_factory=list)
    cached_tokens: int = 0
    cached_by_prompt: list[int] = field(default_factory=list)
    output_len: int = 0
    finish_reason: str = "stop"
    outputs: list[bytes] = field(default_factory=list)
    produced: int = 0
    kv_blocks: int = 0
    enqueued_at: float = 0.0
    queue_s: float = 0.0
    prefill_s: float = 0.0
    outcome: Outcome = "aborted"
    scratch: Any = None
    pd: Leg | None = None
    """The PD leg this request is (``--role prefill|decode``), see ``pd.py``."""
    logprob_start: int | None = None
    """SGLang ``return_logprob``: prompt position input logprobs start at (-1: none)."""

    @property
    def num_choices(self) -> int:
        """Sequences generated: n per prompt."""
        return len(self.prompts) * self.n


class Engine:
    """State of one simulated server (one port)."""

    def __init__(self, cfg: SimConfig, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.cfg = cfg
        self.port = port
        self.loop = loop
        self.cache = PrefixCache(cfg.block_size, cfg.cache_blocks)
        self._fault_rng = random.Random(cfg.seed)
        self._queue: deque[Job] = deque()
        self.started_mono = loop.time()
        self._ready_at = self.started_mono + cfg.slow_start_s
        self._ready = cfg.slow_start_s <= 0
        self.started_wall = time.time()
        # Latencies in seconds, precomputed once.
        self.ttft_base_s = cfg.ttft_base_ms / 1e3
        self.ttft_per_token_s = cfg.ttft_per_token_us / 1e6
        self.itl_s = cfg.itl_ms / 1e3
        self.itl_per_request_s = cfg.itl_per_request_ms / 1e3
        self.zero_itl = self.itl_s == 0 and self.itl_per_request_s == 0
        self.faulty = cfg.fail_rate > 0 or cfg.hang_rate > 0
        # Gauges: what is in the engine right now.
        self.running = 0
        self.waiting = 0
        self.hanging = 0
        self.kv_blocks_held = 0
        self.pd = PdRole(cfg) if cfg.role != "both" else None
        self.reset()

    def reset(self) -> None:
        """Zero the counters and empty the cache (requests in flight keep running)."""
        self.cache.clear()
        self._fault_rng.seed(self.cfg.seed)
        self.seq = 0
        self.total_requests = 0
        self.requests_by_path: dict[str, int] = {}
        self.completed = 0
        self.aborted = 0
        self.dropped = 0
        self.failed = 0
        self.failed_injected = 0
        self.hung_injected = 0
        self.rejected_starting = 0
        self.bad_requests = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.cache_query_tokens = 0
        self.cache_hit_tokens = 0
        self.finished_by_reason: dict[str, int] = {"stop": 0, "length": 0, "abort": 0}
        # Kept as objects and rendered only when /sim/stats asks: cheaper per request.
        self.last_request_headers: _HasHeaders | None = None
        self.last_job: Job | None = None
        self.last_path = ""

    # -- lifecycle ------------------------------------------------------------

    def starting(self) -> bool:
        """True during --slow-start."""
        if self._ready:
            return False
        self._ready = self.loop.time() >= self._ready_at
        return not self._ready

    def next_seq(self) -> int:
        """Per-engine request counter (names requests deterministically)."""
        self.seq += 1
        return self.seq

    def draw_fault(self) -> Literal["fail", "hang"] | None:
        """Decide, from the seeded stream, whether this request fails or hangs."""
        cfg = self.cfg
        if cfg.fail_rate > 0 and self._fault_rng.random() < cfg.fail_rate:
            self.failed_injected += 1
            return "fail"
        if cfg.hang_rate > 0 and self._fault_rng.random() < cfg.hang_rate:
            self.hung_injected += 1
            return "hang"
        return None

    # -- scheduling -----------------------------------------------------------

    def admit(self, job: Job) -> asyncio.Future[None] | None:
        """Start the job now (None) or queue it; the future fires when it may run."""
        if self.running < self.cfg.max_running and not self.waiting:
            self._start(job)
            return None
        job.state = WAITING
        job.enqueued_at = self.loop.time()
        job.wake = self.loop.create_future()
        self._queue.append(job)
        self.waiting += 1
        return job.wake

    def _start(self, job: Job) -> None:
        job.state = RUNNING
        self.running += 1
        out = job.max_tokens if job.max_tokens is not None else self.cfg.output_tokens
        decode = out * job.num_choices
        job.kv_blocks = (job.prompt_tokens + decode) // self.cfg.block_size + 1
        self.kv_blocks_held += job.kv_blocks

    def _promote(self) -> None:
        queue = self._queue
        while queue and self.running < self.cfg.max_running:
            job = queue.popleft()
            if job.state != WAITING:
                continue  # left the queue while waiting
            self.waiting -= 1
            job.queue_s = self.loop.time() - job.enqueued_at
            self._start(job)
            if job.wake is not None and not job.wake.done():
                job.wake.set_result(None)

    def prefill(self, job: Job) -> float:
        """Look the prompts up in the prefix cache; return the prefill time in seconds."""
        cached = 0
        if job.use_cache:
            cache = self.cache
            bs = self.cfg.block_size
            for prompt in job.prompts:
                hashes = cache.block_hashes(prompt)
                job.hashes.append(hashes)
                # The last prompt token is always computed, as real engines do.
                limit = (count_tokens(prompt) - 1) // bs
                hit = cache.match(hashes, limit) * bs
                job.cached_by_prompt.append(hit)
                cached += hit
            self.cache_query_tokens += job.prompt_tokens
            self.cache_hit_tokens += cached
        job.cached_tokens = cached
        job.prefill_s = self.ttft_base_s + self.ttft_per_token_s * (job.prompt_tokens - cached)
        return job.prefill_s

    def commit_prefill(self, job: Job) -> None:
        """The prompt's KV now exists: make its blocks available to later requests."""
        for hashes in job.hashes:
            self.cache.insert(hashes)

    def itl(self) -> float:
        """Current inter-token latency in seconds: slower with a bigger batch."""
        return self.itl_s + self.itl_per_request_s * max(self.running - 1, 0)

    def finish(self, job: Job, path: str) -> None:
        """Account for a job leaving the engine, however it ended."""
        if job.state == RUNNING:
            self.running -= 1
            self.kv_blocks_held -= job.kv_blocks
            job.state = DONE
            self._promote()
        elif job.state == WAITING:
            self.waiting -= 1
            job.state = DONE
        outcome = job.outcome
        if outcome == "completed":
            self.completed += 1
            self.finished_by_reason[job.finish_reason] += 1
        elif outcome == "dropped":
            self.dropped += 1
        elif outcome == "failed":
            self.failed += 1
        else:
            self.aborted += 1
            self.finished_by_reason["abort"] += 1
        self.prompt_tokens += job.prompt_tokens
        self.generation_tokens += job.produced * job.num_choices
        self.last_job = job
        self.last_path = path

    def last_request(self) -> dict[str, Any]:
        """Figures of the last finished inference request."""
        job = self.last_job
        if job is None:
            return {}
        return {
            "path": self.last_path,
            "id": job.request_id,
            "model": job.model,
            "outcome": job.outcome,
            "prompt_tokens": job.prompt_tokens,
            "cached_tokens": job.cached_tokens,
            "completion_tokens": job.produced * job.num_choices,
            "queue_ms": job.queue_s * 1e3,
            "prefill_ms": job.prefill_s * 1e3,
            "ttft_ms": (job.queue_s + job.prefill_s) * 1e3,
        }

    def last_headers(self) -> dict[str, str]:
        """Headers of the last inference request received."""
        req = self.last_request_headers
        return dict(req.headers) if req is not None else {}

    def kv_usage(self) -> float:
        """Fraction of KV blocks held by admitted requests."""
        if self.cfg.cache_blocks <= 0:
            return 1.0 if self.running else 0.0
        return min(1.0, self.kv_blocks_held / self.cfg.cache_blocks)
