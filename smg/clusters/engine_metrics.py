"""Engine load signals: each worker's Prometheus ``/metrics`` scraped on an interval.

vLLM and SGLang publish their scheduler state under their own names; both are read:

* requests running: ``vllm:num_requests_running``, ``sglang:num_running_reqs``;
* requests queued: ``vllm:num_requests_waiting``, ``sglang:num_queue_reqs``;
* KV cache in use (0-1): ``vllm:kv_cache_usage_perc`` (older ``vllm:gpu_cache_usage_perc``),
  ``sglang:token_usage``;
* prefix cache: ``vllm:prefix_cache_hits_total`` / ``vllm:prefix_cache_queries_total``
  (tokens; older ``vllm:gpu_prefix_cache_*``), ``sglang:cache_hit_rate``.

Series of the same name (data-parallel ranks, engines) are summed, KV usage takes the
fullest one. The result lands on ``EndpointState.engine``; a failed or unrecognised
scrape sets it to None so that policies fall back to the gateway's own in-flight count
instead of trusting an old number.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from smg.clusters.endpoint import EndpointState
from smg.clusters.health import Spawner
from smg.observability import metrics

log = logging.getLogger("smg.engine_metrics")

Fetch = Callable[[EndpointState, str, float], Awaitable[tuple[int, bytes]]]
"""``GET path`` on an endpoint with a timeout → (status, body)."""

_RUNNING: Final = frozenset({"vllm:num_requests_running", "sglang:num_running_reqs"})
_WAITING: Final = frozenset({"vllm:num_requests_waiting", "sglang:num_queue_reqs"})
_KV: Final = frozenset(
    {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"}
)
_HITS: Final = frozenset({"vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"})
_QUERIES: Final = frozenset(
    {"vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total"}
)
_HIT_RATE: Final = "sglang:cache_hit_rate"
JITTER: Final = 0.1


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """One scrape of a worker's scheduler state."""

    running: float
    waiting: float
    kv_usage: float | None = None
    """Fraction of the KV cache in use (0-1), if the engine reports it."""
    prefix_hits: float | None = None
    """Prefix-cache hit tokens since the engine started (vLLM counter)."""
    prefix_queries: float | None = None
    """Prefix-cache queried tokens since the engine started (vLLM counter)."""
    cache_hit_rate: float | None = None
    """The engine's own hit-rate gauge (SGLang)."""
    at: float = 0.0
    """Monotonic time of the scrape."""

    @property
    def load(self) -> float:
        """Requests the engine holds: running plus queued."""
        return self.running + self.waiting

    def describe(self) -> dict[str, float | None]:
        """For the admin API."""
        return {
            "running": self.running,
            "waiting": self.waiting,
            "kv_usage": self.kv_usage,
            "prefix_hits": self.prefix_hits,
            "prefix_queries": self.prefix_queries,
            "cache_hit_rate": self.cache_hit_rate,
        }


def parse_engine_metrics(text: str, now: float = 0.0) -> EngineLoad | None:
    """Read the load signals out of Prometheus text; None if it has no vLLM/SGLang gauges."""
    running = waiting = hits = queries = 0.0
    kv: float | None = None
    hit_rate: float | None = None
    seen_load = seen_hits = seen_queries = False
    for line in text.splitlines():
        if not (line.startswith("vllm:") or line.startswith("sglang:")):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            rest = line[line.rfind("}") + 1 :]
        elif space != -1:
            name = line[:space]
            rest = line[space:]
        else:
            continue
        fields = rest.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        if value != value:  # NaN: a gauge the engine has not set yet
            continue
        if name in _RUNNING:
            running += value
            seen_load = True
        elif name in _WAITING:
            waiting += value
            seen_load = True
        elif name in _KV:
            kv = value if kv is None else max(kv, value)
        elif name in _HITS:
            hits += value
            seen_hits = True
        elif name in _QUERIES:
            queries += value
            seen_queries = True
        elif name == _HIT_RATE:
            hit_rate = value
    if not seen_load:
        return None
    if hit_rate is None and seen_hits and seen_queries and queries > 0:
        hit_rate = hits / queries
    return EngineLoad(
        running=running,
        waiting=waiting,
        kv_usage=kv,
        prefix_hits=hits if seen_hits else None,
        prefix_queries=queries if seen_queries else None,
        cache_hit_rate=hit_rate,
        at=now,
    )


class EngineMetricsScraper:
    """One task per cluster that refreshes every endpoint's ``engine`` on an interval."""

    def __init__(
        self,
        cluster: str,
        endpoints: Sequence[EndpointState],
        fetch: Fetch,
        interval: float,
        path: str = "/metrics",
        timeout: float | None = None,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.cluster = cluster
        self.endpoints = endpoints
        self.interval = interval
        self.path = path
        self.timeout = timeout if timeout is not None else max(0.05, min(interval, 2.0))
        self._fetch = fetch
        self._rand = rand
        self._task: asyncio.Task[None] | None = None
        self._warned: set[str] = set()

    def start(self, tasks: Spawner) -> None:
        """Start the scraping task."""
        if self._task is None:
            self._task = tasks.spawn(f"engine-metrics-{self.cluster}", self._run())

    async def stop(self) -> None:
        """Cancel the task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _run(self) -> None:
        # The first scrape lands within the first interval; then interval ± 10%.
        await asyncio.sleep(self._rand() * self.interval)
        while True:
            await self.scrape_once()
            await asyncio.sleep(self.interval * (1.0 + JITTER * (2.0 * self._rand() - 1.0)))

    async def scrape_once(self) -> None:
        """Scrape every endpoint once, concurrently."""
        await asyncio.gather(*(self._one(ep) for ep in self.endpoints))

    async def _one(self, ep: EndpointState) -> None:
        try:
            status, body = await asyncio.wait_for(
                self._fetch(ep, self.path, self.timeout), self.timeout
            )
        except Exception as exc:  # down or slow: the in-flight count is all we have
            log.debug("cluster %s: scraping %s failed: %r", self.cluster, ep.url, exc)
            ep.engine = None
            metrics.ENGINE_SCRAPES.labels(self.cluster, "failure").inc()
            return
        load = None
        if status == 200:
            load = parse_engine_metrics(body.decode("utf-8", "replace"), time.monotonic())
        if load is None and ep.url not in self._warned:
            self._warned.add(ep.url)
            log.warning(
                "cluster %s: %s%s has no vLLM/SGLang load gauges (status %d); "
                "load-aware routing uses in-flight counts for it",
                self.cluster,
                ep.url,
                self.path,
                status,
            )
        ep.engine = load
        result = "success" if load is not None else "unrecognised"
        metrics.ENGINE_SCRAPES.labels(self.cluster, result).inc()
