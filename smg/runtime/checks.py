"""Checks that need the registries: filter types and configs, LB policies, protocols."""

from __future__ import annotations

from jsonschema import Draft202012Validator

from smg.clusters.lb import LB_POLICIES
from smg.config.errors import ConfigIssue, line_for
from smg.config.model import Config
from smg.config.paths import JsonPath, format_path
from smg.filters.registry import FILTERS
from smg.registry import UnknownName
from smg.upstreams import UPSTREAMS


def _issue(config: Config, path: JsonPath, message: str) -> ConfigIssue:
    return ConfigIssue(config.source, line_for(config.lines, path), format_path(path), message)


def _unknown(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def config_issues(config: Config) -> list[ConfigIssue]:
    """Every registry-level problem, with YAML paths and lines."""
    issues: list[ConfigIssue] = []
    for name, fc in config.filters.items():
        base: JsonPath = ("filters", name)
        try:
            cls = FILTERS.resolve(fc.type)
        except (UnknownName, ImportError, AttributeError, ValueError) as exc:
            issues.append(_issue(config, (*base, "type"), _unknown(exc)))
            continue
        validator = Draft202012Validator(cls.config_schema)
        for err in validator.iter_errors(fc.config):
            issues.append(_issue(config, (*base, "config", *err.absolute_path), err.message))
    for i, cc in enumerate(config.clusters):
        base = ("clusters", i)
        try:
            UPSTREAMS.get(cc.protocol)
        except UnknownName as exc:
            issues.append(_issue(config, (*base, "protocol"), _unknown(exc)))
        try:
            factory = LB_POLICIES.get(cc.lb_policy.type)
        except UnknownName as exc:
            issues.append(_issue(config, (*base, "lb_policy", "type"), _unknown(exc)))
            continue
        try:
            factory(cc.lb_policy.config)
        except ValueError as exc:
            issues.append(_issue(config, (*base, "lb_policy", "config"), str(exc)))
    issues.extend(_model_issues(config))
    return issues


def _model_issues(config: Config) -> list[ConfigIssue]:
    """Parser names of gRPC-mode models must resolve (the tokenizer loads on first use)."""
    from smg.parsers.reasoning import REASONING_PARSERS
    from smg.parsers.tool import TOOL_PARSERS

    issues: list[ConfigIssue] = []
    for m in config.models:
        for key, value, registry in (
            ("tool_parser", m.tool_parser, TOOL_PARSERS),
            ("reasoning_parser", m.reasoning_parser, REASONING_PARSERS),
        ):
            if value in ("auto", "none"):
                continue
            try:
                registry.resolve(value)
            except (UnknownName, ImportError, AttributeError, ValueError) as exc:
                issues.append(_issue(config, ("models", m.name, key), _unknown(exc)))
    return issues
