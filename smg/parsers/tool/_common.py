"""Helpers for JSON-shaped calls shared by several tool-call families."""

from __future__ import annotations

import json
from typing import Any

from smg.parsers._text import bracket_end
from smg.parsers.tool.base import Block, load_object


def named_call(obj: Any) -> tuple[str, Any] | None:
    """``{"name", "arguments"|"parameters"}`` as ``(name, args)``, or None."""
    if not isinstance(obj, dict):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        # Some fine-tunes emit the arguments JSON-encoded a second time.
        args = load_object(args)
    name = obj.get("name")
    if not isinstance(name, str) or not isinstance(args, dict):
        return None
    return (name, args)


def named_calls(value: Any) -> list[tuple[str, Any]] | None:
    """A call object or a list of them as calls, or None if any element is not a call."""
    items = value if isinstance(value, list) else [value]
    calls = [named_call(item) for item in items]
    if not calls or any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


def json_value_block(buf: str, start: int, final: bool) -> Block | None:
    """A block whose calls are the JSON object or array opening at ``buf[start]``."""
    if start >= len(buf):
        return Block(len(buf), None) if final else None
    if buf[start] not in "[{":
        return Block(start, None)
    end = bracket_end(buf, start)
    if end is None:
        return Block(len(buf), None) if final else None
    try:
        value = json.loads(buf[start:end])
    except (ValueError, RecursionError):
        return Block(end, None)
    return Block(end, named_calls(value))
