"""Qwen3-Coder XML calls: ``<tool_call><function=F><parameter=P>value</parameter></function>``."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from typing import Any

from smg.parsers.tool.base import Block, BlockToolParser

OPEN = "<tool_call>"
CLOSE = "</tool_call>"
_FUNCTION = re.compile(r"<function=([^>\n]+)>(.*?)(?:</function>|\Z)", re.DOTALL)
# A missing </parameter> is tolerated: the next parameter or the function end closes it.
_PARAM = re.compile(
    r"<parameter=([^>\n]+)>(.*?)(?:</parameter>|(?=<parameter=)|\Z)",
    re.DOTALL,
)


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    return [t for sub in schema.get("anyOf", []) if isinstance(sub, Mapping) for t in _types(sub)]


def convert(raw: str, schema: Mapping[str, Any]) -> Any:
    """A parameter's text as the type its JSON schema asks for (string when unsure)."""
    types = _types(schema)
    if not types or "string" in types:
        return raw
    text = raw.strip()
    if text.lower() in ("null", "none") and "null" in types:
        return None
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return int(number) if number.is_integer() and "." not in text else number
    if "object" in types or "array" in types:
        try:
            return json.loads(text)
        except ValueError:
            try:
                # The template renders with Python str() for some values (True, single quotes).
                return ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                pass
    return raw


def _strip_one_newline(value: str) -> str:
    # The template writes "<parameter=k>\nvalue\n</parameter>": those two newlines are framing.
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value


class Qwen3CoderToolParser(BlockToolParser):
    """XML-style calls; values are typed from the tool's parameter schema."""

    start_markers = (OPEN,)

    def _calls(self, body: str) -> list[tuple[str, Any]] | None:
        calls: list[tuple[str, Any]] = []
        for fn in _FUNCTION.finditer(body):
            name = fn.group(1).strip()
            props = self.schema_for(name).get("properties", {})
            args: dict[str, Any] = {}
            for param in _PARAM.finditer(fn.group(2)):
                key = param.group(1).strip()
                sub = props.get(key, {}) if isinstance(props, Mapping) else {}
                value = _strip_one_newline(param.group(2))
                args[key] = convert(value, sub if isinstance(sub, Mapping) else {})
            calls.append((name, args))
        return calls or None

    def parse_block(self, buf: str, final: bool) -> Block | None:
        """Parse ``<tool_call>…</tool_call>`` holding one or more ``<function=…>``."""
        end = buf.find(CLOSE, len(OPEN))
        if end == -1:
            if not final:
                return None
            return Block(len(buf), self._calls(buf[len(OPEN) :]))
        return Block(end + len(CLOSE), self._calls(buf[len(OPEN) : end]))
