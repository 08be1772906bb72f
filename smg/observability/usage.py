"""Token figures read straight out of answer bytes, without parsing the JSON.

OpenAI bodies and final stream chunks carry ``"usage": {"prompt_tokens": N,
"completion_tokens": N, "prompt_tokens_details": {"cached_tokens": N},
"completion_tokens_details": {"reasoning_tokens": N}}``; SGLang's ``meta_info`` uses the
same names. A substring search per figure (from the end, where usage sits) costs far
less than decoding a body the gateway otherwise relays untouched.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

USAGE_MARK: Final = b'"prompt_tokens":'
"""Present in an OpenAI-dialect chunk or body only if it carries usage figures."""
MARKS: Final[dict[str, bytes]] = {
    "openai": USAGE_MARK,
    "anthropic": b'_tokens":',
    "gemini": b'TokenCount":',
}
"""Per client dialect: a substring every usage-carrying chunk has."""
_KEYS: Final[dict[str, tuple[bytes, ...]]] = {
    # prompt, completion, cached, reasoning[, extra prompt parts]
    "openai": (
        b'"prompt_tokens":',
        b'"completion_tokens":',
        b'"cached_tokens":',
        b'"reasoning_tokens":',
    ),
    # input_tokens counts only the uncached part: prompt = input + cache read + creation.
    "anthropic": (
        b'"input_tokens":',
        b'"output_tokens":',
        b'"cache_read_input_tokens":',
        b'"reasoning_tokens":',
        b'"cache_creation_input_tokens":',
    ),
    "gemini": (
        b'"promptTokenCount":',
        b'"candidatesTokenCount":',
        b'"cachedContentTokenCount":',
        b'"thoughtsTokenCount":',
    ),
}


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


# Usage objects are small: their other figures sit within this many bytes before the
# first one looked for (``"usage":{"prompt_tokens": ...``).
_BACK: Final = 120
_NUMBER: Final = re.compile(rb"[ \t\r\n]*(\d+)")


def _int_after(data: bytes, key: bytes) -> int:
    i = data.rfind(key)
    if i < 0:
        return 0
    m = _NUMBER.match(data, i + len(key))
    return int(m.group(1)) if m else 0


def usage_in(data: bytes | None, dialect: str = "openai") -> Usage | None:
    """The usage figures in ``data`` (a body or one SSE event of ``dialect``), or None.

    Only the tail holding the usage object is searched; where a figure appears more
    than once (SGLang ``meta_info`` per choice) the last one counts.
    """
    keys = _KEYS.get(dialect)
    if not data or keys is None:
        return None
    i = data.rfind(keys[0])
    j = data.rfind(keys[1])
    if i < 0 and j < 0:
        return None
    first = j if i < 0 else (i if j < 0 else min(i, j))
    tail = data[max(0, first - _BACK) :]
    values = [_int_after(tail, k) for k in keys]
    prompt = values[0] + sum(values[4:])
    if dialect == "anthropic":
        prompt += values[2]
    return Usage(prompt, values[1], values[2], values[3])
