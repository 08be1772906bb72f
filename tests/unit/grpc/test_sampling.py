"""Sampling params: OpenAI / SGLang fields → neutral → each engine's protobuf."""

from __future__ import annotations

import json

import pytest
from smg_grpc_proto import sglang_scheduler_pb2, trtllm_service_pb2, vllm_engine_pb2

from smg.errors import BadRequest
from smg.upstreams.grpc.sampling import (
    SamplingParams,
    from_openai,
    from_sglang,
    to_sglang,
    to_trtllm,
    to_vllm,
)

FULL = {
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "min_p": 0.05,
    "frequency_penalty": 0.1,
    "presence_penalty": -0.2,
    "repetition_penalty": 1.1,
    "seed": 42,
    "max_completion_tokens": 64,
    "max_tokens": 10,
    "stop": "###",
    "stop_token_ids": [7, 8],
    "n": 2,
    "logprobs": True,
    "top_logprobs": 3,
    "logit_bias": {"5": -100},
}


def test_openai_fields_map_to_vllm() -> None:
    sp = from_openai(FULL)
    assert sp.max_tokens == 64  # max_completion_tokens wins over the legacy field
    m = to_vllm(sp, vllm_engine_pb2)
    assert m.temperature == pytest.approx(0.5) and m.top_p == pytest.approx(0.9)
    assert (m.top_k, m.max_tokens, m.seed, m.n, m.logprobs) == (40, 64, 42, 2, 3)
    assert m.min_p == pytest.approx(0.05) and m.repetition_penalty == pytest.approx(1.1)
    assert list(m.stop) == ["###"] and list(m.stop_token_ids) == [7, 8]
    assert dict(m.logit_bias) == {5: -100.0}
    assert m.WhichOneof("constraint") is None


def test_unset_fields_get_neutral_values_not_proto_zeros() -> None:
    m = to_vllm(SamplingParams(), vllm_engine_pb2)
    assert (m.temperature, m.top_p, m.repetition_penalty) == (1.0, 1.0, 1.0)
    assert not m.HasField("max_tokens") and not m.HasField("seed")
    assert not m.HasField("logprobs")
    s = to_sglang(SamplingParams(), sglang_scheduler_pb2)
    assert (s.temperature, s.top_p, s.top_k) == (1.0, 1.0, -1)
    assert not s.HasField("max_new_tokens")


def test_openai_fields_map_to_sglang_and_trtllm() -> None:
    sp = from_openai(FULL)
    s = to_sglang(sp, sglang_scheduler_pb2)
    assert (s.top_k, s.max_new_tokens, s.n) == (40, 64, 2)
    assert dict(s.logit_bias) == {"5": -100.0}
    req = trtllm_service_pb2.GenerateRequest()
    to_trtllm(sp, trtllm_service_pb2, req)
    c = req.sampling_config
    assert (c.top_k, c.seed, c.num_return_sequences, req.max_tokens) == (40, 42, 2, 64)
    assert req.output_config.logprobs == 3
    assert list(req.stop_token_ids) == [7, 8]


def test_completions_logprobs_is_a_count() -> None:
    sp = from_openai({"logprobs": 2})
    assert sp.logprobs and sp.top_logprobs == 2
    assert to_vllm(sp, vllm_engine_pb2).logprobs == 2
    assert to_vllm(from_openai({"logprobs": False}), vllm_engine_pb2).HasField("logprobs") is False


def test_response_format_json_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    sp = from_openai(body)
    assert json.loads(to_vllm(sp, vllm_engine_pb2).json_schema) == schema
    assert json.loads(to_sglang(sp, sglang_scheduler_pb2).json_schema) == schema
    req = trtllm_service_pb2.GenerateRequest()
    to_trtllm(sp, trtllm_service_pb2, req)
    gt = trtllm_service_pb2.GuidedDecodingParams.GuideType
    assert req.guided_decoding.guide_type == gt.GUIDE_TYPE_JSON_SCHEMA


def test_json_object_and_choice_where_the_proto_lacks_them() -> None:
    sp = from_openai({"response_format": {"type": "json_object"}})
    assert to_vllm(sp, vllm_engine_pb2).json_object is True
    assert json.loads(to_sglang(sp, sglang_scheduler_pb2).json_schema) == {"type": "object"}
    sp = from_openai({"guided_choice": ["yes", "a.b"]})
    assert list(to_vllm(sp, vllm_engine_pb2).choice.choices) == ["yes", "a.b"]
    assert to_sglang(sp, sglang_scheduler_pb2).regex == r"(yes|a\.b)"


def test_regex_and_grammar() -> None:
    assert to_vllm(from_openai({"guided_regex": "a+"}), vllm_engine_pb2).regex == "a+"
    sp = from_sglang({"ebnf": "root ::= 'x'"})
    assert to_sglang(sp, sglang_scheduler_pb2).ebnf_grammar == "root ::= 'x'"
    assert to_vllm(sp, vllm_engine_pb2).grammar == "root ::= 'x'"


def test_sglang_sampling_params_and_logprob_fields() -> None:
    params = {"max_new_tokens": 5, "min_new_tokens": 2, "stop_token_ids": [3], "top_k": -1}
    sp = from_sglang(params, {"return_logprob": True, "top_logprobs_num": 4})
    assert (sp.max_tokens, sp.min_tokens, sp.stop_token_ids, sp.top_k) == (5, 2, [3], None)
    assert sp.logprobs and sp.top_logprobs == 4


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"n": 0}, "n"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"stop_token_ids": [1, "x"]}, "stop_token_ids"),
        ({"stop": 5}, "stop"),
        ({"logit_bias": {"a": 1}}, "logit_bias"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"seed": True}, "seed"),
    ],
)
def test_bad_fields_are_400_with_the_param(body: dict[str, object], param: str) -> None:
    with pytest.raises(BadRequest) as ei:
        from_openai(body)
    assert ei.value.param == param


def test_two_constraints_are_rejected() -> None:
    with pytest.raises(BadRequest):
        from_openai({"guided_regex": "a", "response_format": {"type": "json_object"}})
