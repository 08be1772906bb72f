"""``${VAR}`` and ``${VAR:-default}`` substitution in the string values of a parsed document."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from smg.config.paths import JsonPath

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IMPLICIT_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


@dataclass(slots=True)
class Substitution:
    """The outcome of substituting a whole document."""

    doc: Any
    # path → names of the variables read there
    used: dict[JsonPath, tuple[str, ...]] = field(default_factory=dict)
    # path → message, for references that could not be resolved
    errors: dict[JsonPath, str] = field(default_factory=dict)
    # path → the value YAML would have typed an unquoted result as, when not a string
    typed: dict[JsonPath, Any] = field(default_factory=dict)


class _Unresolved(Exception):
    """A reference in one string could not be resolved."""


def substitute(
    doc: Any, env: Mapping[str, str], plain: set[JsonPath] | frozenset[JsonPath] = frozenset()
) -> Substitution:
    """Return a copy of ``doc`` with every ``${...}`` in string values replaced from ``env``.

    Results stay strings; for unquoted (``plain``) ones the YAML-typed alternative is
    kept in ``typed`` so that the schema can decide (``workers: ${N:-2}`` may become 2).
    """
    result = Substitution(doc=None)
    result.doc = _walk(doc, (), env, plain, result)
    return result


def _walk(
    value: Any,
    path: JsonPath,
    env: Mapping[str, str],
    plain: set[JsonPath] | frozenset[JsonPath],
    result: Substitution,
) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, (*path, k), env, plain, result) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*path, i), env, plain, result) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    names: list[str] = []
    try:
        text = _expand(value, env, names)
    except _Unresolved as exc:
        result.errors[path] = str(exc)
        return value
    if names:
        result.used[path] = tuple(names)
    if path in plain and names:
        typed = _yaml_typed(text)
        if not isinstance(typed, str):
            result.typed[path] = typed
    return text


def expand(text: str, env: Mapping[str, str], names: list[str] | None = None) -> str:
    """Expand the references in one string; ``$${`` gives a literal ``${``.

    Raises ValueError naming the variable when a reference has no value and no default.
    """
    try:
        return _expand(text, env, [] if names is None else names)
    except _Unresolved as exc:
        raise ValueError(str(exc)) from None


def _expand(text: str, env: Mapping[str, str], names: list[str]) -> str:
    out: list[str] = []
    missing: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            out.append("${")
            i += 3
            continue
        if not text.startswith("${", i):
            out.append(text[i])
            i += 1
            continue
        end = text.find("}", i + 2)
        if end < 0:
            raise _Unresolved(f"unterminated '${{' in {text!r}")
        body = text[i + 2 : end]
        name, sep, default = body.partition(":-")
        if not _NAME.fullmatch(name):
            raise _Unresolved(f"invalid variable reference '${{{body}}}'")
        names.append(name)
        found = env.get(name)
        # like the shell's ${VAR:-default}: an empty value also takes the default
        if sep and not found:
            out.append(default)
        elif found is None:
            missing.append(name)
        else:
            out.append(found)
        i = end + 1
    if len(missing) == 1:
        raise _Unresolved(f"environment variable '{missing[0]}' is not set and has no default")
    if missing:
        listed = ", ".join(f"'{m}'" for m in missing)
        raise _Unresolved(f"environment variables {listed} are not set and have no default")
    return "".join(out)


def _yaml_typed(text: str) -> Any:
    tag = yaml.resolver.Resolver().resolve(  # type: ignore[no-untyped-call]
        yaml.ScalarNode, text, (True, False)
    )
    if tag not in _IMPLICIT_TAGS:
        return text
    # the resolver matched the whole text against a scalar pattern, so this is one scalar
    return yaml.safe_load(text)
