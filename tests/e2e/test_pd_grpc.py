"""PD disaggregation over gRPC (sglang_grpc: DisaggregatedParams; vllm_grpc:
kv_transfer_params_json), with a real gateway and real gRPC sims in PD roles.

The gRPC sims check the legs as the HTTP ones do (sim/pd.py): the decode engine pulls
the room / transfer id its request names from the prefill engine before decoding.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

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
PROMPT = list(range(10, 74))


@dataclass
class Fleet:
    g: Gateway
    sims: dict[str, PdSim]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("pd-grpc")
    with ExitStack() as stack:
        sims: dict[str, PdSim] = {}

        def start(name: str, role: str, style: str, *extra: str) -> PdSim:
            s = stack.enter_context(pd_sim(tmp, role, style, *extra, grpc_mode=True))
            sims[name] = s
            return s

        sg_p = start("sg-p", "prefill", "sglang")
        sg_hang = start("sg-hang", "prefill", "sglang", "--hang-rate", "1")
        sg_d = start("sg-d", "decode", "sglang", "--itl-ms", "1")
        sg_drop = start("sg-drop", "decode", "sglang", "--drop-after-chunks", "3", "--itl-ms", "5")
        vl_p = start("vl-p", "prefill", "vllm")
        vl_fail = start("vl-pfail", "prefill", "vllm", "--fail-rate", "1")
        vl_d = start("vl-d", "decode", "vllm", "--itl-ms", "1")
        vl_dfail = start("vl-dfail", "decode", "vllm", "--fail-rate", "1")
        clusters = [
            pd_cluster("sglang", [sg_p], [sg_d], "sglang", "sglang_grpc"),
            pd_cluster(
                "sglang-hang",
                [sg_hang],
                [sg_d],
                "sglang",
                "sglang_grpc",
                retry_policy={"max_retries": 0, "per_try_timeout": "1s"},
            ),
            pd_cluster(
                "sglang-hang-long",
                [sg_hang],
                [sg_d],
                "sglang",
                "sglang_grpc",
                retry_policy={"max_retries": 0},
            ),
            pd_cluster("sglang-drop", [sg_p], [sg_drop], "sglang", "sglang_grpc"),
            pd_cluster("vllm", [vl_p], [vl_d], "vllm", "vllm_grpc"),
            pd_cluster("vllm-retry-prefill", [vl_fail, vl_p], [vl_d], "vllm", "vllm_grpc"),
            pd_cluster("vllm-retry-decode", [vl_p], [vl_dfail, vl_d], "vllm", "vllm_grpc"),
        ]
        g = stack.enter_context(gateway(tmp, pd_gateway_config(clusters)))
        yield Fleet(g, sims)


def post_stream(g: Gateway, body: dict[str, Any]) -> tuple[int, list[Any]]:
    host, port = g.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.request("POST", "/generate", json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    events: list[Any] = []
    for line in raw.decode().splitlines():
        if line.startswith("data: "):
            events.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
    return resp.status, events


def keys(s: PdSim) -> list[str]:
    found: list[str] = s.stats()["pd"]["keys"]
    return found


@pytest.mark.parametrize("style", ["sglang", "vllm"])
def test_generate_stream_and_whole_through_a_grpc_pair(fleet: Fleet, style: str) -> None:
    g = fleet.g
    p = fleet.sims["sg-p" if style == "sglang" else "vl-p"]
    d = fleet.sims["sg-d" if style == "sglang" else "vl-d"]
    k0 = len(keys(p))
    body: dict[str, Any] = {
        "model": style,
        "input_ids": PROMPT,
        "sampling_params": {"max_new_tokens": 5},
    }
    status, doc, _ = http_json(g.url + "/generate", "POST", body)
    assert status == 200, doc
    assert len(doc["output_ids"]) == 5  # the decode leg's answer, not the prefill's 1 token
    status, events = post_stream(g, {**body, "stream": True})
    assert status == 200 and events[-1] == "[DONE]"
    assert [i for e in events[:-1] for i in e["output_ids"]] == doc["output_ids"]
    new = keys(p)[k0:]
    assert len(new) == 2 and new == keys(d)[-2:]  # same room / transfer id on both legs
    assert d.stats()["pd"]["pulls_failed"] == 0
    assert metric(g, "smg_pd_prefill_duration_seconds_count", cluster=style) >= 2
    assert_idle(g)


def test_sglang_stuck_prefill_times_out_and_the_decode_call_is_aborted(fleet: Fleet) -> None:
    g, p, d = fleet.g, fleet.sims["sg-hang"], fleet.sims["sg-d"]
    d0, p0 = d.stats(), p.stats()
    status, doc, _ = http_json(
        g.url + "/generate", "POST", {"model": "sglang-hang", "input_ids": PROMPT}
    )
    assert status == 504 and doc["error"]["code"] == "upstream_timeout"
    settle(lambda: d.stats()["abort_rpcs"] > d0["abort_rpcs"], "Abort sent to the decode engine")
    settle(lambda: p.stats()["abort_rpcs"] > p0["abort_rpcs"], "Abort sent to the prefill engine")
    assert d.stats()["running"] == 0
    eps = g.cluster_endpoints("sglang-hang")
    assert eps[p.url]["total_failures"] == 1 and eps[d.url]["total_failures"] == 0
    assert_idle(g)


def test_sglang_client_gone_aborts_both_calls(fleet: Fleet) -> None:
    g, p, d = fleet.g, fleet.sims["sg-hang"], fleet.sims["sg-d"]
    d0, p0 = d.stats(), p.stats()
    leave_when(
        g,
        "/generate",
        {"model": "sglang-hang-long", "input_ids": PROMPT},
        lambda: (
            p.stats()["total_requests"] > p0["total_requests"]
            and d.stats()["total_requests"] > d0["total_requests"]
        ),
    )
    settle(lambda: d.stats()["abort_rpcs"] > d0["abort_rpcs"], "Abort sent to the decode engine")
    settle(lambda: p.stats()["abort_rpcs"] > p0["abort_rpcs"], "Abort sent to the prefill engine")
    assert_idle(g)


def test_sglang_decode_dropped_mid_stream_ends_with_an_error_event(fleet: Fleet) -> None:
    g = fleet.g
    status, events = post_stream(
        g,
        {
            "model": "sglang-drop",
            "input_ids": PROMPT,
            "sampling_params": {"max_new_tokens": 30},
            "stream": True,
        },
    )
    assert status == 200
    assert any("output_ids" in e for e in events if isinstance(e, dict))  # it had started
    assert isinstance(events[-1], dict) and "error" in events[-1]
    assert fleet.sims["sg-p"].stats()["running"] == 0
    assert_idle(g)


@pytest.mark.parametrize("cluster", ["vllm-retry-prefill", "vllm-retry-decode"])
def test_vllm_failure_on_either_leg_is_retried_on_a_new_pair(fleet: Fleet, cluster: str) -> None:
    g = fleet.g
    bad = fleet.sims["vl-pfail" if cluster.endswith("prefill") else "vl-dfail"]
    failed0 = bad.stats()["failed_injected"]
    for _ in range(4):
        status, doc, _ = http_json(
            g.url + "/generate",
            "POST",
            {"model": cluster, "input_ids": PROMPT, "sampling_params": {"max_new_tokens": 2}},
        )
        assert status == 200, doc
        assert len(doc["output_ids"]) == 2
    failures = bad.stats()["failed_injected"] - failed0
    assert failures >= 1
    eps = g.cluster_endpoints(cluster)
    assert eps[bad.url]["total_failures"] == failures
    good = [u for u, e in eps.items() if u != bad.url]
    assert all(eps[u]["total_failures"] == 0 for u in good)
    assert_idle(g)


PLAIN_OUT = "<think>\n\n</think>\n\nThe capital of France is Paris. Ça va? 🌍 Yes.<|im_end|>"
PLAIN_TEXT = "The capital of France is Paris. Ça va? 🌍 Yes."


@pytest.fixture(scope="module")
def chat_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """PD clusters behind the chat_template and tokenize filters (a real Qwen3 tokenizer)."""
    from tests.support.tokenizer_assets import asset_dir

    tmp = tmp_path_factory.mktemp("pd-grpc-chat")
    tok_dir = str(asset_dir("qwen3"))
    script = tmp / "plain.json"
    script.write_text(json.dumps([PLAIN_OUT]))
    with ExitStack() as stack:
        sims: dict[str, PdSim] = {}
        for style in ("sglang", "vllm"):
            for role in ("prefill", "decode"):
                extra = (
                    ("--script", str(script), "--tokenizer", tok_dir) if role == "decode" else ()
                )
                sims[f"{style}-{role}"] = stack.enter_context(
                    pd_sim(tmp, role, style, *extra, grpc_mode=True)
                )
        clusters = [
            pd_cluster(
                f"qwen3-{style}",
                [sims[f"{style}-prefill"]],
                [sims[f"{style}-decode"]],
                style,
                f"{style}_grpc",
            )
            for style in ("sglang", "vllm")
        ]
        doc = pd_gateway_config(clusters)
        doc["models"] = {c["name"]: {"tokenizer": tok_dir} for c in clusters}
        doc["filters"].update(
            {"chat_template": {"type": "chat_template"}, "tokenize": {"type": "tokenize"}}
        )
        doc["listeners"][0]["filters"] = ["request_id", "chat_template", "tokenize", "router"]
        g = stack.enter_context(gateway(tmp, doc))
        yield Fleet(g, sims)


@pytest.mark.parametrize("style", ["sglang", "vllm"])
def test_chat_through_a_grpc_pair_stream_and_whole(chat_fleet: Fleet, style: str) -> None:
    import openai

    g = chat_fleet.g
    p, d = chat_fleet.sims[f"{style}-prefill"], chat_fleet.sims[f"{style}-decode"]
    c = openai.OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0, timeout=20)
    msgs: Any = [{"role": "user", "content": "What is the capital of France?"}]
    whole = c.chat.completions.create(model=f"qwen3-{style}", messages=msgs)
    assert whole.choices[0].message.content == PLAIN_TEXT  # the decode leg's tokens
    assert whole.choices[0].finish_reason == "stop"
    text = "".join(
        ch.choices[0].delta.content or ""
        for ch in c.chat.completions.create(model=f"qwen3-{style}", messages=msgs, stream=True)
        if ch.choices
    )
    assert text == PLAIN_TEXT
    assert keys(p) == keys(d) and len(keys(d)) == 2
    assert d.stats()["pd"]["pulls_ok"] == 2
    assert_idle(g)
