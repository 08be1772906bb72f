"""Defaults of a builtin filter's config, read from its JSON Schema so they live in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def schema_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``default`` of every top-level property of an object schema."""
    props: Mapping[str, Mapping[str, Any]] = schema.get("properties", {})
    return {name: prop["default"] for name, prop in props.items() if "default" in prop}


def with_defaults(schema: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the schema's defaults filled in (the loader does not fill filter configs)."""
    return {**schema_defaults(schema), **config}
