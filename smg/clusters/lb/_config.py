"""Config validation helpers shared by the LB policy factories."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


def check_keys(policy: str, config: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Reject a non-mapping config and any key the policy does not know."""
    if not isinstance(config, Mapping):
        raise ValueError(f"{policy}: config must be a mapping, got {type(config).__name__}")
    unknown = sorted(str(k) for k in config if k not in allowed)
    if unknown:
        allowed_s = ", ".join(sorted(allowed)) or "(none)"
        keys = ", ".join(repr(k) for k in unknown)
        raise ValueError(f"{policy}: unknown config key {keys} (allowed: {allowed_s})")


def get_int(policy: str, config: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    """``config[key]`` as an int >= ``minimum`` (bools are not integers here)."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{policy}: {key} must be an integer >= {minimum} (got {value!r})")
    return value


def get_optional_int(policy: str, config: Mapping[str, Any], key: str) -> int | None:
    """``config[key]`` as an int, or None when absent or null."""
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{policy}: {key} must be an integer (got {value!r})")
    return value


def get_str(policy: str, config: Mapping[str, Any], key: str, default: str | None) -> str | None:
    """``config[key]`` as a non-empty string, or ``default`` when absent or null."""
    value = config.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{policy}: {key} must be a non-empty string (got {value!r})")
    return value
