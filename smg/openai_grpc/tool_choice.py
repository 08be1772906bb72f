"""``tool_choice`` in gRPC mode: forced calls become a JSON-schema constraint for the engine.

A named ``tool_choice`` constrains the output to that tool's ``parameters`` (the whole
output is the arguments); ``"required"`` constrains it to a JSON array of
``{"name", "parameters"}`` objects, one per call (vLLM's approach). The output is then
turned into calls directly instead of going through the model's tool-call parser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smg.errors import BadRequest
from smg.parsers.tool.base import ToolCallDelta, call_id


@dataclass(frozen=True, slots=True)
class Forced:
    """A forced tool choice: one named function, or any number of calls (``name`` None)."""

    name: str | None
    schema: dict[str, Any]


def _functions(tools: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for t in tools:
        fn = t.get("function") if isinstance(t, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            out[fn["name"]] = fn
    return out


def _params(fn: Mapping[str, Any]) -> dict[str, Any]:
    p = fn.get("parameters")
    return dict(p) if isinstance(p, Mapping) else {"type": "object"}


def forced_choice(body: Mapping[str, Any]) -> Forced | None:
    """The forced tool choice of a chat body, or None (``auto``, ``none``, no tools)."""
    choice = body.get("tool_choice")
    tools = body.get("tools")
    if choice is None or choice in ("auto", "none") or not isinstance(tools, list) or not tools:
        return None
    fns = _functions(tools)
    if choice == "required":
        items = [
            {
                "type": "object",
                "properties": {"name": {"const": n}, "parameters": _params(f)},
                "required": ["name", "parameters"],
            }
            for n, f in fns.items()
        ]
        return Forced(None, {"type": "array", "minItems": 1, "items": {"anyOf": items}})
    name = None
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else None
    if not isinstance(name, str) or name not in fns:
        raise BadRequest(
            "'tool_choice' must be auto, none, required or name a function in 'tools'.",
            param="tool_choice",
        )
    return Forced(name, _params(fns[name]))


def forced_calls(forced: Forced, text: str, seed: str) -> list[ToolCallDelta] | None:
    """The calls in a constrained output, or None if it is not valid JSON of that shape."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if forced.name is not None:
        if not isinstance(doc, dict):
            return None
        args = json.dumps(doc, ensure_ascii=False)
        return [ToolCallDelta(0, call_id(seed, 0), forced.name, args)]
    if not isinstance(doc, list):
        return None
    calls: list[ToolCallDelta] = []
    for i, c in enumerate(doc):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            return None
        args = json.dumps(c.get("parameters", {}), ensure_ascii=False)
        calls.append(ToolCallDelta(i, call_id(seed, i), c["name"], args))
    return calls
