"""Engine /metrics parsing (vLLM and SGLang names) and the per-cluster scraper."""

from __future__ import annotations

import asyncio

from cluster_helpers import endpoint, make_cluster

from smg.clusters.endpoint import EndpointState
from smg.clusters.engine_metrics import EngineMetricsScraper, parse_engine_metrics

VLLM = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 4.0
vllm:num_requests_waiting{engine="1",model_name="m"} 0.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.5
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 750.0
vllm:time_to_first_token_seconds_bucket{le="0.001",model_name="m"} 0.0
python_gc_objects_collected_total{generation="0"} 123.0
"""

VLLM_V0 = """\
vllm:num_requests_running{model_name="m"} 1
vllm:num_requests_waiting{model_name="m"} 2 1712345678000
vllm:gpu_cache_usage_perc{model_name="m"} 0.9
vllm:gpu_prefix_cache_hits_total{model_name="m"} 10
vllm:gpu_prefix_cache_queries_total{model_name="m"} 40
"""

SGLANG = """\
# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="Qwen/Qwen3",engine_type="unified",tp_rank="0"} 8.0
sglang:num_queue_reqs{model_name="Qwen/Qwen3",engine_type="unified",tp_rank="0"} 4.0
sglang:token_usage{model_name="Qwen/Qwen3",engine_type="unified",tp_rank="0"} 0.52
sglang:cache_hit_rate{model_name="Qwen/Qwen3",engine_type="unified",tp_rank="0"} 0.28
sglang:prompt_tokens_total{model_name="Qwen/Qwen3"} 8.128902e+06
"""


def test_vllm_series_are_summed_and_kv_takes_the_fullest() -> None:
    load = parse_engine_metrics(VLLM, now=5.0)
    assert load is not None
    assert (load.running, load.waiting, load.load) == (5.0, 4.0, 9.0)
    assert load.kv_usage == 0.5
    assert (load.prefix_hits, load.prefix_queries, load.cache_hit_rate) == (750.0, 1000.0, 0.75)
    assert load.at == 5.0


def test_older_vllm_names_and_timestamps() -> None:
    load = parse_engine_metrics(VLLM_V0)
    assert load is not None
    assert (load.running, load.waiting, load.kv_usage, load.cache_hit_rate) == (1, 2, 0.9, 0.25)


def test_sglang_names() -> None:
    load = parse_engine_metrics(SGLANG)
    assert load is not None
    assert (load.running, load.waiting, load.kv_usage, load.cache_hit_rate) == (8, 4, 0.52, 0.28)
    assert load.prefix_hits is None


def test_pages_without_load_gauges_are_not_engines() -> None:
    assert parse_engine_metrics("# nothing\nprocess_cpu_seconds_total 1.0\n") is None
    assert parse_engine_metrics('vllm:num_requests_running{a="b"} NaN\n') is None
    assert parse_engine_metrics("vllm:num_requests_running\nvllm:x{} junk\n") is None


class Spawner:
    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[object]] = []

    def spawn(self, name: str, coro: object) -> asyncio.Task[object]:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self.tasks.append(task)
        return task


def test_scraper_fills_engine_state_and_clears_it_on_failure() -> None:
    up, down, odd = endpoint("http://10.0.0.1:1"), endpoint("http://10.0.0.2:1"), endpoint()
    answers: dict[str, tuple[int, bytes]] = {
        up.url: (200, SGLANG.encode()),
        odd.url: (200, b"hello 1\n"),
    }
    seen: list[str] = []

    async def fetch(ep: EndpointState, path: str, timeout: float) -> tuple[int, bytes]:
        seen.append(path)
        if ep.url not in answers:
            raise ConnectionRefusedError
        return answers[ep.url]

    async def run() -> None:
        scraper = EngineMetricsScraper("c", [up, down, odd], fetch, 0.01, "/m")
        down.engine = parse_engine_metrics(VLLM)  # stale: must not survive a failed scrape
        await scraper.scrape_once()
        assert up.engine is not None and up.engine.load == 12
        assert down.engine is None and odd.engine is None
        spawner = Spawner()
        scraper.start(spawner)
        answers[up.url] = (200, VLLM.encode())
        await asyncio.sleep(0.05)
        await scraper.stop()
        assert spawner.tasks[0].done()
        assert up.engine is not None and up.engine.load == 9

    asyncio.run(run())
    assert set(seen) == {"/m"}


def test_a_cluster_scrapes_only_for_policies_that_use_engine_load() -> None:
    assert make_cluster(lb_policy={"type": "least_load"}).engine_metrics is not None
    assert make_cluster(lb_policy={"type": "power_of_two"}).engine_metrics is not None
    assert (
        make_cluster(lb_policy={"type": "least_load", "config": {"metrics_interval": 0}})
    ).engine_metrics is None
    assert make_cluster(lb_policy={"type": "cache_aware"}).engine_metrics is None
    scraped = make_cluster(
        lb_policy={
            "type": "cache_aware",
            "config": {"engine_load": True, "metrics_interval": "500ms", "metrics_path": "/x"},
        }
    ).engine_metrics
    assert scraped is not None and (scraped.interval, scraped.path) == (0.5, "/x")
    assert make_cluster(lb_policy={"type": "round_robin"}).engine_metrics is None
