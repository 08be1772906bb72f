"""The configuration JSON Schema: loading it and walking it alongside a document."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

# schemas/ at the repository root is the single source of truth for fields and defaults
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "smg.schema.json"

Schema = dict[str, Any]

__all__ = ["SCHEMA_PATH", "Schema", "ValidationError", "load_schema", "validator"]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@cache
def load_schema() -> Schema:
    """The parsed schema (cached; treat as read-only)."""
    with SCHEMA_PATH.open(encoding="utf-8") as f:
        schema: Schema = json.load(f)
    return schema


@cache
def validator() -> Draft202012Validator:
    """A validator for the configuration schema."""
    return Draft202012Validator(load_schema())


def resolve(schema: Schema, root: Schema) -> Schema:
    """Follow a local ``$ref``, merging the referring schema's own keywords over the target."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    merged = dict(resolve(target, root))
    merged.update((k, v) for k, v in schema.items() if k != "$ref")
    return merged


def type_matches(type_name: str, value: Any) -> bool:
    """Whether ``value`` is of JSON Schema type ``type_name``."""
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    if type_name == "number" and isinstance(value, float):
        return True
    return isinstance(value, _JSON_TYPES.get(type_name, ()))


def accepts_type(schema: Schema, value: Any) -> bool:
    """Whether the ``type`` keyword of ``schema`` (if any) admits ``value``."""
    declared = schema.get("type")
    if declared is None:
        return True
    names = [declared] if isinstance(declared, str) else list(declared)
    return any(type_matches(n, value) for n in names)


def branch_for(schema: Schema, value: Any, root: Schema) -> Schema:
    """The schema that describes ``value``: for anyOf/oneOf, the first branch of its type."""
    schema = resolve(schema, root)
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if not branches:
            continue
        for branch in branches:
            resolved = resolve(branch, root)
            if "type" in resolved and accepts_type(resolved, value):
                return branch_for(resolved, value, root)
    return schema


def child_schema(schema: Schema, key: str | int, root: Schema) -> Schema | None:
    """The schema of member ``key`` of an object or array described by ``schema``."""
    if isinstance(key, int):
        items = schema.get("items")
        return items if isinstance(items, dict) else None
    props = schema.get("properties", {})
    if key in props:
        sub: Schema = props[key]
        return sub
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def schema_at(doc: Any, path: tuple[str | int, ...], root: Schema) -> Schema | None:
    """The schema describing the value at ``path`` in ``doc``, or None if the schema is silent."""
    schema: Schema | None = root
    value = doc
    for key in path:
        if schema is None:
            return None
        schema = child_schema(branch_for(schema, value, root), key, root)
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return None if schema is None else branch_for(schema, value, root)


def apply_defaults(doc: Any, root: Schema | None = None) -> Any:
    """A copy of ``doc`` with every missing property that has a schema ``default`` filled in."""
    root = load_schema() if root is None else root
    return _fill(copy.deepcopy(doc), root, root)


def _fill(value: Any, schema: Schema, root: Schema) -> Any:
    schema = branch_for(schema, value, root)
    if isinstance(value, dict):
        for key, prop in schema.get("properties", {}).items():
            if key not in value:
                default = _default_of(prop, root)
                if default is not _MISSING:
                    value[key] = copy.deepcopy(default)
        for key in value:
            sub = child_schema(schema, key, root)
            if sub is not None:
                value[key] = _fill(value[key], sub, root)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                value[i] = _fill(item, items, root)
    return value


_MISSING = object()


def _default_of(prop: Schema, root: Schema) -> Any:
    if "default" in prop:
        return prop["default"]
    return resolve(prop, root).get("default", _MISSING)


def is_valid_at(schema: Schema, value: Any, root: Schema) -> bool:
    """Whether ``value`` is valid against ``schema`` (a subschema of ``root``)."""
    sub = dict(schema)
    sub["$defs"] = root.get("$defs", {})
    return bool(Draft202012Validator(sub).is_valid(value))
