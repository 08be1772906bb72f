"""Metrics end to end: every family carries real data, values match what clients saw,
several worker processes are merged into one exposition, and x-smg-route explains picks."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from smg.observability.docgen import catalogue
from tests.support.procs import (
    HOST,
    free_port,
    gateway,
    gateway_config,
    http_json,
    sim,
    wait_until,
)
from tests.support.prom import scrape, value

pytestmark = pytest.mark.e2e

# Families that need gRPC mode (covered in test_grpc_mode) or a cancelled gRPC stream.
_NOT_IN_HTTP_MODE = {"smg_tokenizer_cache_lookups_total", "smg_tokens_after_cancel_total"}
# The simulated engines report cached_tokens in every answer, so nothing goes unreported.
_ZERO_HERE = {"smg_cache_unreported_total"}


def _cluster(name: str, urls: list[str], **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "endpoints": urls}
    doc.update(over)
    return doc


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    """A gateway with a cache-aware pool, a failing pool falling back to a load-aware one,
    a rate-limited listener and an admission limit."""
    with ExitStack() as stack:
        good1 = stack.enter_context(sim(tmp_path, "--itl-ms", "5"))
        good2 = stack.enter_context(sim(tmp_path))
        bad = [stack.enter_context(sim(tmp_path, "--fail-rate", "1.0")) for _ in range(2)]
        port, admin, limited = free_port(), free_port(), free_port()
        doc = gateway_config([good1], port, admin)
        doc["listeners"][0].update(
            filters=["request_id", "adm", "router"],
            route_header=True,
            routes=[
                {"match": {"model": "flaky"}, "cluster": "flaky", "fallback": ["load"]},
                {"match": {"model": "*"}, "cluster": "pool"},
            ],
        )
        doc["listeners"].append(
            {
                "name": "limited",
                "address": f"{HOST}:{limited}",
                "filters": ["rl", "router"],
                "routes": [{"match": {"model": "*"}, "cluster": "pool"}],
            }
        )
        doc["filters"].update(
            adm={
                "type": "admission",
                "config": {"max_concurrent_requests": 1, "queue_size": 1, "queue_timeout": "20s"},
            },
            rl={"type": "rate_limit", "config": {"requests_per_second": 0.01, "burst": 1}},
        )
        doc["clusters"] = [
            _cluster(
                "pool",
                [good1, good2],
                lb_policy={"type": "cache_aware", "config": {"max_tree_size": 400}},
                health_check={"enabled": True, "interval": "100ms"},
            ),
            _cluster(
                "flaky",
                bad,
                retry_policy={"max_retries": 1, "backoff": {"base": "1ms", "max": "2ms"}},
                outlier_detection={"consecutive_5xx": 1},
            ),
            _cluster(
                "load",
                [good2],
                lb_policy={"type": "power_of_two", "config": {"metrics_interval": "100ms"}},
            ),
        ]
        gw = stack.enter_context(gateway(tmp_path, doc))
        yield gw, f"http://{HOST}:{limited}", good1


def _chat(client: openai.OpenAI, model: str, text: str, **kw: Any) -> Any:
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], **kw
    )


def test_every_metric_family_carries_real_data(fleet: tuple[Any, str, str]) -> None:
    gw, limited_url, _good1 = fleet
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
    prompt_sum = completion_sum = 0
    long_prompt = "Tell me about the weather on the coast in late autumn, please. " * 4
    routes = []
    for _ in range(3):
        raw_answer = client.chat.completions.with_raw_response.create(
            model="sim-model", messages=[{"role": "user", "content": long_prompt}], max_tokens=8
        )
        routes.append(raw_answer.headers["x-smg-route"])
        r = raw_answer.parse()
        assert r.usage is not None
        prompt_sum += r.usage.prompt_tokens
        completion_sum += r.usage.completion_tokens
    # The repeated prompt goes where its prefix is: the header says so, with the match.
    assert routes[0].startswith("cluster=pool; endpoint=http://")
    assert "; cache_aware; hit=" in routes[2] and routes[2].endswith("; attempt=1")
    assert routes[1].split(";")[1] == routes[2].split(";")[1]  # same endpoint
    # A streamed answer with usage.
    chunks = 0
    for ev in _chat(
        client,
        "sim-model",
        "stream please",
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    ):
        chunks += 1
        if ev.usage is not None:
            prompt_sum += ev.usage.prompt_tokens
            completion_sum += ev.usage.completion_tokens
    # Fails on both flaky endpoints (one retry), then falls back to the load-aware cluster.
    raw = client.chat.completions.with_raw_response.create(
        model="flaky", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    fallback_answer = raw.parse()
    assert fallback_answer.choices[0].message.content
    assert fallback_answer.usage is not None
    prompt_sum += fallback_answer.usage.prompt_tokens
    completion_sum += fallback_answer.usage.completion_tokens
    route = raw.headers["x-smg-route"]
    assert route.startswith("cluster=load; endpoint=http://")
    assert "power_of_two" in route and route.endswith("attempt=3")
    # A bad request (named field), rate limiting on the second listener.
    status, body, _ = http_json(
        gw.url + "/v1/chat/completions", "POST", {"model": "sim-model", "messages": "x"}
    )
    assert status == 400
    statuses = [
        http_json(
            limited_url + "/v1/chat/completions",
            "POST",
            {"model": "sim-model", "messages": [{"role": "user", "content": "x"}]},
        )[0]
        for _ in range(2)
    ]
    assert statuses == [200, 429]
    # Admission: a long stream holds the only slot, one request queues, one is refused;
    # then the stream's client hangs up (a disconnect), which frees the slot.
    done: list[int] = []
    usages: list[dict[str, int]] = []
    hang_up = threading.Event()

    def long_stream() -> None:
        with httpx.stream(
            "POST",
            gw.url + "/v1/chat/completions",
            json={
                "model": "sim-model",
                "stream": True,
                "max_tokens": 5000,
                "messages": [{"role": "user", "content": "slow " * 60}],
            },
            timeout=30,
        ) as resp:
            done.append(resp.status_code)
            for _ in resp.iter_bytes():
                if hang_up.is_set():
                    break

    def queued() -> None:
        body = {
            "model": "sim-model",
            "max_tokens": 2,
            "messages": [{"role": "user", "content": "q"}],
        }
        status, answer, _ = http_json(gw.url + "/v1/chat/completions", "POST", body, timeout=30)
        done.append(status)
        usages.append(answer["usage"])

    threads = [threading.Thread(target=long_stream)]
    threads[0].start()
    assert wait_until(lambda: value(scrape(gw.admin), "smg_admission_active") == 1, 10)
    threads.append(threading.Thread(target=queued))
    threads[1].start()
    assert wait_until(lambda: value(scrape(gw.admin), "smg_admission_queue_depth") == 1, 10)
    refused = http_json(
        gw.url + "/v1/chat/completions",
        "POST",
        {"model": "sim-model", "messages": [{"role": "user", "content": "r"}]},
    )
    assert refused[0] == 429 and refused[1]["error"]["code"] == "queue_full"
    hang_up.set()
    for t in threads:
        t.join(30)
    assert sorted(done) == [200, 200]
    prompt_sum += usages[0]["prompt_tokens"]
    completion_sum += usages[0]["completion_tokens"]
    assert http_json(gw.admin + "/reload", "POST")[0] == 200
    fams: dict[str, Any] = {}

    def settled() -> bool:
        nonlocal fams
        fams = scrape(gw.admin)
        return (
            value(fams, "smg_client_disconnects_total") >= 1
            and value(fams, "smg_upstream_cancellations_total") >= 1
            and value(fams, "smg_engine_scrapes_total", result="success") >= 1
            and value(fams, "smg_requests_in_flight") == 0
        )

    assert wait_until(settled, 10), {k: v for k, v in fams.items() if "cancel" in k}
    # Every documented family has samples; every counter and histogram counted something
    # (gauges such as in-flight or queue depth are rightly 0 at rest).
    here = [d for d in catalogue() if d.name not in _NOT_IN_HTTP_MODE]
    here = [d for d in here if not d.name.startswith("smg_pd_")]  # PD clusters: test_pd
    missing = [d.name for d in here if not fams.get(d.name)]
    assert missing == [], f"families without samples: {missing}"
    idle = [
        d.name
        for d in here
        if d.type != "gauge" and d.name not in _ZERO_HERE and not any(s.value for s in fams[d.name])
    ]
    assert idle == [], f"families that counted nothing: {idle}"
    assert len([d for d in catalogue() if d.name.startswith("smg_")]) >= 40
    # Figures match what the clients saw.
    assert value(fams, "smg_tokens_total", kind="prompt", listener="public") == prompt_sum
    assert value(fams, "smg_tokens_total", kind="completion", listener="public") == completion_sum
    assert value(fams, "smg_requests_total", listener="limited", status="429") == 1
    assert value(fams, "smg_rate_limit_rejections_total", limit="requests") == 1
    assert value(fams, "smg_admission_rejections_total", reason="queue_full") == 1
    bad_kind = body["error"]["code"] or body["error"]["type"]
    assert value(fams, "smg_errors_total", kind=bad_kind, blame="downstream") == 1
    assert value(fams, "smg_retries_total", cluster="flaky") == 1
    assert value(fams, "smg_retries_exhausted_total", cluster="flaky") == 1
    assert value(fams, "smg_route_fallbacks_total", cluster="load") == 1
    assert (
        value(fams, "smg_upstream_attempts_total", cluster="flaky", outcome="upstream_status") == 2
    )
    assert value(fams, "smg_responses_streamed_total", listener="public") == 2
    assert value(fams, "smg_time_to_first_token_seconds", listener="public") == 2
    assert value(fams, "smg_stream_chunks_total", listener="public") >= chunks
    assert value(fams, "smg_endpoint_in_flight") == 0
    assert value(fams, "smg_config_reloads_total") == 1
    # 7 requests reached the router; the refused one stopped at the admission filter.
    assert value(fams, "smg_filter_duration_seconds", filter="router", listener="public") == 7
    assert value(fams, "smg_filter_duration_seconds", filter="adm", listener="public") == 8


def test_worker_processes_are_merged(tmp_path: Path) -> None:
    with sim(tmp_path) as url:
        port, admin = free_port(), free_port()
        doc = gateway_config([url], port, admin)
        doc["server"] = {"workers": 2}
        with gateway(tmp_path, doc) as gw:
            n = 40
            for i in range(n):
                # A new connection each time, so the kernel spreads them over both workers.
                with httpx.Client() as c:
                    r = c.post(
                        gw.url + "/v1/completions",
                        json={"model": "sim-model", "prompt": f"p{i}", "max_tokens": 2},
                    )
                    assert r.status_code == 200
            deadline = time.monotonic() + 10
            while True:
                fams = scrape(gw.admin)
                if value(fams, "smg_worker_processes") == 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert value(fams, "smg_worker_processes") == 2
            assert value(fams, "smg_requests_total", status="200") == n
            assert value(fams, "smg_request_duration_seconds") == n
            assert value(fams, "smg_upstream_attempts_total", outcome="ok") == n
            # Gauges merge by rule: one config version, health taken as the worst worker.
            versions = [s for s in fams["smg_config_version_info"] if s.value]
            assert len(versions) == 1 and versions[0].value == 1


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def test_structured_access_lines_and_lifecycle_events(tmp_path: Path) -> None:
    with sim(tmp_path) as good, sim(tmp_path, "--fail-rate", "1.0") as bad:
        doc = gateway_config([good, bad], free_port(), free_port())
        doc["logging"] = {"level": "info", "json": True}
        doc["clusters"][0].update(
            retry_policy={"max_retries": 2, "backoff": {"base": "1ms", "max": "2ms"}},
            outlier_detection={"consecutive_5xx": 1},
        )
        with gateway(tmp_path, doc) as gw:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-secret-1", max_retries=0)
            for i in range(4):
                client.chat.completions.create(
                    model="sim-model",
                    messages=[{"role": "user", "content": f"hello {i}"}],
                    max_tokens=3,
                    extra_headers={"x-request-id": f"req-{i}"},
                )
            for _ in client.chat.completions.create(
                model="sim-model",
                messages=[{"role": "user", "content": "stream"}],
                max_tokens=3,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"x-request-id": "req-stream"},
            ):
                pass
            # A broken config file: rejected with file and line, the old one stays.
            gw.config_path.write_text("listeners: [\n  {name: x\n")
            assert http_json(gw.admin + "/reload", "POST")[0] == 400
            assert wait_until(lambda: "config_rejected" in gw.proc.output(), 5)
        lines = _json_lines(gw.proc.output())
    access = {d["request_id"]: d for d in lines if d.get("logger") == "smg.access"}
    assert {f"req-{i}" for i in range(4)} | {"req-stream"} <= set(access)
    one = access["req-0"]
    for field in (
        "route",
        "cluster",
        "endpoint",
        "lb_reason",
        "status",
        "latency_ms",
        "attempts",
        "retries",
        "prompt_tokens",
        "completion_tokens",
        "error_kind",
    ):
        assert field in one, field
    assert one["status"] == 200 and one["cluster"] == "pool" and one["prompt_tokens"] > 0
    assert access["req-stream"]["ttft_ms"] is not None
    # Some request met the failing endpoint first and was retried elsewhere.
    assert any(d["retries"] >= 1 and d["endpoint"] == good for d in access.values())
    events = {d["event"]: d for d in lines if "event" in d}
    ejected = events["endpoint_ejected"]
    assert ejected["endpoint"] == bad and ejected["cluster"] == "pool"
    rejected = events["config_rejected"]
    assert rejected["level"] == "error" and rejected["trigger"] == "admin"
    assert re.search(r"gw\.yaml:\d+", rejected["errors"][0]), rejected
    text = "\n".join(json.dumps(d) for d in lines)
    assert "sk-secret-1" not in text
