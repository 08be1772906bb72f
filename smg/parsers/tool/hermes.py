"""Hermes / Qwen2.5 / Qwen3 / Granite 4: ``<tool_call>{"name", "arguments"}</tool_call>``."""

from __future__ import annotations

from smg.parsers.tool._common import named_calls
from smg.parsers.tool.base import Block, BlockToolParser, load_object

OPEN = "<tool_call>"
CLOSE = "</tool_call>"


class HermesToolParser(BlockToolParser):
    """One JSON object per ``<tool_call>`` block; several blocks may follow each other."""

    start_markers = (OPEN,)

    def parse_block(self, buf: str, final: bool) -> Block | None:
        """Parse ``<tool_call>…</tool_call>`` (an unclosed block is parsed at the end)."""
        end = buf.find(CLOSE, len(OPEN))
        if end == -1:
            if not final:
                return None
            return Block(len(buf), named_calls(load_object(buf[len(OPEN) :])))
        return Block(end + len(CLOSE), named_calls(load_object(buf[len(OPEN) : end])))
