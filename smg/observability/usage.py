"""Token figures read straight out of answer bytes, without parsing the JSON.

OpenAI bodies and final stream chunks carry ``"usage": {"prompt_tokens": N,
"completion_tokens": N, "prompt_tokens_details": {"cached_tokens": N},
"completion_tokens_details": {"reasoning_tokens": N}}``; SGLang's ``meta_info`` uses the
same names. A substring search per figure (from the end, where usage sits) costs far
less than decoding a body the gateway otherwise relays untouched.
"""

from __future__ import annotations

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


def _int_after(data: bytes, key: bytes) -> int:
    i = data.rfind(key)
    if i < 0:
        return 0
    j = i + len(key)
    end = len(data)
    while j < end and data[j] in b" \t\r\n":
        j += 1
    k = j
    while k < end and 48 <= data[k] <= 57:
        k += 1
    return int(data[j:k]) if k > j else 0


def usage_in(data: bytes | None, dialect: str = "openai") -> Usage | None:
    """The usage figures in ``data`` (a body or one SSE event of ``dialect``), or None."""
    keys = _KEYS.get(dialect)
    if not data or keys is None or (keys[0] not in data and keys[1] not in data):
        return None
    values = [_int_after(data, k) for k in keys]
    prompt = values[0] + sum(values[4:])
    if dialect == "anthropic":
        prompt += values[2]
    return Usage(prompt, values[1], values[2], values[3])
