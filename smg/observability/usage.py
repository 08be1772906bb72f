"""Token figures read straight out of answer bytes, without parsing the JSON.

OpenAI bodies and final stream chunks carry ``"usage": {"prompt_tokens": N,
"completion_tokens": N, "prompt_tokens_details": {"cached_tokens": N},
"completion_tokens_details": {"reasoning_tokens": N}}``; SGLang's ``meta_info`` uses the
same names; Anthropic and Gemini name theirs their own way. One search from the end
(where usage sits) and one regex pass over what follows cost far less than decoding a
body the gateway otherwise relays untouched.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

import orjson

USAGE_MARK: Final = b'"prompt_tokens":'
"""Present in an OpenAI-dialect chunk or body only if it carries usage figures."""
_NAMES: Final[dict[str, tuple[str, ...]]] = {
    # prompt, completion, cached, reasoning[, extra prompt part]
    "openai": ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens"),
    # input_tokens counts only the uncached part: prompt = input + cache read + creation.
    "anthropic": (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "reasoning_tokens",
        "cache_creation_input_tokens",
    ),
    "gemini": (
        "promptTokenCount",
        "candidatesTokenCount",
        "cachedContentTokenCount",
        "thoughtsTokenCount",
    ),
}


class _Reader(NamedTuple):
    anchors: tuple[bytes, bytes]
    """The prompt and completion keys: usage sits around the last of them."""
    figures: re.Pattern[bytes]
    """Every figure of the dialect with its value: ``"name":`` then digits."""
    slot: dict[bytes, int]
    """Figure name -> its place in ``_NAMES``."""
    names: tuple[str, ...]
    """``_NAMES`` of the dialect, padded to five."""


def _reader(names: tuple[str, ...]) -> _Reader:
    alternatives = b"|".join(re.escape(n.encode()) for n in names)
    return _Reader(
        (b'"%s":' % names[0].encode(), b'"%s":' % names[1].encode()),
        re.compile(rb'"(' + alternatives + rb')":[ \t\r\n]*(\d+)'),
        {n.encode(): i for i, n in enumerate(names)},
        (*names, "")[:5],
    )


_READERS: Final = {dialect: _reader(names) for dialect, names in _NAMES.items()}


class Usage(NamedTuple):
    """Token counts of one answer (0 where not reported)."""

    prompt: int
    completion: int
    cached: int
    reasoning: int

    def merge(self, other: Usage | None) -> Usage:
        """Field by field the larger (streams report running totals across events)."""
        if other is None:
            return self
        return Usage(*(max(a, b) for a, b in zip(self, other, strict=True)))


# Usage objects are small and start with their prompt figure in every layout we know;
# this much before it still catches a figure or two put first (llama.cpp's completion).
_BACK: Final = 64
_new_usage: Final = tuple.__new__  # Usage(...) goes through a Python-level __new__


def usage_in(data: bytes | None, dialect: str = "openai") -> Usage | None:
    """The usage figures in ``data`` (a body or one SSE event of ``dialect``), or None.

    One search from the end for the prompt figure (else the completion figure). Where it
    opens a flat object (vLLM, SGLang and OpenAI without details) that object alone is
    parsed; otherwise one regex pass runs from just before it to the end, and where a
    figure appears more than once (SGLang ``meta_info`` per choice) the last one counts.
    """
    reader = _READERS.get(dialect)
    if not data or reader is None:
        return None
    at = data.rfind(reader.anchors[0])
    if at < 0:
        at = data.rfind(reader.anchors[1])
        if at < 0:
            return None
    values: list[int] | None = None
    if at and data[at - 1] == 123:  # "{": the figure opens its object
        # Parse up to the first "}": the whole object when it is flat (vLLM, SGLang,
        # OpenAI without details); a nested one fails to parse and is read by the regex.
        end = data.find(b"}", at)
        if end > 0:
            names = reader.names
            try:
                get = _loads(data[at - 1 : end + 1]).get
                values = [
                    get(names[0], 0) + 0,
                    get(names[1], 0) + 0,
                    get(names[2], 0) + 0,
                    get(names[3], 0) + 0,
                    get(names[4], 0) + 0,
                ]
            except (ValueError, TypeError):  # nested or not JSON, or a figure not a number
                pass
        start = at
    else:  # a figure or two may come before the prompt figure (llama.cpp's completion)
        start = max(0, at - _BACK)
    if values is None:
        values = [0, 0, 0, 0, 0]
        slot = reader.slot
        for name, number in reader.figures.findall(data, start):
            values[slot[name]] = int(number)
    prompt = values[0] + values[4]
    if dialect == "anthropic":
        prompt += values[2]
    return _new_usage(Usage, (prompt, values[1], values[2], values[3]))


_loads: Final = orjson.loads
