"""Pythonic calls (Llama 4, others): ``[f(a=1, b="x"), g()]``, literals only, via ``ast``."""

from __future__ import annotations

import ast
from typing import Any

from smg.parsers._text import bracket_end
from smg.parsers.tool.base import Block, BlockToolParser

PY_START = "<|python_start|>"
PY_END = "<|python_end|>"


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def parse_pythonic(text: str) -> list[tuple[str, Any]] | None:
    """Calls in a Python list-of-calls expression; None unless every argument is a literal."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    body = tree.body
    nodes = body.elts if isinstance(body, ast.List) else [body]
    calls: list[tuple[str, Any]] = []
    for node in nodes:
        if not isinstance(node, ast.Call) or node.args:
            return None
        name = _dotted(node.func)
        if name is None:
            return None
        args: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                return None
            try:
                # literal_eval never executes code: names, calls and operators are refused.
                args[kw.arg] = ast.literal_eval(kw.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
        calls.append((name, args))
    return calls or None


class PythonicToolParser(BlockToolParser):
    """A list of calls opening the output, or wrapped in ``<|python_start|>…<|python_end|>``."""

    start_markers = (PY_START,)
    lead_chars = "["

    def parse_block(self, buf: str, final: bool) -> Block | None:
        """Parse the bracketed list (or the python_start/end span) at the start of ``buf``."""
        if buf.startswith(PY_START):
            end = buf.find(PY_END, len(PY_START))
            if end == -1:
                return Block(len(buf), parse_pythonic(buf[len(PY_START) :])) if final else None
            return Block(end + len(PY_END), parse_pythonic(buf[len(PY_START) : end]))
        stop = bracket_end(buf, 0, quotes="\"'")
        if stop is None:
            return Block(len(buf), None) if final else None
        return Block(stop, parse_pythonic(buf[:stop]))
