"""Granite 3.x: ``<|tool_call|>[{"name": ..., "arguments": {...}}, ...]``."""

from __future__ import annotations

from smg.parsers._text import skip_ws
from smg.parsers.tool._common import json_value_block
from smg.parsers.tool.base import Block, BlockToolParser

MARKER = "<|tool_call|>"


class GraniteToolParser(BlockToolParser):
    """A JSON array (or single object) of calls after ``<|tool_call|>``."""

    start_markers = (MARKER,)

    def parse_block(self, buf: str, final: bool) -> Block | None:
        """Parse the JSON value following the marker."""
        return json_value_block(buf, skip_ws(buf, len(MARKER)), final)
