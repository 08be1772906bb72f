"""Config validation helpers shared by the LB policy factories."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from smg.config.units import parse_duration


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


def get_float(
    policy: str,
    config: Mapping[str, Any],
    key: str,
    default: float,
    minimum: float,
    maximum: float | None = None,
) -> float:
    """``config[key]`` as a number within ``[minimum, maximum]``."""
    value = config.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value  # NaN
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"within [{minimum:g}, {maximum:g}]" if maximum is not None else f">= {minimum:g}"
        raise ValueError(f"{policy}: {key} must be a number {bound} (got {value!r})")
    return float(value)


def get_bool(policy: str, config: Mapping[str, Any], key: str, default: bool) -> bool:
    """``config[key]`` as a boolean."""
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{policy}: {key} must be true or false (got {value!r})")
    return value


def get_duration(policy: str, config: Mapping[str, Any], key: str, default: float) -> float:
    """``config[key]`` in seconds: a number of seconds or a string such as ``"250ms"``."""
    value = config.get(key, default)
    try:
        return parse_duration(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"{policy}: {key} must be a duration such as '1s' or a number of seconds"
            f" (got {value!r})"
        ) from None
