"""Model-name → parser-name auto-selection by ordered glob patterns (first match wins)."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase


def select(model: str, table: Sequence[tuple[str, str | None]]) -> str | None:
    """The parser for ``model`` (matched case-insensitively on its last path part)."""
    base = model.strip().rstrip("/").rsplit("/", 1)[-1].lower()
    for pattern, name in table:
        if fnmatchcase(base, pattern):
            return name
    return None
