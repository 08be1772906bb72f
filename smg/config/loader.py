"""Load a configuration: parse, substitute, validate, check, default, and type it."""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smg.config.build import build_config, canonical_hash, normalize
from smg.config.envsubst import substitute
from smg.config.errors import ConfigError, ConfigIssue, IssueCollector
from smg.config.model import Config
from smg.config.paths import JsonPath, format_path
from smg.config.schema import apply_defaults
from smg.config.semantic import KnownTypes, semantic_issues
from smg.config.validate import coerce_substituted, schema_issues
from smg.config.yaml_source import ParsedYaml, parse_yaml

# a value read from a variable with one of these in its name is redacted in dumps
_SECRET_VARIABLE_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def load_config(
    path: str | Path,
    *,
    known_filter_types: KnownTypes | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate the YAML file at ``path``; :class:`ConfigError` lists every problem.

    ``known_filter_types`` returns the filter types that exist (the filter registry);
    without it filter types are not checked. ``env`` defaults to ``os.environ``.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigIssue(source, None, "", f"cannot read file: {exc}")]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigIssue(source, None, "", f"not UTF-8 text: {exc}")]) from None
    return _load(parse_yaml(text, source), source, _short_hash(data), known_filter_types, env)


def load_config_text(
    text: str,
    source: str,
    *,
    known_filter_types: KnownTypes | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Like :func:`load_config` for YAML already in memory; ``source`` names it in issues."""
    return _load(
        parse_yaml(text, source),
        source,
        _short_hash(text.encode("utf-8")),
        known_filter_types,
        env,
    )


def config_from_dict(
    doc: Mapping[str, Any],
    source: str,
    *,
    known_filter_types: KnownTypes | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Validate a document built in memory (``smg launch``); issues carry no line numbers."""
    try:
        version_hash = canonical_hash(doc)[:16]
    except (TypeError, ValueError) as exc:
        raise ConfigError([ConfigIssue(source, None, "", f"not a JSON document: {exc}")]) from None
    parsed = ParsedYaml(copy.deepcopy(dict(doc)), lines={}, plain=set())
    return _load(parsed, source, version_hash, known_filter_types, env)


def _short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _load(
    parsed: ParsedYaml,
    source: str,
    version_hash: str,
    known_filter_types: KnownTypes | None,
    env: Mapping[str, str] | None,
) -> Config:
    collector = IssueCollector(source, parsed.lines)
    if not isinstance(parsed.doc, dict):
        kind = type(parsed.doc).__name__
        collector.add((), f"the top level must be a mapping of settings, not a {kind}")
        raise ConfigError(collector.issues)

    sub = substitute(parsed.doc, os.environ if env is None else env, parsed.plain)
    for path, message in sub.errors.items():
        collector.add(path, message)
    doc = coerce_substituted(sub.doc, sub.typed)

    schema_collector = IssueCollector(source, parsed.lines)
    schema_issues(doc, schema_collector)
    # an unresolved reference already explains whatever the schema says about its value
    unresolved = {format_path(path) for path in sub.errors}
    collector.issues.extend(i for i in schema_collector.issues if i.path not in unresolved)
    if collector.issues:
        raise ConfigError(collector.issues)

    doc = apply_defaults(doc)
    semantic_issues(doc, collector, known_filter_types)
    if collector.issues:
        raise ConfigError(collector.issues)

    moved = normalize(doc)
    doc = apply_defaults(doc)
    return build_config(
        doc,
        source=source,
        version_hash=version_hash,
        secret_paths=_secret_paths(sub.used, moved),
        lines=parsed.lines,
    )


def _secret_paths(
    used: dict[JsonPath, tuple[str, ...]], moved: dict[JsonPath, JsonPath]
) -> frozenset[JsonPath]:
    return frozenset(
        moved.get(path, path)
        for path, names in used.items()
        if any(word in name.upper() for name in names for word in _SECRET_VARIABLE_WORDS)
    )
