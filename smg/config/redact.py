"""Copies of a configuration document with secrets replaced, for dumps and logs."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from smg.config.model import Config
from smg.config.paths import JsonPath

REDACTED = "***"

_SECRET_KEYS = frozenset(
    {"api_key", "apikey", "keys", "key", "token", "password", "secret", "authorization"}
)
# access_token, client_secret, x-api-key, admin_password, ...
_SECRET_SUFFIXES = ("_key", "_keys", "_token", "_secret", "_password")


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a value that must not be shown."""
    norm = key.lower().replace("-", "_")
    return norm in _SECRET_KEYS or norm.endswith(_SECRET_SUFFIXES)


def redact(doc: Mapping[str, Any], secret_paths: Collection[JsonPath] = ()) -> dict[str, Any]:
    """A deep copy of ``doc`` with secret values (by key name or by path) set to ``***``."""
    paths = frozenset(secret_paths)
    out = _redact(doc, (), paths)
    assert isinstance(out, dict)
    return out


def redact_config(config: Config) -> dict[str, Any]:
    """The effective document of ``config`` with its secrets redacted."""
    return redact(config.raw, config.secret_paths)


def _redact(value: Any, path: JsonPath, paths: frozenset[JsonPath]) -> Any:
    if path in paths and value is not None:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: REDACTED
            if isinstance(k, str) and is_secret_key(k) and v is not None
            else _redact(v, (*path, k), paths)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, (*path, i), paths) for i, v in enumerate(value)]
    return value
