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
"""Present in a chunk or body only if it carries usage figures."""
_KEYS: Final = (
    b'"prompt_tokens":',
    b'"completion_tokens":',
    b'"cached_tokens":',
    b'"reasoning_tokens":',
)


class Usage(NamedTuple):
    """Token counts of one answer (0 where not reported)."""

    prompt: int
    completion: int
    cached: int
    reasoning: int


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


def usage_in(data: bytes | None) -> Usage | None:
    """The usage figures in ``data`` (a body or one SSE event), or None if it has none."""
    if not data or USAGE_MARK not in data:
        return None
    p, c, cached, r = (_int_after(data, k) for k in _KEYS)
    return Usage(p, c, cached, r)
