"""Kimi K2: ``<|tool_call_begin|>functions.NAME:0<|tool_call_argument_begin|>{…}`` in a section."""

from __future__ import annotations

import re
from typing import Any

from smg.parsers.tool.base import Block, BlockToolParser, load_object

SECTION_BEGIN = "<|tool_calls_section_begin|>"
# Some Kimi checkpoints spell the section token in the singular.
SECTION_BEGIN_ALT = "<|tool_call_section_begin|>"
SECTION_END = "<|tool_calls_section_end|>"
SECTION_END_ALT = "<|tool_call_section_end|>"
_CALL = re.compile(
    r"<\|tool_call_begin\|>\s*([^<]+?)\s*<\|tool_call_argument_begin\|>(.*?)<\|tool_call_end\|>",
    re.DOTALL,
)


def _name(call_ref: str) -> str:
    # "functions.get_weather:0" → "get_weather"; the index is only a per-turn counter.
    ref = call_ref.rsplit(":", 1)[0] if ":" in call_ref else call_ref
    return ref.removeprefix("functions.")


def parse_section(body: str) -> list[tuple[str, Any]] | None:
    """Every call in a section; None if anything but calls and spaces is in it."""
    calls: list[tuple[str, Any]] = []
    pos = 0
    for match in _CALL.finditer(body):
        args = load_object(match.group(2))
        if body[pos : match.start()].strip() or args is None:
            return None
        calls.append((_name(match.group(1)), args))
        pos = match.end()
    if body[pos:].strip():
        return None
    return calls or None


class KimiK2ToolParser(BlockToolParser):
    """One section holding one or more calls."""

    start_markers = (SECTION_BEGIN, SECTION_BEGIN_ALT)

    def parse_block(self, buf: str, final: bool) -> Block | None:
        """Parse a whole section (an unterminated one is parsed at the end)."""
        head = len(SECTION_BEGIN) if buf.startswith(SECTION_BEGIN) else len(SECTION_BEGIN_ALT)
        ends = [i for i in (buf.find(SECTION_END, head), buf.find(SECTION_END_ALT, head)) if i >= 0]
        if not ends:
            return Block(len(buf), parse_section(buf[head:])) if final else None
        end = min(ends)
        tail = len(SECTION_END) if buf.startswith(SECTION_END, end) else len(SECTION_END_ALT)
        return Block(end + tail, parse_section(buf[head:end]))
