"""GLM-4.5 / 4.6: ``<tool_call>NAME<arg_key>k</arg_key><arg_value>v</arg_value></tool_call>``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from smg.parsers.tool.base import Block, BlockToolParser
from smg.parsers.tool.qwen3_coder import convert

OPEN = "<tool_call>"
CLOSE = "</tool_call>"
_PAIR = re.compile(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.DOTALL)


def _value(raw: str, schema: Mapping[str, Any]) -> Any:
    if schema:
        return convert(raw, schema)
    # The template writes strings raw and everything else as JSON, so try JSON first.
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class Glm45ToolParser(BlockToolParser):
    """One call per ``<tool_call>`` block with key/value argument pairs."""

    start_markers = (OPEN,)

    def _call(self, body: str) -> list[tuple[str, Any]] | None:
        first = body.find("<arg_key>")
        name = (body if first == -1 else body[:first]).strip()
        if not name or "<" in name or "\n" in name:
            return None
        props = self.schema_for(name).get("properties", {})
        args: dict[str, Any] = {}
        pos = 0 if first == -1 else first
        for match in _PAIR.finditer(body, pos):
            if body[pos : match.start()].strip():
                return None
            key = match.group(1).strip()
            sub = props.get(key, {}) if isinstance(props, Mapping) else {}
            args[key] = _value(match.group(2), sub if isinstance(sub, Mapping) else {})
            pos = match.end()
        if first != -1 and body[pos:].strip():
            return None
        return [(name, args)]

    def parse_block(self, buf: str, final: bool) -> Block | None:
        """Parse ``<tool_call>…</tool_call>`` (an unclosed block is parsed at the end)."""
        end = buf.find(CLOSE, len(OPEN))
        if end == -1:
            return Block(len(buf), self._call(buf[len(OPEN) :])) if final else None
        return Block(end + len(CLOSE), self._call(buf[len(OPEN) : end]))
