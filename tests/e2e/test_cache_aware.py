"""cache_aware end to end: real smg + three smg sim engines with a prefix KV cache."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.procs import (
    Gateway,
    free_port,
    gateway,
    gateway_config,
    http_get,
    sim,
    wait_until,
)

pytestmark = pytest.mark.e2e

SYSTEM = "You are the assistant of one user. Long standing instructions follow. " * 40


def served(url: str) -> int:
    return int(json.loads(http_get(url + "/sim/stats")[1])["total_requests"])


def metric(gw: Gateway, name: str, **labels: str) -> float:
    text = http_get(gw.admin + "/metrics")[1].decode()
    want = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in want):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_conversation_stays_on_one_worker_and_its_cache_hits_grow(tmp_path: Path) -> None:
    with (
        sim(tmp_path, "--itl-ms", "1") as a,
        sim(tmp_path, "--itl-ms", "1") as b,
        sim(tmp_path, "--itl-ms", "1", "--fail-rate", "1.0") as bad,
    ):
        doc = gateway_config([a, b], free_port(), free_port())
        doc["clusters"][0]["lb_policy"] = {"type": "cache_aware"}
        doc["clusters"].append(
            {"name": "broken", "endpoints": [bad], "retry_policy": {"max_retries": 0}}
        )
        doc["listeners"][0]["routes"].insert(0, {"match": {"model": "broken"}, "cluster": "broken"})
        with gateway(tmp_path, doc) as g:
            c = openai.OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0)
            messages: list[Any] = [{"role": "system", "content": SYSTEM}]
            cached: list[int] = []
            for turn in range(5):
                messages.append({"role": "user", "content": f"question number {turn}?"})
                before = (served(a), served(b))
                if turn % 2:
                    stream = c.chat.completions.create(
                        model="sim-model",
                        messages=messages,
                        max_tokens=8,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    text, usage = "", None
                    for chunk in stream:
                        if chunk.choices:
                            text += chunk.choices[0].delta.content or ""
                        usage = chunk.usage or usage
                else:
                    resp = c.chat.completions.create(
                        model="sim-model", messages=messages, max_tokens=8
                    )
                    text, usage = resp.choices[0].message.content or "", resp.usage
                assert usage is not None and usage.prompt_tokens_details is not None
                cached.append(usage.prompt_tokens_details.cached_tokens or 0)
                after = (served(a), served(b))
                delta = (after[0] - before[0], after[1] - before[1])
                if turn == 0:
                    home = 0 if delta == (1, 0) else 1
                assert delta == ((1, 0) if home == 0 else (0, 1)), (turn, delta)
                messages.append({"role": "assistant", "content": text})
            # The first turn is cold; every later one finds more of the conversation cached.
            assert cached[0] == 0
            assert all(x < y for x, y in itertools.pairwise(cached[1:])), cached
            assert cached[1] > 400

            # The gateway predicted those hits, and the engine confirmed them.
            url = (a, b)[home]
            labels = {"cluster": "pool", "endpoint": url}
            assert metric(g, "smg_cache_reported_tokens_total", **labels) == sum(cached)
            ratio = metric(g, "smg_cache_prediction_ratio", **labels)
            assert 0.8 < ratio < 1.2, ratio
            assert metric(g, "smg_lb_decisions_total", cluster="pool", reason="hit") == 4

            # Errors and a client that walks away mid-stream leave no load behind.
            with pytest.raises(openai.APIStatusError):
                c.completions.create(model="broken", prompt="p", max_tokens=1)
            s = c.chat.completions.create(
                model="sim-model", messages=messages, max_tokens=400, stream=True
            )
            next(iter(s))
            s.close()

            def idle() -> bool:
                clusters = g.admin_json("/clusters")["clusters"]
                return all(e["in_flight"] == 0 for cl in clusters for e in cl["endpoints"])

            assert wait_until(idle, 5)


def test_engine_load_is_scraped_and_steers_least_load(tmp_path: Path) -> None:
    with sim(tmp_path, "--itl-ms", "50") as busy, sim(tmp_path) as idle:
        doc = gateway_config([busy, idle], free_port(), free_port())
        doc["clusters"][0]["lb_policy"] = {
            "type": "least_load",
            "config": {"metrics_interval": "100ms"},
        }
        with gateway(tmp_path, doc) as g:
            # Keep the busy engine busy behind the gateway's back (not in its in-flight).
            c = openai.OpenAI(base_url=busy + "/v1", api_key="unused", max_retries=0)
            streams = [
                c.chat.completions.create(
                    model="sim-model",
                    messages=[{"role": "user", "content": "x"}],
                    max_tokens=200,
                    stream=True,
                )
                for _ in range(3)
            ]
            for s in streams:
                next(iter(s))

            def busy_seen() -> bool:
                eps = g.cluster_endpoints("pool")
                return eps[busy]["engine"]["running"] == 3 and "engine" in eps[idle]

            assert wait_until(busy_seen, 5)
            before = served(busy)
            gw = openai.OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0)
            for _ in range(6):
                gw.completions.create(model="sim-model", prompt="p", max_tokens=1)
            assert served(busy) == before  # all six went to the idle engine
            for s in streams:
                s.close()
