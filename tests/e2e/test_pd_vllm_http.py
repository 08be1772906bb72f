"""PD disaggregation, vLLM style (kv_transfer_params) over HTTP, with real sims.

A vLLM decode sim answers only with ``kv_transfer_params`` its prefill sim issued for
the same prompt, pulled once from the prefill's side channel: a 200 proves the
round-trip (prefill leg first, its params passed on to the decode leg).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import openai
import pytest

from tests.support.pd import (
    PdSim,
    assert_idle,
    leave_when,
    metric,
    pd_cluster,
    pd_gateway_config,
    pd_sim,
    settle,
)
from tests.support.procs import Gateway, gateway, http_json

pytestmark = pytest.mark.e2e
PROMPT = "Explain how a KV cache moves from a prefill engine to a decode engine. " * 3


@dataclass
class Fleet:
    g: Gateway
    p_ok: PdSim
    p_fail: PdSim
    p_hang: PdSim
    d_ok: PdSim
    d_fail: PdSim
    d_drop: PdSim


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("pd-vllm-http")
    with ExitStack() as stack:

        def start(role: str, *extra: str) -> PdSim:
            return stack.enter_context(pd_sim(tmp, role, "vllm", *extra))

        p_ok = start("prefill")
        p_fail = start("prefill", "--fail-rate", "1", "--fail-status", "500")
        p_hang = start("prefill", "--hang-rate", "1")
        d_ok = start("decode", "--itl-ms", "1")
        d_fail = start("decode", "--fail-rate", "1")
        d_drop = start("decode", "--drop-after-chunks", "3", "--itl-ms", "5")
        once = {"retry_policy": {"max_retries": 0, "per_try_timeout": "1s"}}
        clusters = [
            pd_cluster("ok", [p_ok], [d_ok], "vllm"),
            pd_cluster("retry-prefill", [p_fail, p_ok], [d_ok], "vllm"),
            pd_cluster("retry-decode", [p_ok], [d_fail, d_ok], "vllm"),
            pd_cluster("prefill-hangs", [p_hang], [d_ok], "vllm", **once),
            pd_cluster("hang-long", [p_hang], [d_ok], "vllm", retry_policy={"max_retries": 0}),
            pd_cluster("decode-drops", [p_ok], [d_drop], "vllm"),
        ]
        g = stack.enter_context(gateway(tmp, pd_gateway_config(clusters)))
        yield Fleet(g, p_ok, p_fail, p_hang, d_ok, d_fail, d_drop)


def client(g: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0, timeout=20)


def test_chat_and_completions_stream_and_whole_hand_over_the_kv(fleet: Fleet) -> None:
    g, p, d = fleet.g, fleet.p_ok, fleet.d_ok
    p0, d0 = p.stats(), d.stats()
    c = client(g)
    msgs: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
    whole = c.chat.completions.create(model="ok", messages=msgs, max_completion_tokens=6)
    assert whole.usage is not None and whole.usage.completion_tokens == 6  # not the prefill's 1
    text = "".join(
        ch.choices[0].delta.content or ""
        for ch in c.chat.completions.create(model="ok", messages=msgs, max_tokens=6, stream=True)
        if ch.choices
    )
    assert text == whole.choices[0].message.content
    comp = c.completions.create(model="ok", prompt=PROMPT, max_tokens=4)
    assert comp.usage is not None and comp.usage.completion_tokens == 4
    streamed = "".join(
        ch.choices[0].text
        for ch in c.completions.create(model="ok", prompt=PROMPT, max_tokens=4, stream=True)
    )
    assert streamed == comp.choices[0].text
    p1, d1 = p.stats(), d.stats()
    issued = p1["pd"]["keys"][len(p0["pd"]["keys"]) :]
    used = d1["pd"]["keys"][len(d0["pd"]["keys"]) :]
    assert len(issued) == 4 and issued == used  # each transfer id went to its decode leg
    assert d1["pd"]["pulls_ok"] - d0["pd"]["pulls_ok"] == 4
    assert metric(g, "smg_pd_prefill_duration_seconds_count", cluster="ok", style="vllm") >= 4
    assert_idle(g)


def test_requests_a_vllm_pair_cannot_serve_are_refused_by_name(fleet: Fleet) -> None:
    g = fleet.g
    status, doc, _ = http_json(g.url + "/generate", "POST", {"model": "ok", "text": "x"})
    assert status == 400 and "/generate" in doc["error"]["message"]
    status, doc, _ = http_json(
        g.url + "/v1/completions", "POST", {"model": "ok", "prompt": ["a", "b"]}
    )
    assert status == 400 and doc["error"]["param"] == "prompt"
    assert_idle(g)


def test_prefill_failure_is_retried_and_decode_never_sees_it(fleet: Fleet) -> None:
    g, bad, d = fleet.g, fleet.p_fail, fleet.d_ok
    failed0, legs0 = bad.stats()["failed_injected"], d.stats()["pd"]["legs"]
    for _ in range(4):
        out = client(g).completions.create(model="retry-prefill", prompt=PROMPT, max_tokens=2)
        assert out.usage is not None and out.usage.completion_tokens == 2
    assert bad.stats()["failed_injected"] - failed0 >= 1
    assert d.stats()["pd"]["legs"] - legs0 == 4  # decode legs only after a good prefill
    eps = g.cluster_endpoints("retry-prefill")
    assert eps[bad.url]["total_failures"] >= 1 and eps[d.url]["total_failures"] == 0
    assert_idle(g)


def test_decode_failure_is_retried_with_a_new_prefill(fleet: Fleet) -> None:
    g, p, bad = fleet.g, fleet.p_ok, fleet.d_fail
    failed0, registered0 = (
        bad.stats()["failed_injected"],
        p.stats()["pd"]["transfers"]["registered"],
    )
    for _ in range(4):
        out = client(g).completions.create(model="retry-decode", prompt=PROMPT, max_tokens=2)
        assert out.usage is not None and out.usage.completion_tokens == 2
    failures = bad.stats()["failed_injected"] - failed0
    assert failures >= 1
    # A retry re-pairs: every attempt had its own prefill leg and transfer.
    assert p.stats()["pd"]["transfers"]["registered"] - registered0 == 4 + failures
    eps = g.cluster_endpoints("retry-decode")
    assert eps[bad.url]["total_failures"] == failures and eps[p.url]["total_failures"] == 0
    assert metric(g, "smg_pd_leg_errors_total", cluster="retry-decode", leg="decode") >= 1
    assert_idle(g)


def test_a_stuck_prefill_times_out_before_any_decode(fleet: Fleet) -> None:
    g, p, d = fleet.g, fleet.p_hang, fleet.d_ok
    p0, legs0 = p.stats(), d.stats()["pd"]["legs"]
    status, doc, _ = http_json(
        g.url + "/v1/completions", "POST", {"model": "prefill-hangs", "prompt": PROMPT}
    )
    assert status == 504 and doc["error"]["code"] == "upstream_timeout"
    settle(lambda: p.stats()["aborted"] == p0["aborted"] + 1, "prefill leg aborted")
    assert p.stats()["hanging"] == 0 and d.stats()["pd"]["legs"] == legs0
    assert_idle(g)


def test_client_gone_during_the_prefill_aborts_it(fleet: Fleet) -> None:
    g, p, d = fleet.g, fleet.p_hang, fleet.d_ok
    p0, legs0 = p.stats(), d.stats()["pd"]["legs"]
    leave_when(
        g,
        "/v1/completions",
        {"model": "hang-long", "prompt": PROMPT},
        lambda: p.stats()["hanging"] == p0["hanging"] + 1,
    )
    settle(lambda: p.stats()["aborted"] == p0["aborted"] + 1, "prefill leg aborted")
    assert p.stats()["hanging"] == 0 and d.stats()["pd"]["legs"] == legs0
    assert_idle(g)


def test_decode_dropped_mid_stream_ends_with_an_error_and_leaks_nothing(fleet: Fleet) -> None:
    g = fleet.g
    dropped0 = fleet.d_drop.stats()["dropped"]
    got = 0
    with pytest.raises(openai.APIError):
        for _ in client(g).chat.completions.create(
            model="decode-drops",
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=50,
            stream=True,
        ):
            got += 1
    assert got >= 1
    assert fleet.d_drop.stats()["dropped"] == dropped0 + 1
    assert fleet.p_ok.stats()["running"] == 0
    assert_idle(g)
