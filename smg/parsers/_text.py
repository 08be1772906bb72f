"""Text helpers shared by the streaming parsers: marker search, hold-back and bracket matching."""

from __future__ import annotations

from collections.abc import Sequence


def partial_suffix(buf: str, markers: Sequence[str]) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of some marker."""
    best = 0
    n = len(buf)
    for marker in markers:
        first = marker[0]
        # Only positions holding the marker's first character can start a partial match.
        i = buf.find(first, max(0, n - len(marker) + 1))
        while i != -1:
            k = n - i
            if k > best and marker.startswith(buf[i:]):
                best = k
                break
            i = buf.find(first, i + 1)
    return best


def find_first(buf: str, markers: Sequence[str], start: int = 0) -> tuple[int, str]:
    """Earliest marker at or after ``start`` as ``(index, marker)``; ``(-1, "")`` if none."""
    best, found = -1, ""
    for marker in markers:
        i = buf.find(marker, start)
        if i != -1 and (best == -1 or i < best or (i == best and len(marker) > len(found))):
            best, found = i, marker
    return best, found


def bracket_end(s: str, start: int, quotes: str = '"') -> int | None:
    """Index just past the bracketed value opening at ``s[start]``, or None if still open.

    Brackets inside strings (delimited by any char of ``quotes``, with backslash escapes)
    do not count, so a complete JSON value or Python list is recognised before parsing.
    """
    depth = 0
    quote = ""
    escaped = False
    for i in range(start, len(s)):
        ch = s[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in quotes:
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def skip_ws(s: str, i: int) -> int:
    """Index of the first non-whitespace character at or after ``i`` (``len(s)`` if none)."""
    n = len(s)
    while i < n and s[i].isspace():
        i += 1
    return i
