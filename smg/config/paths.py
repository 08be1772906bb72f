"""JSON paths into a configuration document and their dotted rendering."""

from __future__ import annotations

import re
from typing import TypeAlias

JsonPath: TypeAlias = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: JsonPath) -> str:
    """Render ``("clusters", 0, "lb_policy")`` as ``clusters[0].lb_policy``."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
            continue
        if _PLAIN_KEY.match(part):
            out.append(f".{part}" if out else part)
        else:
            # keys of user maps (model names, header names) may hold dots or spaces
            out.append(f"[{part!r}]")
    return "".join(out)
