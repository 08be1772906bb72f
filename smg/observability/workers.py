"""Metrics of several worker processes, merged into one exposition by worker 0.

Each worker process keeps its own in-process registry (no shared memory, no locks on the
hot path). Workers other than 0 serve their registry on a Unix socket in a directory
the parent creates before forking; worker 0's admin ``/metrics`` reads them all and
merges: counters, histograms and summaries add up; gauges follow the family's merge
rule (``sum`` unless ``metrics.merge_rule`` says ``max`` or ``min``). A worker that does
not answer within the timeout is left out of that scrape (``smg_worker_processes``
shows how many were merged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from smg.observability.fast import Merge
from smg.observability.metrics import merge_rule

log = logging.getLogger("smg.observability")

SCRAPE_TIMEOUT: Final = 2.0
# Gauges of prometheus-client's own process/platform collectors that must not be summed.
_FOREIGN_RULES: Final[dict[str, Merge]] = {
    "process_start_time_seconds": "min",
    "process_max_fds": "max",
    "python_info": "max",
}


def socket_path(directory: Path, worker: int) -> Path:
    """Where worker ``worker`` serves its metrics."""
    return directory / f"worker-{worker}.sock"


async def serve_worker_metrics(directory: Path, worker: int) -> web.AppRunner:
    """Serve this process's registry on its Unix socket (workers other than 0)."""

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    path = socket_path(directory, worker)
    path.unlink(missing_ok=True)
    await web.UnixSite(runner, str(path)).start()
    return runner


async def _fetch(path: Path) -> str | None:
    try:
        conn = aiohttp.UnixConnector(path=str(path))
        async with aiohttp.ClientSession(connector=conn) as session:
            async with asyncio.timeout(SCRAPE_TIMEOUT):
                async with session.get("http://worker/metrics") as resp:
                    return await resp.text()
    except (OSError, TimeoutError, aiohttp.ClientError) as exc:
        log.debug("worker metrics at %s unavailable: %r", path, exc)
        return None


async def merged_exposition(directory: Path, workers: int) -> bytes:
    """This process's metrics merged with every other worker's that answered."""
    texts = await asyncio.gather(*(_fetch(socket_path(directory, i)) for i in range(1, workers)))
    groups: list[Iterable[Metric]] = [REGISTRY.collect()]
    groups.extend(text_string_to_metric_families(t) for t in texts if t is not None)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static(merge_families(groups)))
    return generate_latest(registry)


class _Static(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def _rule(family: Metric) -> Merge:
    if family.type != "gauge":
        return "sum"
    foreign = _FOREIGN_RULES.get(family.name)
    return foreign if foreign is not None else merge_rule(family.name)


def merge_families(groups: Iterable[Iterable[Metric]]) -> list[Metric]:
    """Merge the families of several processes sample by sample (same name and labels)."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for families in groups:
        for fam in families:
            out = merged.get(fam.name)
            if out is None:
                out = merged[fam.name] = Metric(fam.name, fam.documentation, fam.type)
                values[fam.name] = {}
            rule = _rule(fam)
            table = values[fam.name]
            for s in fam.samples:
                if s.name.endswith("_created"):
                    continue  # per-process creation times mean nothing summed
                key = (s.name, tuple(sorted(s.labels.items())))
                old = table.get(key)
                if old is None:
                    table[key] = s.value
                elif rule == "sum":
                    table[key] = old + s.value
                elif rule == "max":
                    table[key] = max(old, s.value)
                else:
                    table[key] = min(old, s.value)
    for name, fam in merged.items():
        fam.samples = [
            Sample(sample_name, dict(labels), value, None, None)
            for (sample_name, labels), value in values[name].items()
        ]
    return list(merged.values())
