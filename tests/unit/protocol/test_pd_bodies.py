"""What PD adds to bodies: bootstrap fields (one per sequence), vLLM legs, logprob merging."""

from __future__ import annotations

from typing import Any

import pytest

from smg.protocol.pd import (
    REMOTE_DECODE,
    bootstrap_fields,
    input_logprobs_by_index,
    merge_input_logprobs,
    new_room,
    sequence_count,
    vllm_decode_body,
    vllm_prefill_body,
    wants_input_logprobs,
)


@pytest.mark.parametrize(
    ("kind", "body", "count"),
    [
        ("chat", {"messages": []}, None),
        ("chat", {"messages": [], "n": 1}, None),
        ("chat", {"messages": [], "n": 3}, 3),
        ("completions", {"prompt": "x"}, None),
        ("completions", {"prompt": [1, 2, 3]}, None),  # token ids: one prompt
        ("completions", {"prompt": ["a", "b"]}, 2),
        ("completions", {"prompt": [[1, 2], [3]], "n": 2}, 4),
        ("generate", {"text": "x"}, None),
        ("generate", {"text": ["a", "b", "c"]}, 3),
        ("generate", {"input_ids": [1, 2]}, None),
        ("generate", {"input_ids": [[1], [2]]}, 2),
        ("generate", {"text": "x", "sampling_params": {"n": 2}}, 2),
        ("generate", {"text": ["a", "b"], "sampling_params": {"n": 2}}, 4),
        ("generate", {"text": "x", "n": 5}, None),  # /generate's n is in sampling_params
        ("chat", {"messages": [], "n": True}, None),
    ],
)
def test_sequences_are_prompts_times_n(kind: str, body: dict[str, Any], count: int | None) -> None:
    assert sequence_count(kind, body) == count


def test_single_request_gets_scalars_and_a_63_bit_room() -> None:
    f = bootstrap_fields("10.0.0.7", 8998, None)
    assert f["bootstrap_host"] == "10.0.0.7" and f["bootstrap_port"] == 8998
    assert isinstance(f["bootstrap_room"], int) and 0 <= f["bootstrap_room"] < 2**63
    assert bootstrap_fields("h", None, None)["bootstrap_port"] is None


def test_batch_gets_one_distinct_room_per_sequence() -> None:
    f = bootstrap_fields("h", 1234, 3)
    assert f["bootstrap_host"] == ["h"] * 3 and f["bootstrap_port"] == [1234] * 3
    rooms = f["bootstrap_room"]
    assert len(rooms) == 3 and len(set(rooms)) == 3
    assert all(0 <= r < 2**63 for r in rooms)


def test_grpc_rooms_fit_an_int32() -> None:
    assert all(0 <= new_room(31) < 2**31 for _ in range(200))


def test_input_logprobs_only_for_generate_with_return_logprob() -> None:
    assert wants_input_logprobs("generate", {"return_logprob": True})
    assert not wants_input_logprobs("generate", {})
    assert not wants_input_logprobs("chat", {"return_logprob": True})


def test_prefill_input_logprobs_come_first_per_output() -> None:
    prefill = {"meta_info": {"input_token_logprobs": [[None, 5, None], [-0.1, 6, None]]}}
    decode = {"meta_info": {"input_token_logprobs": [[-0.2, 7, None]], "x": 1}}
    lps = input_logprobs_by_index(prefill)
    assert merge_input_logprobs(lps, decode)
    assert decode["meta_info"]["input_token_logprobs"] == [
        [None, 5, None],
        [-0.1, 6, None],
        [-0.2, 7, None],
    ]
    batch_p = [
        {"index": 0, "meta_info": {"input_token_logprobs": [[None, 1, None]]}},
        {"index": 1, "meta_info": {"input_token_logprobs": [[None, 2, None]]}},
    ]
    batch_d: list[dict[str, Any]] = [
        {"index": 1, "meta_info": {"input_token_logprobs": []}},
        {"index": 0, "meta_info": {"input_token_logprobs": []}},
    ]
    assert merge_input_logprobs(input_logprobs_by_index(batch_p), batch_d)
    assert [d["meta_info"]["input_token_logprobs"][0][1] for d in batch_d] == [2, 1]


def test_answers_without_input_logprobs_are_left_alone() -> None:
    doc = {"meta_info": {"output_token_logprobs": []}}
    assert not merge_input_logprobs({0: [[None, 1, None]]}, doc)
    assert doc == {"meta_info": {"output_token_logprobs": []}}
    assert input_logprobs_by_index({"text": "x"}) == {}


def test_vllm_prefill_leg_asks_for_one_token_and_a_remote_decode() -> None:
    body = {
        "model": "m",
        "prompt": "x",
        "max_tokens": 50,
        "max_completion_tokens": 50,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    leg = vllm_prefill_body(body)
    assert leg["max_tokens"] == 1 and leg["max_completion_tokens"] == 1
    assert leg["stream"] is False and "stream_options" not in leg
    assert leg["kv_transfer_params"] == REMOTE_DECODE
    assert body["max_tokens"] == 50 and "kv_transfer_params" not in body  # not mutated
    assert "max_completion_tokens" not in vllm_prefill_body({"prompt": "x"})


def test_vllm_decode_leg_is_the_request_with_the_prefills_params() -> None:
    body = {"prompt": "x", "stream": True}
    params = {"do_remote_prefill": True, "remote_block_ids": [1, 2]}
    assert vllm_decode_body(body, params) == {**body, "kv_transfer_params": params}
    assert vllm_decode_body(body, None) is body
