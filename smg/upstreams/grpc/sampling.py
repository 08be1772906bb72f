"""Sampling parameters: OpenAI / SGLang request fields → one neutral type → each engine.

``SamplingParams`` is what filters put under ``state.SAMPLING``. ``from_openai`` reads
``/v1/chat/completions`` and ``/v1/completions`` bodies, ``from_sglang`` reads the
``sampling_params`` object of ``/generate`` (plus its top-level logprob fields).
``to_vllm`` / ``to_sglang`` / ``to_trtllm`` fill each engine's protobuf messages.

Mapping notes (where the protos differ):

- unset fields get the engine's neutral value explicitly (temperature 1, top_p 1,
  top_k off, repetition_penalty 1), because proto3 scalars default to 0;
- ``max_tokens`` (also ``max_completion_tokens``; SGLang ``max_new_tokens``) unset
  means "up to the context" on vLLM and SGLang; TRT-LLM needs a number
  (``TRTLLM_DEFAULT_MAX_TOKENS``);
- ``seed``: vLLM and TRT-LLM; the SGLang proto has no seed field (dropped);
- logprobs: vLLM ``logprobs`` = number of top alternatives (0: sampled token only);
  SGLang ``return_logprob`` + ``top_logprobs_num``; TRT-LLM ``output_config.logprobs``;
- constraints (one at most): ``json_schema``, ``regex``, ``grammar`` (EBNF),
  ``structural_tag``, ``json_object``, ``choice``. SGLang has no json_object / choice
  fields: they become the schema ``{"type": "object"}`` and an alternation regex;
  TRT-LLM maps them to its guide types (choice as a regex);
- ``logit_bias``: vLLM and SGLang (keys as strings there); not sent to TRT-LLM, whose
  proto wants a dense vocabulary-sized bias;
- ``stop`` strings are passed on, but in gRPC mode the gateway detokenizes and should
  match stop strings itself (the engines only see ids); ``stop_token_ids`` are the
  engine's job.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from smg.errors import BadRequest

TRTLLM_DEFAULT_MAX_TOKENS = 4096


@dataclass(slots=True)
class SamplingParams:
    """Engine-neutral sampling settings of one request (None: the engine's default)."""

    max_tokens: int | None = None
    min_tokens: int = 0
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float | None = None
    seed: int | None = None
    n: int = 1
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    logprobs: bool = False
    top_logprobs: int = 0
    logit_bias: dict[int, float] = field(default_factory=dict)
    json_schema: str | None = None
    regex: str | None = None
    grammar: str | None = None
    structural_tag: str | None = None
    json_object: bool = False
    choice: list[str] | None = None

    def constraint(self) -> tuple[str, str] | None:
        """The one structural constraint as (kind, value), or None."""
        found = [
            (k, v)
            for k, v in (
                ("json_schema", self.json_schema),
                ("regex", self.regex),
                ("grammar", self.grammar),
                ("structural_tag", self.structural_tag),
            )
            if v is not None
        ]
        if self.json_object:
            found.append(("json_object", ""))
        if self.choice is not None:
            found.append(("choice", orjson.dumps(self.choice).decode()))
        if len(found) > 1:
            kinds = ", ".join(k for k, _ in found)
            raise BadRequest(f"Only one output constraint may be given, got: {kinds}.")
        return found[0] if found else None


# -- reading request bodies ----------------------------------------------------------


def _num(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BadRequest(f"'{name}' must be a number.", param=name)
    if not lo <= v <= hi:
        raise BadRequest(f"'{name}' must be between {lo:g} and {hi:g}.", param=name)
    return float(v)


def _int(body: dict[str, Any], name: str, lo: int, hi: int = 1 << 31) -> int | None:
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadRequest(f"'{name}' must be an integer.", param=name)
    if not lo <= v <= hi:
        raise BadRequest(f"'{name}' must be between {lo} and {hi}.", param=name)
    return v


def _bool(body: dict[str, Any], name: str) -> bool | None:
    v = body.get(name)
    if v is not None and not isinstance(v, bool):
        raise BadRequest(f"'{name}' must be a boolean.", param=name)
    return v


def _ids(body: dict[str, Any], name: str) -> list[int]:
    v = body.get(name)
    if v is None:
        return []
    if not isinstance(v, list) or not all(type(i) is int and i >= 0 for i in v):
        raise BadRequest(f"'{name}' must be a list of token ids.", param=name)
    return list(v)


def _str(body: dict[str, Any], name: str) -> str | None:
    v = body.get(name)
    if v is not None and not isinstance(v, str):
        raise BadRequest(f"'{name}' must be a string.", param=name)
    return v


def _stop(body: dict[str, Any]) -> list[str]:
    v = body.get("stop")
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return list(v)
    raise BadRequest("'stop' must be a string or a list of strings.", param="stop")


def _bias(body: dict[str, Any]) -> dict[int, float]:
    v = body.get("logit_bias")
    if v is None:
        return {}
    try:
        if not isinstance(v, dict):
            raise ValueError
        return {int(k): float(b) for k, b in v.items()}
    except (TypeError, ValueError):
        raise BadRequest(
            "'logit_bias' must map token ids to numbers.", param="logit_bias"
        ) from None


def _common(body: dict[str, Any], sp: SamplingParams) -> None:
    """Fields OpenAI and SGLang spell the same way."""
    sp.temperature = _num(body, "temperature", 0.0, 2.0)
    sp.top_p = _num(body, "top_p", 0.0, 1.0)
    top_k = _int(body, "top_k", -1)
    sp.top_k = None if top_k is None or top_k <= 0 else top_k
    sp.min_p = _num(body, "min_p", 0.0, 1.0)
    sp.frequency_penalty = _num(body, "frequency_penalty", -2.0, 2.0) or 0.0
    sp.presence_penalty = _num(body, "presence_penalty", -2.0, 2.0) or 0.0
    sp.repetition_penalty = _num(body, "repetition_penalty", 0.0, 2.0)
    sp.n = _int(body, "n", 1, 128) or 1
    sp.stop = _stop(body)
    sp.stop_token_ids = _ids(body, "stop_token_ids")
    sp.ignore_eos = bool(_bool(body, "ignore_eos"))
    skip = _bool(body, "skip_special_tokens")
    sp.skip_special_tokens = True if skip is None else skip
    sp.logit_bias = _bias(body)
    sp.regex = _str(body, "regex")
    sp.structural_tag = _str(body, "structural_tag")


def from_openai(body: dict[str, Any]) -> SamplingParams:
    """Sampling settings of an OpenAI chat or completions body (vLLM extras included)."""
    sp = SamplingParams()
    _common(body, sp)
    max_tokens = _int(body, "max_completion_tokens", 0)
    sp.max_tokens = max_tokens if max_tokens is not None else _int(body, "max_tokens", 0)
    sp.min_tokens = _int(body, "min_tokens", 0) or 0
    sp.seed = _int(body, "seed", -(1 << 31), (1 << 31) - 1)
    lp = body.get("logprobs")
    if isinstance(lp, bool):  # chat: a flag, with top_logprobs alongside
        sp.logprobs = lp
        sp.top_logprobs = _int(body, "top_logprobs", 0, 20) or 0
    elif lp is not None:  # completions: the number of alternatives
        sp.logprobs = True
        sp.top_logprobs = _int(body, "logprobs", 0, 20) or 0
    if body.get("top_logprobs") and not sp.logprobs:
        raise BadRequest("'top_logprobs' needs 'logprobs' set to true.", param="top_logprobs")
    if sp.regex is None:
        sp.regex = _str(body, "guided_regex")
    sp.grammar = _str(body, "guided_grammar")
    choice = body.get("guided_choice")
    if choice is not None:
        if not isinstance(choice, list) or not all(isinstance(c, str) for c in choice):
            raise BadRequest("'guided_choice' must be a list of strings.", param="guided_choice")
        sp.choice = list(choice)
    guided_json = body.get("guided_json")
    if guided_json is not None:
        sp.json_schema = guided_json if isinstance(guided_json, str) else _dump(guided_json)
    _response_format(body.get("response_format"), sp)
    sp.constraint()
    return sp


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()


def _response_format(rf: Any, sp: SamplingParams) -> None:
    if rf is None:
        return
    kind = rf.get("type") if isinstance(rf, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        sp.json_object = True
        return
    if kind == "json_schema":
        js = rf.get("json_schema")
        schema = js.get("schema") if isinstance(js, dict) else None
        if not isinstance(schema, dict):
            raise BadRequest(
                "'response_format.json_schema.schema' must be an object.",
                param="response_format",
            )
        sp.json_schema = _dump(schema)
        return
    if kind == "structural_tag":
        sp.structural_tag = _dump({k: v for k, v in rf.items() if k != "type"})
        return
    raise BadRequest(
        "'response_format.type' must be text, json_object, json_schema or structural_tag.",
        param="response_format",
    )


def from_sglang(params: dict[str, Any], body: dict[str, Any] | None = None) -> SamplingParams:
    """Sampling settings of a ``/generate`` ``sampling_params`` object (and its body)."""
    sp = SamplingParams()
    _common(params, sp)
    sp.max_tokens = _int(params, "max_new_tokens", 0)
    sp.min_tokens = _int(params, "min_new_tokens", 0) or 0
    sp.seed = _int(params, "sampling_seed", -(1 << 31), (1 << 31) - 1)
    sp.json_schema = _str(params, "json_schema")
    sp.grammar = _str(params, "ebnf")
    if body is not None:
        sp.logprobs = bool(_bool(body, "return_logprob"))
        sp.top_logprobs = _int(body, "top_logprobs_num", 0, 20) or 0
    sp.constraint()
    return sp


def with_changes(sp: SamplingParams, **changes: Any) -> SamplingParams:
    """A copy of ``sp`` with some fields replaced (filters refine the params)."""
    return dataclasses.replace(sp, **changes)


# -- filling engine messages ---------------------------------------------------------


def to_vllm(sp: SamplingParams, pb: Any) -> Any:
    """A ``vllm.grpc.engine.SamplingParams`` (``pb`` is the vllm_engine_pb2 module)."""
    msg = pb.SamplingParams(
        temperature=1.0 if sp.temperature is None else sp.temperature,
        top_p=1.0 if sp.top_p is None else sp.top_p,
        top_k=sp.top_k or 0,
        min_p=sp.min_p or 0.0,
        frequency_penalty=sp.frequency_penalty,
        presence_penalty=sp.presence_penalty,
        repetition_penalty=1.0 if sp.repetition_penalty is None else sp.repetition_penalty,
        min_tokens=sp.min_tokens,
        stop=sp.stop,
        stop_token_ids=sp.stop_token_ids,
        skip_special_tokens=sp.skip_special_tokens,
        ignore_eos=sp.ignore_eos,
        n=sp.n,
        logit_bias=sp.logit_bias,
    )
    if sp.max_tokens is not None:
        msg.max_tokens = sp.max_tokens
    if sp.seed is not None:
        msg.seed = sp.seed
    if sp.logprobs:
        msg.logprobs = sp.top_logprobs
    c = sp.constraint()
    if c is not None:
        kind, value = c
        if kind == "json_object":
            msg.json_object = True
        elif kind == "choice":
            msg.choice.choices.extend(sp.choice or [])
        else:
            setattr(msg, kind, value)
    return msg


def choice_regex(choices: list[str]) -> str:
    """A regex accepting exactly one of ``choices``."""
    return "(" + "|".join(re.escape(c) for c in choices) + ")"


def to_sglang(sp: SamplingParams, pb: Any) -> Any:
    """A ``sglang.grpc.scheduler.SamplingParams`` (``pb``: the sglang_scheduler_pb2 module)."""
    msg = pb.SamplingParams(
        temperature=1.0 if sp.temperature is None else sp.temperature,
        top_p=1.0 if sp.top_p is None else sp.top_p,
        top_k=sp.top_k or -1,
        min_p=sp.min_p or 0.0,
        frequency_penalty=sp.frequency_penalty,
        presence_penalty=sp.presence_penalty,
        repetition_penalty=1.0 if sp.repetition_penalty is None else sp.repetition_penalty,
        stop=sp.stop,
        stop_token_ids=sp.stop_token_ids,
        skip_special_tokens=sp.skip_special_tokens,
        n=sp.n,
        min_new_tokens=sp.min_tokens,
        ignore_eos=sp.ignore_eos,
        logit_bias={str(k): v for k, v in sp.logit_bias.items()},
    )
    if sp.max_tokens is not None:
        msg.max_new_tokens = sp.max_tokens
    c = sp.constraint()
    if c is not None:
        kind, value = c
        if kind == "json_object":
            msg.json_schema = '{"type": "object"}'
        elif kind == "choice":
            msg.regex = choice_regex(sp.choice or [])
        elif kind == "grammar":
            msg.ebnf_grammar = value
        else:
            setattr(msg, kind, value)
    return msg


def to_trtllm(sp: SamplingParams, pb: Any, request: Any) -> None:
    """Fill a ``trtllm.GenerateRequest`` (``pb``: trtllm_service_pb2) in place."""
    cfg = request.sampling_config
    cfg.beam_width = 1
    cfg.num_return_sequences = sp.n
    if sp.temperature is not None:
        cfg.temperature = sp.temperature
    if sp.top_p is not None:
        cfg.top_p = sp.top_p
    if sp.top_k is not None:
        cfg.top_k = sp.top_k
    if sp.min_p is not None:
        cfg.min_p = sp.min_p
    if sp.seed is not None:
        cfg.seed = sp.seed & 0xFFFFFFFFFFFFFFFF
    if sp.min_tokens:
        cfg.min_tokens = sp.min_tokens
    if sp.repetition_penalty is not None:
        cfg.repetition_penalty = sp.repetition_penalty
    if sp.presence_penalty:
        cfg.presence_penalty = sp.presence_penalty
    if sp.frequency_penalty:
        cfg.frequency_penalty = sp.frequency_penalty
    request.max_tokens = TRTLLM_DEFAULT_MAX_TOKENS if sp.max_tokens is None else sp.max_tokens
    request.stop.extend(sp.stop)
    request.stop_token_ids.extend(sp.stop_token_ids)
    request.ignore_eos = sp.ignore_eos
    if sp.logprobs:
        request.output_config.logprobs = sp.top_logprobs
    c = sp.constraint()
    if c is None:
        return
    kind, value = c
    gt = pb.GuidedDecodingParams.GuideType
    guide = {
        "json_schema": (gt.GUIDE_TYPE_JSON_SCHEMA, value),
        "regex": (gt.GUIDE_TYPE_REGEX, value),
        "grammar": (gt.GUIDE_TYPE_EBNF_GRAMMAR, value),
        "structural_tag": (gt.GUIDE_TYPE_STRUCTURAL_TAG, value),
        "json_object": (gt.GUIDE_TYPE_JSON, ""),
        "choice": (gt.GUIDE_TYPE_REGEX, choice_regex(sp.choice or [])),
    }[kind]
    request.guided_decoding.guide_type = guide[0]
    request.guided_decoding.guide = guide[1]
