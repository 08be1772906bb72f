"""JSON Schema (as OpenAI tools and ``response_format`` carry it) → Gemini's ``Schema``.

Gemini's ``FunctionDeclaration.parameters`` and ``generationConfig.responseSchema`` take a
subset of OpenAPI 3.0: unknown keywords are rejected ("Invalid JSON payload received.
Unknown name …"), so everything outside that subset is removed, and the constructs
it cannot express are rewritten where a faithful form exists:

* ``$ref`` to ``$defs`` / ``definitions`` is inlined (a recursive one becomes a bare
  ``object``); ``$schema``, ``$id``, ``additionalProperties``, ``examples``, ``strict`` …
  are dropped.
* ``type: [T, "null"]`` and ``anyOf: [..., {type: null}]`` become ``nullable: true``;
  ``oneOf`` becomes ``anyOf``; ``const: v`` becomes ``enum: [v]``; a one-element
  ``allOf`` is merged in.
* ``enum`` is kept only for strings (Gemini's enums are string-typed); ``format`` only
  where Gemini accepts it (``enum``/``date-time`` for strings, ``int32``/``int64``,
  ``float``/``double``); ``required`` only names declared properties.
"""

from __future__ import annotations

from typing import Any, Final

_ALLOWED: Final = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
_FORMATS: Final = {
    "string": frozenset({"enum", "date-time"}),
    "integer": frozenset({"int32", "int64"}),
    "number": frozenset({"float", "double"}),
}
_MAX_DEPTH: Final = 32


def to_gemini_schema(schema: Any) -> dict[str, Any]:
    """A Gemini ``Schema`` for a JSON Schema document (never raises on odd input)."""
    if not isinstance(schema, dict):
        return {}
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, dict):
            defs.update({f"#/{key}/{name}": v for name, v in found.items()})
    cleaned: dict[str, Any] = _clean(schema, defs, (), 0)
    return cleaned


def _resolve(node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    if ref in seen or ref not in defs:
        return None  # recursive or unresolvable: the caller keeps a bare object
    target = defs[ref]
    if not isinstance(target, dict):
        return None
    rest = {k: v for k, v in node.items() if k != "$ref"}
    return {**target, **rest, "__ref__": ref}


def _clean(
    node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...], depth: int
) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        return {"type": "object"}
    resolved = _resolve(node, defs, seen)
    if resolved is None:
        desc = node.get("description")
        return {"type": "object", **({"description": desc} if isinstance(desc, str) else {})}
    node = resolved
    ref = node.pop("__ref__", None)
    if isinstance(ref, str):
        seen = (*seen, ref)
    node = _merge_all_of(node)
    out: dict[str, Any] = {}
    nullable = node.get("nullable") is True
    typ = node.get("type")
    if isinstance(typ, list):
        kinds = [t for t in typ if t != "null"]
        nullable = nullable or len(kinds) < len(typ)
        typ = kinds[0] if len(kinds) == 1 else None
        if len(kinds) > 1:
            out["anyOf"] = [{"type": t} for t in kinds if isinstance(t, str)]
    if typ == "null":
        typ, nullable = None, True
    if isinstance(typ, str):
        out["type"] = typ
    if "const" in node and "enum" not in node:
        node = {**node, "enum": [node["const"]]}
        if "type" not in out and isinstance(node["const"], str):
            out["type"] = "string"
    variants = node.get("anyOf", node.get("oneOf"))
    if isinstance(variants, list):
        kept: list[dict[str, Any]] = []
        for v in variants:
            if isinstance(v, dict) and v.get("type") == "null":
                nullable = True
            elif isinstance(v, dict):
                kept.append(_clean(v, defs, seen, depth + 1))
        if len(kept) == 1 and not out:
            out.update(kept[0])
        elif kept:
            out["anyOf"] = kept
    for key, value in node.items():
        if key not in _ALLOWED or key in ("type", "anyOf", "nullable"):
            continue
        if key == "properties":
            if isinstance(value, dict):
                out[key] = {
                    str(k): _clean(v, defs, seen, depth + 1) if isinstance(v, dict) else {}
                    for k, v in value.items()
                }
        elif key == "items":
            if isinstance(value, dict):
                out[key] = _clean(value, defs, seen, depth + 1)
        elif key == "enum":
            if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
                out[key] = value
        elif key == "format":
            if value in _FORMATS.get(str(out.get("type")), ()):
                out[key] = value
        else:
            out[key] = value
    if "required" in out:
        props = out.get("properties", {})
        req = [r for r in out["required"] if isinstance(r, str) and r in props]
        if req:
            out["required"] = req
        else:
            del out["required"]
    if nullable:
        out["nullable"] = True
    return out


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    parts = node.get("allOf")
    if not isinstance(parts, list) or len(parts) != 1 or not isinstance(parts[0], dict):
        return node
    merged = {k: v for k, v in node.items() if k != "allOf"}
    for k, v in parts[0].items():
        merged.setdefault(k, v)
    return merged


def function_parameters(schema: Any) -> dict[str, Any] | None:
    """``parameters`` of a declaration, or None for a function that takes no arguments.

    Gemini rejects an ``object`` parameters schema with no properties.
    """
    cleaned = to_gemini_schema(schema)
    if not cleaned or (cleaned.get("type") == "object" and not cleaned.get("properties")):
        return None
    return cleaned
