"""PD disaggregation, SGLang style over HTTP: a real gateway in front of prefill/decode sims.

The sims check what each leg carries (sim/pd.py): a decode leg only answers once it
pulled, from the prefill sim the request names, the KV of the same bootstrap room and
prompt. So every 200 below proves the pairing and the room injection end to end.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from tests.support.procs import (
    HOST,
    Gateway,
    Proc,
    free_port,
    gateway,
    http_json,
    smg_cmd,
    wait_until,
)

pytestmark = pytest.mark.e2e
PROMPT = "Tell me everything about the prefill and decode of large language models. " * 3


@dataclass
class Fleet:
    g: Gateway
    p_ok: PdSim
    p_fail: PdSim
    p_hang: PdSim
    p_slow: PdSim
    d_ok: PdSim
    d_drop: PdSim
    d_fail: PdSim
    d_slow: PdSim


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("pd-sglang-http")
    with ExitStack() as stack:

        def start(role: str, *extra: str) -> PdSim:
            return stack.enter_context(pd_sim(tmp, role, "sglang", *extra))

        p_ok = start("prefill")
        p_fail = start("prefill", "--fail-rate", "1", "--fail-status", "500")
        p_hang = start("prefill", "--hang-rate", "1")
        p_slow = start("prefill", "--ttft-base-ms", "3000")
        d_ok = start("decode", "--itl-ms", "1")
        d_drop = start("decode", "--drop-after-chunks", "3", "--itl-ms", "5")
        d_fail = start("decode", "--fail-rate", "1")
        d_slow = start("decode", "--itl-ms", "100")
        no_retry = {"retry_policy": {"max_retries": 0}}
        dead = PdSim(f"http://{HOST}:{free_port()}", free_port())
        clusters = [
            pd_cluster("ok", [p_ok], [d_ok], "sglang"),
            pd_cluster("retry-prefill", [p_fail, p_ok], [d_ok], "sglang"),
            pd_cluster("retry-decode", [p_ok], [d_fail, d_ok], "sglang"),
            pd_cluster("prefill-fails", [p_fail], [d_ok], "sglang", **no_retry),
            pd_cluster(
                "prefill-hangs",
                [p_hang],
                [d_ok],
                "sglang",
                retry_policy={"max_retries": 0, "per_try_timeout": "1s"},
            ),
            pd_cluster("hang-long", [p_hang], [d_ok], "sglang", **no_retry),
            pd_cluster("decode-fails", [p_slow], [d_fail], "sglang", **no_retry),
            pd_cluster("decode-drops", [p_ok], [d_drop], "sglang"),
            pd_cluster("slow-decode", [p_ok], [d_slow], "sglang"),
            pd_cluster(
                "dead-prefill",
                [dead],
                [d_ok],
                "sglang",
                health_check={"interval": "100ms", "timeout": "1s", "unhealthy_threshold": 1},
            ),
        ]
        g = stack.enter_context(gateway(tmp, pd_gateway_config(clusters)))
        yield Fleet(g, p_ok, p_fail, p_hang, p_slow, d_ok, d_drop, d_fail, d_slow)


def client(g: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0, timeout=20)


def sse(raw: bytes) -> list[Any]:
    out: list[Any] = []
    for line in raw.decode().splitlines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def post_raw(g: Gateway, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    host, port = g.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def new_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys: list[str] = after["pd"]["keys"]
    return keys[len(before["pd"]["keys"]) :]


def test_every_path_stream_and_whole_goes_through_one_pair(fleet: Fleet) -> None:
    g, p, d = fleet.g, fleet.p_ok, fleet.d_ok
    p0, d0 = p.stats(), d.stats()
    status, doc, _ = http_json(
        g.url + "/generate",
        "POST",
        {"model": "ok", "text": PROMPT, "sampling_params": {"max_new_tokens": 6}},
    )
    assert status == 200, doc
    assert doc["meta_info"]["completion_tokens"] == 6  # the decode leg's answer
    status, raw = post_raw(
        g,
        "/generate",
        {"model": "ok", "text": PROMPT, "sampling_params": {"max_new_tokens": 4}, "stream": True},
    )
    events = sse(raw)
    assert status == 200 and events[-1] == "[DONE]"
    assert events[-2]["meta_info"]["completion_tokens"] == 4
    c = client(g)
    chat = c.chat.completions.create(
        model="ok", messages=[{"role": "user", "content": PROMPT}], max_tokens=5
    )
    assert chat.usage is not None and chat.usage.completion_tokens == 5
    pieces = [
        ch.choices[0].delta.content or ""
        for ch in c.chat.completions.create(
            model="ok", messages=[{"role": "user", "content": PROMPT}], max_tokens=5, stream=True
        )
        if ch.choices
    ]
    assert "".join(pieces) == chat.choices[0].message.content  # deterministic sim
    comp = c.completions.create(model="ok", prompt=PROMPT, max_tokens=3)
    assert comp.usage is not None and comp.usage.completion_tokens == 3
    streamed = "".join(
        ch.choices[0].text
        for ch in c.completions.create(model="ok", prompt=PROMPT, max_tokens=3, stream=True)
    )
    assert streamed == comp.choices[0].text
    p1, d1 = p.stats(), d.stats()
    # Six requests: six rooms, the same on both legs, each pulled once by the decode sim.
    rooms = new_keys(p0, p1)
    assert len(rooms) == 6 and rooms == new_keys(d0, d1)
    assert p1["pd"]["transfers"]["pulled"] - p0["pd"]["transfers"]["pulled"] == 6
    assert d1["pd"]["pulls_failed"] == d0["pd"]["pulls_failed"]
    assert metric(g, "smg_pd_prefill_duration_seconds_count", cluster="ok") >= 6
    assert metric(g, "smg_pd_time_to_first_token_seconds_count", cluster="ok") >= 3
    assert_idle(g)


def test_batches_and_n_carry_one_room_per_sequence(fleet: Fleet) -> None:
    g, p, d = fleet.g, fleet.p_ok, fleet.d_ok
    p0, d0 = p.stats(), d.stats()
    status, doc, _ = http_json(
        g.url + "/generate",
        "POST",
        {"model": "ok", "text": [PROMPT, PROMPT + "!"], "sampling_params": {"max_new_tokens": 2}},
    )
    assert status == 200 and [o["index"] for o in doc] == [0, 1]
    comp = client(g).completions.create(model="ok", prompt=[PROMPT, "other"], max_tokens=2)
    assert len(comp.choices) == 2
    chat = client(g).chat.completions.create(
        model="ok", messages=[{"role": "user", "content": PROMPT}], max_tokens=2, n=3
    )
    assert len(chat.choices) == 3
    rooms = new_keys(p0, p.stats())
    assert len(rooms) == 2 + 2 + 3 and len(set(rooms)) == 7
    assert rooms == new_keys(d0, d.stats())
    assert_idle(g)


def test_input_logprobs_of_the_prefill_come_first(fleet: Fleet) -> None:
    g = fleet.g
    body = {
        "model": "ok",
        "text": PROMPT,
        "sampling_params": {"max_new_tokens": 3},
        "return_logprob": True,
        "logprob_start_len": 0,
    }
    status, doc, _ = http_json(g.url + "/generate", "POST", body)
    assert status == 200, doc
    meta = doc["meta_info"]
    lps = meta["input_token_logprobs"]  # the decode sim alone answers []
    assert len(lps) == meta["prompt_tokens"] and lps[0][0] is None and lps[1][0] < 0
    assert len(meta["output_token_logprobs"]) == 3
    status, raw = post_raw(g, "/generate", {**body, "stream": True})
    chunks = sse(raw)[:-1]
    assert status == 200 and chunks
    assert all(c["meta_info"]["input_token_logprobs"] == lps for c in chunks)
    assert_idle(g)


def test_prefill_failure_is_retried_on_a_new_pair(fleet: Fleet) -> None:
    g, bad = fleet.g, fleet.p_fail
    failed0, aborted0 = bad.stats()["failed_injected"], fleet.d_ok.stats()["aborted"]
    c = client(g)
    for _ in range(4):
        out = c.completions.create(model="retry-prefill", prompt=PROMPT, max_tokens=2)
        assert out.usage is not None and out.usage.completion_tokens == 2
    failures = bad.stats()["failed_injected"] - failed0
    assert failures >= 1
    # Each failed prefill aborted the decode leg that was waiting for its KV.
    settle(lambda: fleet.d_ok.stats()["aborted"] - aborted0 == failures, "decode legs aborted")
    eps = g.cluster_endpoints("retry-prefill")
    assert eps[bad.url]["total_failures"] == failures
    assert eps[fleet.p_ok.url]["total_failures"] == 0
    assert eps[fleet.d_ok.url]["total_failures"] == 0  # not blamed for its prefill
    assert eps[bad.url]["role"] == "prefill" and eps[fleet.d_ok.url]["role"] == "decode"
    assert metric(g, "smg_pd_leg_errors_total", cluster="retry-prefill", leg="prefill") >= 1
    assert_idle(g)


def test_decode_failure_is_retried_on_another_decode(fleet: Fleet) -> None:
    g, bad = fleet.g, fleet.d_fail
    before = bad.stats()["failed_injected"]
    for _ in range(4):
        status, doc, _ = http_json(
            g.url + "/generate", "POST", {"model": "retry-decode", "text": PROMPT}
        )
        assert status == 200, doc
    failures = bad.stats()["failed_injected"] - before
    assert failures >= 1
    eps = g.cluster_endpoints("retry-decode")
    assert eps[bad.url]["total_failures"] == failures
    assert eps[fleet.p_ok.url]["total_failures"] == 0
    assert_idle(g)


def test_prefill_failure_without_retries_is_a_well_formed_error(fleet: Fleet) -> None:
    g = fleet.g
    aborted0 = fleet.d_ok.stats()["aborted"]
    with pytest.raises(openai.APIStatusError) as ei:
        client(g).chat.completions.create(
            model="prefill-fails", messages=[{"role": "user", "content": PROMPT}]
        )
    assert ei.value.status_code == 500
    assert ei.value.body is not None and "simulated failure" in json.dumps(ei.value.body)
    settle(lambda: fleet.d_ok.stats()["aborted"] == aborted0 + 1, "decode leg aborted")
    assert fleet.d_ok.stats()["running"] == 0
    assert_idle(g)


def test_a_stuck_prefill_times_out_and_both_legs_are_aborted(fleet: Fleet) -> None:
    g, p, d = fleet.g, fleet.p_hang, fleet.d_ok
    p0, d0 = p.stats(), d.stats()
    status, doc, _ = http_json(
        g.url + "/generate", "POST", {"model": "prefill-hangs", "text": PROMPT}
    )
    assert status == 504 and doc["error"]["code"] == "upstream_timeout"
    settle(lambda: p.stats()["hanging"] == 0, "prefill released")
    # The prefill's timeout closes its connection first, which fails the KV transfer: the
    # decode engine ends its leg on that or on the gateway's close, whichever it sees first.
    settle(
        lambda: d.stats()["aborted"] + d.stats()["failed"] == d0["aborted"] + d0["failed"] + 1,
        "decode leg ended",
        lambda: f"decode before {d0}, after {d.stats()}",
    )
    assert d.stats()["running"] == 0
    assert p.stats()["aborted"] == p0["aborted"] + 1
    eps = g.cluster_endpoints("prefill-hangs")
    assert eps[p.url]["total_failures"] == 1 and eps[d.url]["total_failures"] == 0
    assert_idle(g)


def test_a_failing_decode_aborts_the_running_prefill(fleet: Fleet) -> None:
    g, p = fleet.g, fleet.p_slow  # its prefill takes 3 s
    p0 = p.stats()
    status, doc, _ = http_json(
        g.url + "/generate", "POST", {"model": "decode-fails", "text": PROMPT}
    )
    assert status == 503, doc
    settle(lambda: p.stats()["aborted"] == p0["aborted"] + 1, "prefill leg aborted")
    p1 = p.stats()
    assert p1["running"] == 0 and p1["completed"] == p0["completed"]
    assert p1["pd"]["transfers"]["failed"] == p0["pd"]["transfers"]["failed"] + 1
    assert metric(g, "smg_pd_leg_errors_total", cluster="decode-fails", leg="decode") >= 1
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
    assert got >= 1  # the stream had started: the error came as an event
    assert fleet.d_drop.stats()["dropped"] == dropped0 + 1
    assert fleet.p_ok.stats()["running"] == 0
    eps = g.cluster_endpoints("decode-drops")
    assert eps[fleet.d_drop.url]["total_failures"] >= 1
    assert eps[fleet.p_ok.url]["total_failures"] == 0
    assert_idle(g)


def test_client_gone_while_waiting_aborts_both_legs(fleet: Fleet) -> None:
    g, p, d = fleet.g, fleet.p_hang, fleet.d_ok
    p0, d0 = p.stats(), d.stats()
    leave_when(
        g,
        "/generate",
        {"model": "hang-long", "text": PROMPT},
        lambda: (
            p.stats()["hanging"] == p0["hanging"] + 1
            and d.stats()["total_requests"] == d0["total_requests"] + 1
        ),
    )
    settle(
        lambda: d.stats()["aborted"] == d0["aborted"] + 1,
        "decode leg aborted",
        lambda: f"decode before {d0}, after {d.stats()}",
    )
    settle(lambda: p.stats()["aborted"] == p0["aborted"] + 1, "prefill leg aborted")
    assert p.stats()["hanging"] == 0 and d.stats()["running"] == 0
    assert_idle(g)


def test_client_gone_mid_stream_aborts_the_decode(fleet: Fleet) -> None:
    g, d = fleet.g, fleet.d_slow
    d0 = d.stats()
    host, port = g.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body = {
        "model": "slow-decode",
        "text": PROMPT,
        "sampling_params": {"max_new_tokens": 100},
        "stream": True,
    }
    conn.request("POST", "/generate", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.fp is not None and resp.fp.readline()  # the stream is flowing
    conn.close()
    settle(lambda: d.stats()["aborted"] == d0["aborted"] + 1, "decode leg aborted")
    assert d.stats()["running"] == 0
    assert_idle(g)


def test_health_checks_cover_the_prefill_group(fleet: Fleet) -> None:
    g = fleet.g
    ep = next(e for e in g.cluster_endpoints("dead-prefill").values() if e["role"] == "prefill")
    assert wait_until(lambda: not g.cluster_endpoints("dead-prefill")[ep["url"]]["available"])
    status, doc, _ = http_json(g.url + "/generate", "POST", {"model": "dead-prefill", "text": "x"})
    assert status == 503 and doc["error"]["code"] == "no_healthy_upstream"
    assert metric(g, "smg_pd_pairing_failures_total", cluster="dead-prefill", group="prefill") >= 1
    assert_idle(g)


def test_launch_pd_disaggregation_end_to_end(tmp_path: Path) -> None:
    with (
        pd_sim(tmp_path, "prefill", "sglang") as p,
        pd_sim(tmp_path, "decode", "sglang") as d,
    ):
        port, admin = free_port(), free_port()
        flags = f"--prefill {p.url} {p.bootstrap_port} --decode {d.url} --prefill-policy "
        flags += (
            f"cache_aware --decode-policy least_request --port {port} --prometheus-port {admin}"
        )
        proc = Proc(
            smg_cmd("launch", "--pd-disaggregation", *flags.split()), tmp_path / "launch.log"
        )
        try:
            url = f"http://{HOST}:{port}"
            assert wait_until(lambda: http_json(f"http://{HOST}:{admin}/ready")[0] == 200, 20), (
                proc.output()
            )
            status, doc, _ = http_json(
                url + "/generate",
                "POST",
                {"text": PROMPT, "sampling_params": {"max_new_tokens": 3}},
            )
            assert status == 200, doc
            assert doc["meta_info"]["completion_tokens"] == 3
            assert p.stats()["pd"]["keys"] == d.stats()["pd"]["keys"]
            assert d.stats()["pd"]["pulls_ok"] == 1
        finally:
            assert proc.stop() == 0, proc.output()[-2000:]
