"""DeepSeek V3 / V3.1 / R1-0528 calls inside a ``tool_calls_begin`` … ``tool_calls_end`` section.

The special tokens are spelled with U+FF5C (fullwidth bar) and U+2581 (lower block).
V3:   ``<|tool_call_begin|>function<|tool_sep|>NAME\\n```json\\n{...}\\n```<|tool_call_end|>``
V3.1: ``<|tool_call_begin|>NAME<|tool_sep|>{...}<|tool_call_end|>``
"""

from __future__ import annotations

import re
from typing import Any

from smg.parsers.tool.base import Block, BlockToolParser, load_object

CALLS_BEGIN = "<\uff5ctool\u2581calls\u2581begin\uff5c>"
CALLS_END = "<\uff5ctool\u2581calls\u2581end\uff5c>"
CALL_BEGIN = "<\uff5ctool\u2581call\u2581begin\uff5c>"
CALL_END = "<\uff5ctool\u2581call\u2581end\uff5c>"
SEP = "<\uff5ctool\u2581sep\uff5c>"
_CALL = re.compile(
    re.escape(CALL_BEGIN) + r"(.*?)" + re.escape(SEP) + r"(.*?)" + re.escape(CALL_END), re.DOTALL
)
_FENCED = re.compile(r"\s*([^\n`]+?)\s*\n```(?:json)?\s*\n?(.*?)\n?```\s*\Z", re.DOTALL)


def _one(head: str, rest: str) -> tuple[str, Any] | None:
    if head.strip() == "function":
        fenced = _FENCED.match(rest)
        if fenced is None:
            return None
        name, args = fenced.group(1), load_object(fenced.group(2))
    else:
        name, args = head.strip(), load_object(rest)
    return None if args is None else (name, args)


def parse_calls(body: str) -> list[tuple[str, Any]] | None:
    """Every call in a calls section; None if anything but calls and spaces is in it."""
    calls: list[tuple[str, Any]] = []
    pos = 0
    for match in _CALL.finditer(body):
        if body[pos : match.start()].strip():
            return None
        call = _one(match.group(1), match.group(2))
        if call is None:
            return None
        calls.append(call)
        pos = match.end()
    if body[pos:].strip():
        return None
    return calls or None


class DeepSeekV3ToolParser(BlockToolParser):
    """Both the V3 (fenced JSON) and V3.1 (bare JSON) call layouts."""

    start_markers = (CALLS_BEGIN,)

    def parse_block(self, buf: str, final: bool) -> Block | None:
        """Parse a whole calls section (an unterminated one is parsed at the end)."""
        end = buf.find(CALLS_END, len(CALLS_BEGIN))
        if end == -1:
            return Block(len(buf), parse_calls(buf[len(CALLS_BEGIN) :])) if final else None
        return Block(end + len(CALLS_END), parse_calls(buf[len(CALLS_BEGIN) : end]))
