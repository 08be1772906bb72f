"""Reasoning parsers: examples, auto-selection, and chunking invariance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parser_helpers import chunks, stream_reasoning

from smg.parsers.reasoning import (
    REASONING_PARSERS,
    auto_reasoning_parser,
    create_reasoning_parser,
)
from smg.parsers.reasoning.base import ReasoningParser

TAGS = {
    "deepseek_r1": ("<think>", "</think>"),
    "qwen3": ("<think>", "</think>"),
    "glm45": ("<think>", "</think>"),
    "kimi_k2": ("<think>", "</think>"),
    "kimi": ("◁think▷", "◁/think▷"),
    "magistral": ("[THINK]", "[/THINK]"),
}
UNICODE = "東京🌧👨‍👩‍👧🇫🇷é"
NOISE = ["<", "<th", "</thi", "[THI", "[/TH", "◁", "◁/thi", "<|channel|>", "<|mess", "\n", " "]
PROSE = st.lists(
    st.one_of(st.text(alphabet="abc .!" + UNICODE, min_size=1, max_size=6), st.sampled_from(NOISE)),
    max_size=8,
).map("".join)
CUTS = st.lists(st.integers(min_value=0, max_value=300), max_size=25)


def _p(name: str, **kw: object) -> ReasoningParser:
    parser = create_reasoning_parser(name, **kw)  # type: ignore[arg-type]
    assert parser is not None
    return parser


def test_at_least_six_families() -> None:
    assert len(set(REASONING_PARSERS.names()) - {"kimi_k2"}) >= 6


@pytest.mark.parametrize("name", sorted(TAGS))
def test_tagged_reasoning(name: str) -> None:
    start, end = TAGS[name]
    text = f"{start}\nLet me think 🤔 about 東京.\n{end}\n\nThe answer is 42."
    assert _p(name).parse(text) == ("\nLet me think 🤔 about 東京.\n", "The answer is 42.")


def test_deepseek_r1_without_opening_tag() -> None:
    assert _p("deepseek_r1").parse("reasoning here</think>answer") == ("reasoning here", "answer")
    assert _p("deepseek_r1").parse("still thinking") == ("still thinking", "")


def test_qwen3_thinking_off_and_prompt_opened() -> None:
    text = "<think>\n\n</think>\n\nHi"
    assert _p("qwen3", enable_thinking=False).parse(text) == ("", text)
    assert _p("qwen3").parse("plain answer") == ("", "plain answer")
    assert _p("qwen3", in_reasoning=True).parse("r</think>c") == ("r", "c")


def test_open_tag_later_in_text_is_prose() -> None:
    assert _p("qwen3").parse("Use <think> tags") == ("", "Use <think> tags")


def test_harmony_reasoning_and_passthrough_of_calls() -> None:
    call = (
        "<|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json"
        '<|message|>{"a": 1}<|call|>'
    )
    text = (
        "<|channel|>analysis<|message|>Think 🌧<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Answer<|return|>"
    )
    assert _p("harmony").parse(text) == ("Think 🌧", "Answer")
    assert _p("harmony").parse("<|channel|>analysis<|message|>x<|end|>" + call) == ("x", call)


def test_streaming_hold_back_is_minimal() -> None:
    p = _p("glm45")
    assert p.feed("<thi") == ("", "")
    assert p.feed("nk>abc</th") == ("abc", "")
    assert p.feed("x") == ("</thx", "")
    assert p.finish() == ("", "")


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("deepseek-ai/DeepSeek-R1-0528", "deepseek_r1"),
        ("Qwen/Qwen3-8B", "qwen3"),
        ("Qwen/Qwen3-Coder-30B-A3B-Instruct", None),
        ("Qwen/Qwen3-4B-Instruct-2507", None),
        ("moonshotai/Kimi-VL-A3B-Thinking", "kimi"),
        ("moonshotai/Kimi-K2-Thinking", "kimi_k2"),
        ("zai-org/GLM-4.5", "glm45"),
        ("openai/gpt-oss-120b", "harmony"),
        ("mistralai/Magistral-Small-2509", "magistral"),
        ("meta-llama/Llama-3.1-8B-Instruct", None),
    ],
)
def test_auto_selection(model: str, name: str | None) -> None:
    assert auto_reasoning_parser(model) == name


@pytest.mark.parametrize("name", sorted({*TAGS, "harmony"}))
@pytest.mark.parametrize("in_reasoning", [None, True, False])
@settings(max_examples=75, deadline=None)
@given(reasoning=PROSE, content=PROSE, opened=st.booleans(), closed=st.booleans(), cuts=CUTS)
def test_chunking_invariance(
    name: str,
    in_reasoning: bool | None,
    reasoning: str,
    content: str,
    opened: bool,
    closed: bool,
    cuts: list[int],
) -> None:
    """Any split of a realistic (or truncated, or tag-less) output gives the parse result."""
    if name == "harmony":
        text = (
            ("<|channel|>analysis<|message|>" if opened else "")
            + reasoning
            + ("<|end|><|start|>assistant<|channel|>final<|message|>" if closed else "")
            + content
        )
    else:
        start, end = TAGS[name]
        text = (start if opened else "") + reasoning + (end if closed else "") + content
    parser = _p(name, in_reasoning=in_reasoning)
    whole = parser.parse(text)
    assert stream_reasoning(parser.fresh(), chunks(text, cuts)) == tuple(whole)
    assert stream_reasoning(parser.fresh(), list(text)) == tuple(whole)
    if name != "harmony" and opened and closed and not reasoning.startswith(TAGS[name][0]):
        assert whole.reasoning == reasoning
        assert whole.content == content.lstrip()
