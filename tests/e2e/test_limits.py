"""rate_limit and admission through a real gateway and simulator, with the openai SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.support.procs import HOST, free_port, gateway, gateway_config, sim

pytestmark = pytest.mark.e2e

MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def listener(name: str, port: int, filt: str, cluster: str = "pool") -> dict[str, Any]:
    return {
        "name": name,
        "address": f"{HOST}:{port}",
        "filters": ["request_id", filt, "router"],
        "routes": [{"match": {"model": "*"}, "cluster": cluster}],
    }


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A slow (100 ms a token) and a fast simulator behind four listeners, a limit on each."""
    tmp = tmp_path_factory.mktemp("limits")
    with sim(tmp, "--itl-ms", "100") as slow, sim(tmp) as fast:
        names = ["rl", "adm", "adm_to", "tok"]
        ports = [free_port() for _ in names]
        doc = gateway_config([slow], ports[0], free_port())
        doc["clusters"].append({"name": "fast", "endpoints": [{"url": fast}]})
        doc["listeners"] = [
            listener("rl", ports[0], "limit"),
            listener("adm", ports[1], "adm"),
            listener("adm_to", ports[2], "adm_to"),
            listener("tok", ports[3], "tokens", cluster="fast"),
        ]
        doc["filters"].update(
            {
                "limit": {"type": "rate_limit", "config": {"requests_per_second": 2, "burst": 2}},
                "adm": {
                    "type": "admission",
                    "config": {"max_concurrent_requests": 2, "queue_size": 1},
                },
                "adm_to": {
                    "type": "admission",
                    "config": {"max_concurrent_requests": 1, "queue_timeout": "300ms"},
                },
                "tokens": {
                    "type": "rate_limit",
                    "config": {
                        "tokens_per_minute": 60,
                        "token_burst": 400,
                        "default_max_tokens": 250,
                    },
                },
            }
        )
        with gateway(tmp, doc):
            yield {n: f"http://{HOST}:{p}" for n, p in zip(names, ports, strict=True)}


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def slow_call(url: str, max_tokens: int = 20) -> str:
    """A completion of 100 ms a token; "ok" or the status and code the gateway answered."""
    try:
        client(url).chat.completions.create(
            model="sim-model",
            messages=MSG,
            max_tokens=max_tokens,
        )
    except openai.APIStatusError as e:
        return f"{e.status_code}:{e.code}"
    return "ok"


def test_third_quick_request_is_rate_limited(limited: dict[str, str]) -> None:
    c = client(limited["rl"])
    raw = c.chat.completions.with_raw_response.create(
        model="sim-model",
        messages=MSG,
        max_tokens=1,
    )
    assert raw.headers["x-ratelimit-limit-requests"] == "2"
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    c.chat.completions.create(model="sim-model", messages=MSG, max_tokens=1)
    with pytest.raises(openai.RateLimitError) as ei:
        c.chat.completions.create(model="sim-model", messages=MSG, max_tokens=1)
    err = ei.value
    assert int(err.response.headers["retry-after"]) >= 1
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.code == "rate_limit_exceeded"
    assert "requests per second" in err.message
    time.sleep(0.6)  # refilled: allowed again
    c.chat.completions.create(model="sim-model", messages=MSG, max_tokens=1)


def test_admission_queues_one_and_refuses_the_overflow(limited: dict[str, str]) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(slow_call, [limited["adm"]] * 4))
    assert sorted(results) == ["429:queue_full", "ok", "ok", "ok"]


def test_admission_queue_timeout_is_503(limited: dict[str, str]) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(slow_call, [limited["adm_to"]] * 2))
    assert sorted(results) == ["503:queue_timeout", "ok"]
    # and the slot came back: a lone request goes straight through afterwards
    assert slow_call(limited["adm_to"], max_tokens=2) == "ok"
    assert time.monotonic() - started < 10


def test_token_limit_settles_estimates_with_reported_usage(limited: dict[str, str]) -> None:
    # Each request is estimated at ~256 tokens (no max_tokens: 250 assumed) against a
    # burst of 400 that barely refills; the simulator really uses a few dozen. Only
    # settling with the reported usage lets the second and third request through.
    c = client(limited["tok"])
    stream = c.chat.completions.create(
        model="sim-model",
        messages=MSG,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None
    r = c.chat.completions.with_raw_response.create(model="sim-model", messages=MSG)
    used = r.parse().usage
    assert used is not None
    assert int(r.headers["x-ratelimit-remaining-tokens"]) > 400 - 2 * used.total_tokens - 5
    # a stream without usage: the estimate stands, and now the bucket is too low
    list(c.chat.completions.create(model="sim-model", messages=MSG, stream=True))
    with pytest.raises(openai.RateLimitError) as ei:
        c.chat.completions.create(model="sim-model", messages=MSG)
    assert "tokens per minute" in ei.value.message
    assert ei.value.response.headers["x-ratelimit-limit-tokens"] == "400"
