"""Shared helpers: stream a parser over arbitrary splits and fold the deltas."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from smg.parsers.reasoning import ReasoningParser
from smg.parsers.tool import ToolParser
from smg.parsers.tool.base import StreamDelta, assemble

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "query": {"type": "string"},
                    "days": {"type": "integer"},
                    "units": {"type": "string"},
                },
            },
        },
    }
    for name in ("get_weather", "search", "lookup_2")
]


def chunks(text: str, cuts: Sequence[int]) -> list[str]:
    """``text`` split at the (unsorted, possibly repeated) positions ``cuts``."""
    points = sorted({min(max(c, 0), len(text)) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(text)]:
        out.append(text[prev:p])
        prev = p
    return out


def stream_tools(
    parser: ToolParser, pieces: Sequence[str]
) -> tuple[str, list[tuple[str, str, Any]]]:
    """Feed pieces, finish, and fold to (content, [(id, name, parsed args)])."""
    deltas: list[StreamDelta] = [parser.feed(p) for p in pieces]
    deltas.append(parser.finish())
    for d in deltas:
        for c in d.calls:
            assert (c.id is None) == (c.name is None)
    folded = assemble(deltas)
    return folded.content, [(c.id, c.name, json.loads(c.arguments)) for c in folded.calls]


def parsed_tools(parser: ToolParser, text: str) -> tuple[str, list[tuple[str, str, Any]]]:
    """Non-streaming result in the same shape as ``stream_tools``."""
    res = parser.parse(text)
    return res.content, [(c.id, c.name, json.loads(c.arguments)) for c in res.calls]


def stream_reasoning(parser: ReasoningParser, pieces: Sequence[str]) -> tuple[str, str]:
    """Feed pieces, finish, and fold to (reasoning, content)."""
    r: list[str] = []
    c: list[str] = []
    for p in pieces:
        d = parser.feed(p)
        r.append(d.reasoning)
        c.append(d.content)
    d = parser.finish()
    return "".join(r) + d.reasoning, "".join(c) + d.content
