"""OutputParser: reasoning then tools, OpenAI-shaped deltas equal to the whole parse."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from parser_helpers import TOOLS, chunks

from smg.parsers import ChatDelta, create_output_parser
from smg.parsers.tool.base import StreamDelta, assemble

QWEN = (
    "<think>\nNeed weather for 東京 🌧.\n</think>\n\nChecking.\n<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "東京"}}\n</tool_call>'
)
OSS = (
    "<|channel|>analysis<|message|>User wants weather.<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
    '<|message|>{"city": "Paris"}<|call|>'
)


def _stream(model: str, text: str, cuts: list[int]) -> tuple[str, str, list[tuple[str, str]]]:
    parser = create_output_parser(model, tools=TOOLS, id_seed="r")
    deltas: list[ChatDelta] = [parser.feed(c) for c in chunks(text, cuts)]
    deltas.append(parser.finish())
    folded = assemble([StreamDelta(d.content, d.tool_calls) for d in deltas])
    reasoning = "".join(d.reasoning_content for d in deltas)
    return folded.content, reasoning, [(c.name, c.arguments) for c in folded.calls]


def test_qwen3_reasoning_then_tool_call() -> None:
    res = create_output_parser("Qwen/Qwen3-8B", tools=TOOLS, id_seed="r").parse(QWEN)
    assert res.reasoning_content == "\nNeed weather for 東京 🌧.\n"
    assert res.content == "Checking."
    assert json.loads(res.tool_calls[0].arguments) == {"city": "東京"}
    msg = res.to_openai()
    assert msg["tool_calls"][0]["function"]["name"] == "get_weather"


def test_gpt_oss_pipeline() -> None:
    res = create_output_parser("openai/gpt-oss-20b", tools=TOOLS).parse(OSS)
    assert res.reasoning_content == "User wants weather."
    assert res.content == ""
    assert res.to_openai()["content"] is None
    assert [c.name for c in res.tool_calls] == ["get_weather"]


def test_no_tools_requested_keeps_tags_as_content() -> None:
    parser = create_output_parser("Qwen/Qwen3-8B", parse_tools=False)
    assert parser.parse(QWEN).content.startswith("Checking.\n<tool_call>")


def test_delta_to_openai_shape() -> None:
    parser = create_output_parser("Qwen/Qwen3-8B", tools=TOOLS, id_seed="r")
    deltas = [parser.feed(QWEN), parser.finish()]
    first = deltas[0].to_openai()
    assert first["reasoning_content"].startswith("\nNeed")
    call = first["tool_calls"][0]
    assert call["index"] == 0 and call["type"] == "function" and call["id"].startswith("call_")


@settings(max_examples=100, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=40),
    model=st.sampled_from(["Qwen/Qwen3-8B", "openai/gpt-oss-20b"]),
)
def test_pipeline_stream_equals_parse(cuts: list[int], model: str) -> None:
    text = QWEN if model.startswith("Qwen") else OSS
    res = create_output_parser(model, tools=TOOLS, id_seed="r").parse(text)
    expected = (res.content, res.reasoning_content, [(c.name, c.arguments) for c in res.tool_calls])
    assert _stream(model, text, cuts) == expected
