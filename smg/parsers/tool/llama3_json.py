"""Llama 3.x: ``{"name", "parameters"}`` ``;``-separated, maybe after ``<|python_tag|>``."""

from __future__ import annotations

import json
from typing import Any

from smg.parsers._text import bracket_end, skip_ws
from smg.parsers.tool._common import named_call
from smg.parsers.tool.base import Block, BlockToolParser

PYTHON_TAG = "<|python_tag|>"


class Llama3JsonToolParser(BlockToolParser):
    """Calls are JSON objects at the start of the output (or after ``<|python_tag|>``)."""

    start_markers = (PYTHON_TAG,)
    # A bare "{" only means a call when it opens the output; mid-text braces are prose.
    lead_chars = "{"

    def parse_block(self, buf: str, final: bool) -> Block | None:
        """Parse one or more ``;``-separated call objects; trailing text stays content."""
        i = len(PYTHON_TAG) if buf.startswith(PYTHON_TAG) else 0
        calls: list[tuple[str, Any]] = []
        done = 0  # end of the last accepted object
        while True:
            i = skip_ws(buf, i)
            if i == len(buf):
                if not final:
                    return None
                return Block(done if calls else len(buf), calls or None)
            if buf[i] != "{":
                return Block(done, calls) if calls else Block(max(i, 1), None)
            end = bracket_end(buf, i)
            if end is None:
                if not final:
                    return None
                return Block(done, calls) if calls else Block(len(buf), None)
            try:
                call = named_call(json.loads(buf[i:end]))
            except (ValueError, RecursionError):
                call = None
            if call is None:
                return Block(done, calls) if calls else Block(end, None)
            calls.append(call)
            done = end
            k = skip_ws(buf, end)
            if k == len(buf):
                if not final:
                    return None  # a ";" and another call may follow
                return Block(done, calls)
            if buf[k] != ";":
                return Block(done, calls)
            i = k + 1
