"""Prometheus text in vLLM's metric names, and the JSON counters behind /sim/stats."""

from __future__ import annotations

from typing import Any

import orjson

from smg.sim.engine import Engine


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(engine: Engine) -> bytes:
    """The /metrics page: gauges of the scheduler, counters of tokens and requests."""
    labels = f'engine="0",model_name="{_escape(engine.cfg.model)}"'
    out: list[str] = []

    def metric(name: str, kind: str, doc: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
        out.extend(f"{name}{{{lab}}} {float(v)!r}\n" for lab, v in samples)

    metric(
        "vllm:num_requests_running",
        "gauge",
        "Number of requests in model execution batches.",
        [(labels, engine.running)],
    )
    metric(
        "vllm:num_requests_waiting",
        "gauge",
        "Number of requests waiting to be processed.",
        [(labels, engine.waiting)],
    )
    metric(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "KV-cache usage. 1 means 100 percent usage.",
        [(labels, engine.kv_usage())],
    )
    metric(
        "vllm:prefix_cache_queries_total",
        "counter",
        "Prefix cache queries, in terms of number of queried tokens.",
        [(labels, engine.cache_query_tokens)],
    )
    metric(
        "vllm:prefix_cache_hits_total",
        "counter",
        "Prefix cache hits, in terms of number of cached tokens.",
        [(labels, engine.cache_hit_tokens)],
    )
    metric(
        "vllm:prompt_tokens_total",
        "counter",
        "Number of prefill tokens processed.",
        [(labels, engine.prompt_tokens)],
    )
    metric(
        "vllm:generation_tokens_total",
        "counter",
        "Number of generation tokens processed.",
        [(labels, engine.generation_tokens)],
    )
    metric(
        "vllm:request_success_total",
        "counter",
        "Count of successfully processed requests.",
        [
            (f'{labels},finished_reason="{reason}"', count)
            for reason, count in engine.finished_by_reason.items()
        ],
    )
    return "".join(out).encode()


def stats(engine: Engine) -> dict[str, Any]:
    """Everything tests may want to assert about the engine."""
    return {
        "port": engine.port,
        "model": engine.cfg.model,
        "uptime_s": round(engine.loop.time() - engine.started_mono, 3),
        "starting": engine.starting(),
        "total_requests": engine.total_requests,
        "requests_by_path": engine.requests_by_path,
        "running": engine.running,
        "waiting": engine.waiting,
        "hanging": engine.hanging,
        "completed": engine.completed,
        "aborted": engine.aborted,
        "dropped": engine.dropped,
        "failed": engine.failed,
        "failed_injected": engine.failed_injected,
        "hung_injected": engine.hung_injected,
        "rejected_starting": engine.rejected_starting,
        "bad_requests": engine.bad_requests,
        "finished_by_reason": engine.finished_by_reason,
        "prompt_tokens": engine.prompt_tokens,
        "generation_tokens": engine.generation_tokens,
        "cache": {
            "query_tokens": engine.cache_query_tokens,
            "hit_tokens": engine.cache_hit_tokens,
            "blocks_used": len(engine.cache),
            "blocks_capacity": engine.cfg.cache_blocks,
            "kv_usage": engine.kv_usage(),
        },
        "last_headers": engine.last_headers(),
        "last_traceparent": engine.last_headers().get("traceparent"),
        "last_request": engine.last_request(),
        "pd": engine.pd.stats() if engine.pd is not None else None,
    }


def stats_json(engine: Engine) -> bytes:
    """/sim/stats body."""
    return orjson.dumps(stats(engine))
