"""Property tests: every tool parser gives the same result for any chunking of its output."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parser_formats import PARSER_FOR, RENDERERS, render
from parser_helpers import TOOLS, chunks, parsed_tools, stream_tools

from smg.parsers.tool import TOOL_PARSERS, create_tool_parser

SETTINGS = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Emoji (incl. ZWJ sequences and a flag), CJK, accents: the detokenizer may cut between any two.
UNICODE = "東京雨天気🌧👍🏽👨‍👩‍👧🇫🇷éü"
NOISE = ["<", "<tool", "[TOOL", "{", "}", "<|", "<|tool", "[", "]", "</", "◁", "\n", " ", "<\uff5c"]
WORD = st.text(alphabet="abcxyz .,!?:" + UNICODE, min_size=1, max_size=8)
PROSE = st.lists(st.one_of(WORD, st.sampled_from(NOISE)), min_size=1, max_size=8).map(
    lambda parts: "".join(parts)
)
VALUE = st.text(alphabet='abc xyz<{"\\\n' + UNICODE, max_size=12)
CUTS = st.lists(st.integers(min_value=0, max_value=400), max_size=30)


def _clean(prose: str) -> str:
    """Prose that starts with a letter and has no surrounding spaces (trimmed at blocks)."""
    return ("P" + prose).strip()


@st.composite
def call_lists(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    """One to three calls to known tools, with unicode string and integer arguments."""
    calls = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        name = draw(st.sampled_from(["get_weather", "search", "lookup_2"]))
        args: dict[str, Any] = {"city": draw(VALUE)}
        if draw(st.booleans()):
            args["days"] = draw(st.integers(min_value=-5, max_value=10**6))
        if draw(st.booleans()):
            args["query"] = draw(VALUE)
        calls.append((name, args))
    return calls


FAMILIES = sorted(RENDERERS)
ALL_PARSERS = sorted(TOOL_PARSERS.names())


@pytest.mark.parametrize("family", FAMILIES)
@SETTINGS
@given(before=PROSE, calls=call_lists(), after=PROSE, cuts=CUTS)
def test_calls_roundtrip_any_chunking(
    family: str, before: str, calls: list[tuple[str, dict[str, Any]]], after: str, cuts: list[int]
) -> None:
    """Rendered calls come back exactly, and streaming equals parse for any split."""
    _, pre, post = RENDERERS[family]
    before, after = _clean(before), _clean(after)
    if family in ("qwen3_coder", "glm45"):
        # XML values are raw text: framing newlines and leading/trailing spaces are ambiguous.
        calls = [
            (n, {k: (v.strip() or "v") if isinstance(v, str) else v for k, v in a.items()})
            for n, a in calls
        ]
    text = render(family, before, calls, after)
    parser = create_tool_parser(PARSER_FOR.get(family, family), tools=TOOLS, id_seed="req-1")
    assert parser is not None
    whole = parsed_tools(parser, text)
    assert [(n, a) for _, n, a in whole[1]] == calls
    expected = (before if pre else "") + (after if post else "")
    assert whole[0] == expected
    assert stream_tools(parser.fresh(), chunks(text, cuts)) == whole


@pytest.mark.parametrize("name", ALL_PARSERS)
@SETTINGS
@given(prose=PROSE, cuts=CUTS)
def test_noise_prose_is_content(name: str, prose: str, cuts: list[int]) -> None:
    """Prose with tag-like fragments is all content, streamed or not, for any split."""
    parser = create_tool_parser(name, tools=TOOLS, id_seed="s")
    assert parser is not None
    whole = parsed_tools(parser, prose)
    assert whole[1] == []
    assert whole[0] == prose
    assert stream_tools(parser.fresh(), chunks(prose, cuts)) == whole


@pytest.mark.parametrize("name", ALL_PARSERS)
@SETTINGS
@given(
    family=st.sampled_from(FAMILIES),
    calls=call_lists(),
    prose=PROSE,
    cut_at=st.integers(min_value=0, max_value=400),
    cuts=CUTS,
)
def test_any_text_any_parser_is_chunking_invariant(
    name: str,
    family: str,
    calls: list[tuple[str, dict[str, Any]]],
    prose: str,
    cut_at: int,
    cuts: list[int],
) -> None:
    """Foreign formats, truncated outputs and malformed blocks: never raise, same both ways."""
    text = render(family, prose, calls, prose)
    text = text[: cut_at % (len(text) + 1)] + prose
    parser = create_tool_parser(name, tools=TOOLS, id_seed="x")
    assert parser is not None
    assert stream_tools(parser.fresh(), chunks(text, cuts)) == parsed_tools(parser, text)


@pytest.mark.parametrize("name", ALL_PARSERS)
@SETTINGS
@given(text=st.text(max_size=60), cuts=CUTS)
def test_arbitrary_text_never_raises(name: str, text: str, cuts: list[int]) -> None:
    """Fully random text (any code points) parses identically streamed or not."""
    parser = create_tool_parser(name, tools=TOOLS)
    assert parser is not None
    assert stream_tools(parser.fresh(), chunks(text, cuts)) == parsed_tools(parser, text)


@pytest.mark.parametrize("family", FAMILIES)
def test_one_char_at_a_time(family: str) -> None:
    """The worst split: every character is its own chunk."""
    calls = [("get_weather", {"city": "東京 🌧👨‍👩‍👧", "days": 3}), ("search", {"query": "ok"})]
    text = render(family, "Hi <tool [TOOL {", calls, "Bye 🇫🇷")
    parser = create_tool_parser(PARSER_FOR.get(family, family), tools=TOOLS, id_seed="r")
    assert parser is not None
    whole = parsed_tools(parser, text)
    assert [(n, a) for _, n, a in whole[1]] == calls
    assert stream_tools(parser.fresh(), list(text)) == whole
