"""JSON Schema validation that reports every error with its path and a readable message."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

from smg.config.errors import IssueCollector
from smg.config.paths import JsonPath
from smg.config.schema import (
    Schema,
    ValidationError,
    is_valid_at,
    load_schema,
    schema_at,
    validator,
)

_UNEXPECTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def coerce_substituted(doc: Any, typed: dict[JsonPath, Any], root: Schema | None = None) -> Any:
    """Give substituted unquoted values their YAML type where the schema wants that type.

    ``workers: ${N:-2}`` substitutes the string ``"2"``; the schema wants an integer, so
    it becomes 2. Where the schema is silent (filter configs) the YAML type is used, as
    if the value had been written in the file.
    """
    root = load_schema() if root is None else root
    for path, value in typed.items():
        parent = _lookup(doc, path[:-1])
        if parent is _NOTHING or not path:
            continue
        text = parent[path[-1]]
        schema = schema_at(doc, path, root)
        if schema is None or _free_form(doc, path, root):
            use_typed = True
        else:
            use_typed = not is_valid_at(schema, text, root) and is_valid_at(schema, value, root)
        if use_typed:
            parent[path[-1]] = value
    return doc


_NOTHING = object()


def _lookup(doc: Any, path: JsonPath) -> Any:
    for key in path:
        try:
            doc = doc[key]
        except (KeyError, IndexError, TypeError):
            return _NOTHING
    return doc


def _free_form(doc: Any, path: JsonPath, root: Schema) -> bool:
    # inside an object the schema declares with neither properties nor item schemas
    for end in range(len(path) - 1, -1, -1):
        schema = schema_at(doc, path[:end], root)
        if schema is None:
            continue
        return schema.get("type") == "object" and not (
            "properties" in schema or "additionalProperties" in schema
        )
    return False


def schema_issues(doc: Any, collector: IssueCollector) -> None:
    """Validate ``doc`` and add one issue per problem to ``collector``."""
    for error in validator().iter_errors(doc):
        for path, message in _explain(error):
            collector.add(path, message)


def _explain(error: ValidationError) -> Iterator[tuple[JsonPath, str]]:
    """(path, message) for each problem one validation error stands for."""
    path: JsonPath = tuple(error.absolute_path)
    custom = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if isinstance(custom, dict) and isinstance(custom.get(error.validator), str):
        message = custom[error.validator]
        if error.validator in ("oneOf", "anyOf"):
            yield path, message
        else:
            yield path, f"{error.instance!r} {message}"
        return
    if error.validator == "required":
        yield path, f"missing required field {_quoted_name(error.message)}"
    elif error.validator == "additionalProperties":
        yield from _unexpected_keys(error, path)
    elif error.validator in ("anyOf", "oneOf"):
        yield from _explain_alternatives(error, path)
    else:
        yield path, error.message


def _quoted_name(message: str) -> str:
    found = _UNEXPECTED.search(message)
    return f"'{found.group(1)}'" if found else message


def _unexpected_keys(error: ValidationError, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    schema: Any = error.schema
    instance: Any = error.instance
    allowed = sorted(schema.get("properties", {}))
    declared = set(allowed)
    for key in instance:
        if key in declared:
            continue
        message = f"unknown field '{key}'"
        close = difflib.get_close_matches(str(key), allowed, n=1)
        if close:
            message += f" (did you mean '{close[0]}'?)"
        elif allowed:
            message += f"; allowed: {', '.join(allowed)}"
        yield (*path, key), message


def _explain_alternatives(error: ValidationError, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    # group the sub-errors by branch; a branch the value is not even the type of is
    # noise, and when one branch is left its own errors are the useful ones
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    wrong_type = {
        index
        for index, subs in branches.items()
        if any(s.validator == "type" and tuple(s.absolute_path) == path for s in subs)
    }
    candidates = [index for index in branches if index not in wrong_type]
    if len(candidates) == 1:
        for sub in branches[candidates[0]]:
            yield from _explain(sub)
        return
    if not candidates:
        types: list[str] = []
        for subs in branches.values():
            for s in subs:
                if s.validator == "type":
                    declared: Any = s.validator_value
                    types.extend([declared] if isinstance(declared, str) else declared)
        expected = " or ".join(dict.fromkeys(types))
        yield path, f"{error.instance!r} is not of type {expected}"
        return
    yield path, error.message
