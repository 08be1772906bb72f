"""Durations and sizes as written in the configuration, to seconds and bytes."""

from __future__ import annotations

import re

# the same languages as the duration and size patterns of the schema (a test checks)
DURATION_PATTERN = r"^(\d+(?:\.\d+)?)(ms|s|m|h)$"
SIZE_PATTERN = r"^(\d+)(KB|MB|GB|KiB|MiB|GiB|B)$"
_DURATION = re.compile(DURATION_PATTERN)
_SIZE = re.compile(SIZE_PATTERN)

_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_BYTES = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}


def parse_duration(value: str | float) -> float:
    """Seconds in ``"250ms"``, ``"30s"``, ``"1.5m"``, ``"2h"`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is not a duration: negative")
        return float(value)
    found = _DURATION.match(value)
    if found is None:
        raise ValueError(f"{value!r} is not a duration such as '250ms', '30s', '5m' or '1h'")
    return float(found.group(1)) * _SECONDS[found.group(2)]


def parse_size(value: str | int) -> int:
    """Bytes in an integer or ``"512KB"``, ``"4MiB"``, ``"1GB"`` (KB = 1000, KiB = 1024)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is not a size: negative")
        return value
    found = _SIZE.match(value)
    if found is None:
        raise ValueError(f"{value!r} is not a size such as 1048576, '512KB' or '4MiB'")
    return int(found.group(1)) * _BYTES[found.group(2)]
