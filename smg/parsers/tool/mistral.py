"""Mistral: ``[TOOL_CALLS][{"name", "arguments"}, …]`` and the newer ``[TOOL_CALLS]f[ARGS]{…}``."""

from __future__ import annotations

import json

from smg.parsers._text import bracket_end, skip_ws
from smg.parsers.tool._common import json_value_block
from smg.parsers.tool.base import Block, BlockToolParser

MARKER = "[TOOL_CALLS]"
ARGS = "[ARGS]"
CALL_ID = "[CALL_ID]"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _ID_CHARS | frozenset("_-.")


class MistralToolParser(BlockToolParser):
    """Both Mistral call syntaxes; each ``[TOOL_CALLS]`` opens one block."""

    start_markers = (MARKER,)

    @staticmethod
    def _scan(buf: str, i: int, chars: frozenset[str]) -> int:
        while i < len(buf) and buf[i] in chars:
            i += 1
        return i

    def parse_block(self, buf: str, final: bool) -> Block | None:
        """Parse the JSON-array form or the ``name[CALL_ID]id[ARGS]{json}`` form."""
        i = skip_ws(buf, len(MARKER))
        if i < len(buf) and buf[i] == "[":
            return json_value_block(buf, i, final)
        k = self._scan(buf, i, _NAME_CHARS)
        name = buf[i:k]
        if buf.startswith(CALL_ID, k):
            k = self._scan(buf, k + len(CALL_ID), _ID_CHARS)
            heads: tuple[str, ...] = (ARGS,)
        else:
            heads = (ARGS, CALL_ID)
        rest = buf[k:]
        if not rest.startswith(ARGS):
            if not final and any(h.startswith(rest) for h in heads):
                return None
            # Not a call after all: only the marker becomes content, the rest is rescanned.
            return Block(len(MARKER), None)
        a = skip_ws(buf, k + len(ARGS))
        if a == len(buf) or buf[a] != "{":
            if a == len(buf) and not final:
                return None
            return Block(a, None)
        end = bracket_end(buf, a)
        if end is None:
            return Block(len(buf), None) if final else None
        try:
            args = json.loads(buf[a:end])
        except (ValueError, RecursionError):
            return Block(end, None)
        return Block(end, [(name, args)] if name else None)
