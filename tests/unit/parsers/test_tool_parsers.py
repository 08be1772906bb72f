"""Example-based tests of the tool-call parsers: formats, degradation, typing, ids."""

from __future__ import annotations

import json

import pytest
from parser_formats import DS_CALL_BEGIN, DS_CALL_END, DS_CALLS_BEGIN, DS_CALLS_END, DS_SEP
from parser_helpers import TOOLS, parsed_tools, stream_tools

from smg.parsers.tool import TOOL_PARSERS, auto_tool_parser, create_tool_parser
from smg.parsers.tool.base import ToolParser, call_id


def _p(name: str, tools: list[dict[str, object]] | None = TOOLS, **kw: object) -> ToolParser:
    parser = create_tool_parser(name, tools=tools, id_seed="seed", **kw)  # type: ignore[arg-type]
    assert parser is not None
    return parser


def test_at_least_ten_families_registered() -> None:
    assert len(set(TOOL_PARSERS.names()) - {"hermes_2_pro"}) >= 10


def test_hold_back_only_the_ambiguous_suffix() -> None:
    p = _p("hermes")
    assert p.feed("Hello <tool").content == "Hello"
    assert p.feed("box> and").content == " <toolbox> and"
    assert p.feed(" <").content == ""
    assert p.finish().content == " <"


def test_malformed_json_degrades_to_content() -> None:
    text = 'a <tool_call>{"name": "get_weather", "arguments": {"city": }</tool_call> b'
    assert parsed_tools(_p("hermes"), text) == (text, [])


def test_unknown_function_is_content_or_call_when_configured() -> None:
    text = '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>'
    assert parsed_tools(_p("hermes"), text) == (text, [])
    _, calls = parsed_tools(_p("hermes", unknown_tool="call"), text)
    assert [c[1] for c in calls] == ["rm_rf"]
    _, calls = parsed_tools(_p("hermes", tools=None), text)
    assert [c[1] for c in calls] == ["rm_rf"]


def test_ids_are_deterministic_per_seed() -> None:
    text = '<tool_call>{"name": "search", "arguments": {}}</tool_call>'
    a = _p("hermes").parse(text).calls[0].id
    assert a == call_id("seed", 0) and a.startswith("call_")
    other = create_tool_parser("hermes", tools=TOOLS, id_seed="other")
    assert other is not None and other.parse(text).calls[0].id != a


def test_first_delta_carries_id_and_name() -> None:
    p = _p("hermes")
    d = p.feed('<tool_call>{"name": "search", "arguments": {"query": "x"}}</tool_call>')
    [c] = d.calls
    assert (c.index, c.id, c.name, json.loads(c.arguments)) == (
        0,
        call_id("seed", 0),
        "search",
        {"query": "x"},
    )


def test_qwen3_coder_types_from_schema() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {
                    "properties": {
                        "n": {"type": "integer"},
                        "x": {"type": "number"},
                        "b": {"type": "boolean"},
                        "o": {"type": "object"},
                        "l": {"type": "array"},
                        "s": {"type": "string"},
                    }
                },
            },
        }
    ]
    text = (
        "<tool_call>\n<function=f>\n<parameter=n>\n42\n</parameter>\n<parameter=x>\n2.5\n"
        '</parameter>\n<parameter=b>\nTrue\n</parameter>\n<parameter=o>\n{"k": [1]}\n'
        "</parameter>\n<parameter=l>\n['a', 1]\n</parameter>\n<parameter=s>\n007\n</parameter>\n"
        "<parameter=free>\nraw\n</parameter>\n</function>\n</tool_call>"
    )
    _, [(_, name, args)] = parsed_tools(_p("qwen3_coder", tools=tools), text)
    assert name == "f"
    assert args == {
        "n": 42,
        "x": 2.5,
        "b": True,
        "o": {"k": [1]},
        "l": ["a", 1],
        "s": "007",
        "free": "raw",
    }


def test_glm45_values_json_unless_schema_says_string() -> None:
    text = (
        "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>123</arg_value>\n"
        "<arg_key>extra</arg_key>\n<arg_value>[1, 2]</arg_value>\n</tool_call>"
    )
    _, [(_, _, args)] = parsed_tools(_p("glm45"), text)
    assert args == {"city": "123", "extra": [1, 2]}


def test_llama3_python_tag_and_trailing_text() -> None:
    text = '<|python_tag|>{"name": "search", "parameters": {"query": "q"}}'
    assert parsed_tools(_p("llama3_json"), text)[1][0][1:] == ("search", {"query": "q"})
    prose = 'The JSON is {"name": "search", "parameters": {}} — not a call.'
    assert parsed_tools(_p("llama3_json"), prose) == (prose, [])


def test_pythonic_refuses_non_literals() -> None:
    for text in ['[search(query=__import__("os").system("x"))]', "[search(1)]", "[search(q=a)]"]:
        assert parsed_tools(_p("pythonic"), text) == (text, [])
    text = '<|python_start|>[search(query="q", n=None, t=(1, 2))]<|python_end|>'
    assert parsed_tools(_p("pythonic"), text)[1][0][2] == {"query": "q", "n": None, "t": [1, 2]}


def test_mistral_call_id_variant() -> None:
    text = '[TOOL_CALLS]search[CALL_ID]a1B2c3D4e[ARGS]{"query": "q"}'
    assert parsed_tools(_p("mistral"), text)[1][0][1:] == ("search", {"query": "q"})
    assert parsed_tools(_p("mistral"), "[TOOL_CALLS] nope") == ("[TOOL_CALLS] nope", [])


def test_deepseek_split_inside_special_token() -> None:
    text = (
        f"Sure{DS_CALLS_BEGIN}{DS_CALL_BEGIN}search{DS_SEP}"
        '{"query": "東京"}'
        f"{DS_CALL_END}{DS_CALLS_END}"
    )
    whole = parsed_tools(_p("deepseek_v3"), text)
    assert whole[0] == "Sure" and whole[1][0][1:] == ("search", {"query": "東京"})
    for i in range(len(text)):
        assert stream_tools(_p("deepseek_v3"), [text[:i], text[i:]]) == whole


def test_kimi_and_granite() -> None:
    kimi = (
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.search:0"
        '<|tool_call_argument_begin|>{"query": "q"}<|tool_call_end|><|tool_calls_section_end|>'
    )
    assert parsed_tools(_p("kimi_k2"), kimi)[1][0][1:] == ("search", {"query": "q"})
    gran = '<|tool_call|>[{"name": "search", "arguments": {"query": "q"}}]'
    assert parsed_tools(_p("granite"), gran)[1][0][1:] == ("search", {"query": "q"})


def test_harmony_channels() -> None:
    text = (
        "<|channel|>analysis<|message|>thinking…<|end|>"
        "<|start|>assistant<|channel|>commentary<|message|>Checking.<|end|>"
        "<|start|>assistant to=functions.search<|channel|>commentary json<|message|>"
        '{"query": "q"}<|call|>'
        "<|start|>assistant<|channel|>final<|message|>Done 👍<|return|>"
    )
    content, calls = parsed_tools(_p("harmony"), text)
    assert content == "Checking.Done 👍"
    assert [c[1:] for c in calls] == [("search", {"query": "q"})]


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("Qwen/Qwen3-Coder-30B-A3B-Instruct", "qwen3_coder"),
        ("Qwen/Qwen2.5-7B-Instruct", "hermes"),
        ("Qwen/Qwen3-8B", "hermes"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3_json"),
        ("meta-llama/Llama-4-Scout-17B-16E-Instruct", "pythonic"),
        ("mistralai/Mistral-Small-3.2-24B-Instruct-2506", "mistral"),
        ("deepseek-ai/DeepSeek-V3.1", "deepseek_v3"),
        ("moonshotai/Kimi-K2-Instruct", "kimi_k2"),
        ("zai-org/GLM-4.5-Air", "glm45"),
        ("openai/gpt-oss-20b", "harmony"),
        ("ibm-granite/granite-3.1-8b-instruct", "granite"),
        ("ibm-granite/granite-4.0-h-small", "hermes"),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", None),
    ],
)
def test_auto_selection(model: str, name: str | None) -> None:
    assert auto_tool_parser(model) == name


def test_name_overrides_model_and_import_path_works() -> None:
    p = create_tool_parser("granite", model="Qwen/Qwen3-8B")
    assert type(p).__name__ == "GraniteToolParser"
    p = create_tool_parser("smg.parsers.tool.hermes:HermesToolParser")
    assert type(p).__name__ == "HermesToolParser"
    assert create_tool_parser(model="unknown-model") is None
