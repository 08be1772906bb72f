"""The simulator's prefill and decode roles check what each leg carries (HTTP)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.sim.conftest import HOST, Sim, SimFactory, free_port

PROMPT = "The quick brown fox jumps over the lazy dog, " * 4


@pytest.fixture
def sglang_pair(start_sim: SimFactory) -> tuple[Sim, Sim, int]:
    """A SGLang-style prefill sim (with its bootstrap port) and a decode sim."""
    boot = free_port()
    prefill = start_sim(
        "--role", "prefill", "--pd-style", "sglang", "--bootstrap-port", str(boot),
        "--kv-timeout", "1",
    )  # fmt: skip
    decode = start_sim("--role", "decode", "--pd-style", "sglang", "--kv-timeout", "1")
    return prefill, decode, boot


def both(prefill: Sim, decode: Sim, path: str, p_body: Any, d_body: Any) -> list[Any]:
    """Send the two legs at the same time; [(status, doc) of prefill, of decode]."""
    with ThreadPoolExecutor(2) as pool:
        legs = [pool.submit(prefill.post, path, p_body), pool.submit(decode.post, path, d_body)]
        return [f.result() for f in legs]


def boot(port: int, room: Any, host: str = HOST) -> dict[str, Any]:
    return {"bootstrap_host": host, "bootstrap_port": port, "bootstrap_room": room}


def test_sglang_legs_with_the_same_room_hand_over_the_kv(
    sglang_pair: tuple[Sim, Sim, int],
) -> None:
    prefill, decode, port = sglang_pair
    body = {"text": PROMPT, "sampling_params": {"max_new_tokens": 5}, **boot(port, 12345)}
    (ps, pdoc), (ds, ddoc) = both(prefill, decode, "/generate", body, body)
    assert (ps, ds) == (200, 200), (pdoc, ddoc)
    assert pdoc["meta_info"]["completion_tokens"] == 1  # prefill answers the first token
    assert ddoc["meta_info"]["completion_tokens"] == 5
    p, d = prefill.stats()["pd"], decode.stats()["pd"]
    assert p["transfers"]["pulled"] == 1 and p["transfers"]["pending"] == 0
    assert d["pulls_ok"] == 1 and d["pulls_failed"] == 0
    assert p["keys"] == d["keys"] == ["12345"]


def test_sglang_decode_fails_when_its_room_is_not_the_prefills(
    sglang_pair: tuple[Sim, Sim, int],
) -> None:
    prefill, decode, port = sglang_pair
    body: dict[str, Any] = {"text": PROMPT, "sampling_params": {"max_new_tokens": 3}}
    (ps, _), (ds, ddoc) = both(
        prefill, decode, "/generate", {**body, **boot(port, 1)}, {**body, **boot(port, 2)}
    )
    assert ps == 200
    assert ds == 500
    assert "KV transfer 2" in ddoc["error"]["message"]
    d = decode.stats()
    assert d["pd"]["pulls_failed"] == 1 and d["failed"] == 1
    assert prefill.stats()["pd"]["transfers"]["pulled"] == 0


def test_sglang_decode_checks_the_kv_is_for_its_prompt(sglang_pair: tuple[Sim, Sim, int]) -> None:
    prefill, decode, port = sglang_pair
    p_body = {"text": PROMPT, **boot(port, 7)}
    d_body = {"text": PROMPT + " and more", **boot(port, 7)}
    (ps, _), (ds, ddoc) = both(prefill, decode, "/generate", p_body, d_body)
    assert (ps, ds) == (200, 500)
    assert "another prompt" in ddoc["error"]["message"]


def test_sglang_prefill_rejects_a_bootstrap_port_that_is_not_its_own(
    sglang_pair: tuple[Sim, Sim, int],
) -> None:
    prefill, _, port = sglang_pair
    status, doc = prefill.post("/generate", {"text": PROMPT, **boot(port + 1, 3)})
    assert status == 400
    assert doc["error"]["param"] == "bootstrap_port"
    status, doc = prefill.post("/generate", {"text": PROMPT, **boot(port, 3, host="10.9.9.9")})
    assert (status, doc["error"]["param"]) == (400, "bootstrap_host")
    status, doc = prefill.post("/generate", {"text": PROMPT})
    assert (status, doc["error"]["param"]) == (400, "bootstrap_room")
    assert prefill.stats()["pd"]["rejected"] == 3


def test_sglang_batches_need_one_room_per_sequence(sglang_pair: tuple[Sim, Sim, int]) -> None:
    prefill, decode, port = sglang_pair
    texts = [PROMPT, PROMPT + " again"]
    body = {"text": texts, "sampling_params": {"max_new_tokens": 2}, **boot(port, [21, 22])}
    (ps, pdoc), (ds, ddoc) = both(prefill, decode, "/generate", body, body)
    assert (ps, ds) == (200, 200), (pdoc, ddoc)
    assert [o["index"] for o in ddoc] == [0, 1]
    # n = 2 of one prompt: two sequences, so two rooms; one room is refused.
    one = {"text": PROMPT, "sampling_params": {"n": 2}, **boot(port, 5)}
    status, doc = prefill.post("/generate", one)
    assert (status, doc["error"]["param"]) == (400, "bootstrap_room")
    two = {**one, "bootstrap_room": [31, 32]}
    (ps, pdoc), (ds, ddoc) = both(prefill, decode, "/generate", two, two)
    assert (ps, ds) == (200, 200), (pdoc, ddoc)
    assert len(ddoc) == 2
    assert decode.stats()["pd"]["pulls_ok"] == 4


def test_sglang_input_logprobs_come_from_the_prefill_leg(
    sglang_pair: tuple[Sim, Sim, int],
) -> None:
    prefill, decode, port = sglang_pair
    body = {
        "text": PROMPT,
        "sampling_params": {"max_new_tokens": 2},
        "return_logprob": True,
        "logprob_start_len": 0,
        **boot(port, 99),
    }
    (ps, pdoc), (ds, ddoc) = both(prefill, decode, "/generate", body, body)
    assert (ps, ds) == (200, 200)
    prompt_tokens = pdoc["meta_info"]["prompt_tokens"]
    lps = pdoc["meta_info"]["input_token_logprobs"]
    assert len(lps) == prompt_tokens and lps[0][0] is None
    assert ddoc["meta_info"]["input_token_logprobs"] == []
    assert len(ddoc["meta_info"]["output_token_logprobs"]) == 2


@pytest.fixture
def vllm_pair(start_sim: SimFactory) -> tuple[Sim, Sim]:
    """A vLLM-style (kv_transfer_params) prefill sim and decode sim."""
    prefill = start_sim(
        "--role", "prefill", "--pd-style", "vllm", "--bootstrap-port", str(free_port()),
        "--kv-timeout", "1",
    )  # fmt: skip
    decode = start_sim("--role", "decode", "--pd-style", "vllm", "--kv-timeout", "1")
    return prefill, decode


REMOTE_DECODE = {
    "do_remote_decode": True,
    "do_remote_prefill": False,
    "remote_engine_id": None,
    "remote_block_ids": None,
    "remote_host": None,
    "remote_port": None,
}


def test_vllm_decode_takes_only_params_a_prefill_issued_and_only_once(
    vllm_pair: tuple[Sim, Sim],
) -> None:
    prefill, decode = vllm_pair
    chat = {"model": "m", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 4}
    status, doc = prefill.post(
        "/v1/chat/completions",
        {**chat, "max_tokens": 1, "stream": False, "kv_transfer_params": REMOTE_DECODE},
    )
    assert status == 200, doc
    params = doc["kv_transfer_params"]
    assert params["do_remote_prefill"] is True and params["remote_host"] == HOST
    assert params["remote_port"] == prefill.stats()["pd"]["bootstrap_port"]
    status, out = decode.post("/v1/chat/completions", {**chat, "kv_transfer_params": params})
    assert status == 200, out
    assert out["usage"]["completion_tokens"] == 4
    # The same params again: that KV was handed over already.
    status, again = decode.post("/v1/chat/completions", {**chat, "kv_transfer_params": params})
    assert status == 500 and "already pulled" in again["error"]["message"]
    forged = {**params, "transfer_id": "not-issued"}
    status, doc = decode.post("/v1/chat/completions", {**chat, "kv_transfer_params": forged})
    assert status == 500
    status, doc = decode.post("/v1/chat/completions", chat)
    assert (status, doc["error"]["param"]) == (400, "kv_transfer_params")
    d = decode.stats()["pd"]
    assert (d["pulls_ok"], d["pulls_failed"], d["rejected"]) == (1, 2, 1)


def test_vllm_prefill_leg_must_ask_for_one_token_without_streaming(
    vllm_pair: tuple[Sim, Sim],
) -> None:
    prefill, _ = vllm_pair
    body = {"model": "m", "prompt": PROMPT, "kv_transfer_params": REMOTE_DECODE}
    status, doc = prefill.post("/v1/completions", {**body, "max_tokens": 5})
    assert (status, doc["error"]["param"]) == (400, "max_tokens")
    status, doc = prefill.post("/v1/completions", {**body, "max_tokens": 1, "stream": True})
    assert (status, doc["error"]["param"]) == (400, "stream")
    status, doc = prefill.post("/v1/completions", {**body, "max_tokens": 1})
    assert status == 200 and doc["kv_transfer_params"]["transfer_id"]


def test_a_prefill_cut_off_fails_its_transfer_and_a_refused_one_never_had_one(
    start_sim: SimFactory,
) -> None:
    port = free_port()
    prefill = start_sim(
        "--role", "prefill", "--bootstrap-port", str(port), "--ttft-base-ms", "3000",
    )  # fmt: skip
    decode = start_sim("--role", "decode", "--kv-timeout", "5")
    body = {"text": PROMPT, **boot(port, 4242)}
    with ThreadPoolExecutor(2) as pool:
        # The client of the prefill leg gives up in the middle of the prefill.
        cut = pool.submit(prefill.request, "POST", "/generate", body, timeout=0.5)
        pulled = pool.submit(decode.post, "/generate", body)
        with pytest.raises(TimeoutError):
            cut.result()
        ds, ddoc = pulled.result()
    assert ds == 500
    assert "failed (410)" in ddoc["error"]["message"]  # told at once, not after the timeout
    assert prefill.stats()["pd"]["transfers"]["failed"] == 1

    refusing = start_sim(
        "--role", "prefill", "--bootstrap-port", str(free_port()), "--fail-rate", "1",
        "--kv-timeout", "0.5",
    )  # fmt: skip
    port = refusing.stats()["pd"]["bootstrap_port"]
    body = {"text": PROMPT, **boot(port, 4343)}
    (ps, _), (ds, ddoc) = both(refusing, decode, "/generate", body, body)
    assert ps == 503
    assert ds == 500 and "no KV transfer 4343 was registered" in ddoc["error"]["message"]
    assert refusing.stats()["pd"]["transfers"]["registered"] == 0
