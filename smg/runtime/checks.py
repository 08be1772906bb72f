"""Checks that need the registries: filter types and configs, LB policies, protocols."""

from __future__ import annotations

from pathlib import Path

from jsonschema import Draft202012Validator

from smg.clusters.lb import LB_POLICIES
from smg.config.errors import ConfigIssue, line_for
from smg.config.model import Config, LbPolicyConfig
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
        policies: list[tuple[JsonPath, LbPolicyConfig]] = [((*base, "lb_policy"), cc.lb_policy)]
        if cc.pd is not None:  # a PD cluster: each group's policy
            policies = [
                ((*base, "pd", "prefill", "lb_policy"), cc.pd.prefill.lb_policy),
                ((*base, "pd", "decode", "lb_policy"), cc.pd.decode.lb_policy),
            ]
        for at, lb in policies:
            try:
                factory = LB_POLICIES.get(lb.type)
            except UnknownName as exc:
                issues.append(_issue(config, (*at, "type"), _unknown(exc)))
                continue
            try:
                factory(lb.config)
            except ValueError as exc:
                issues.append(_issue(config, (*at, "config"), str(exc)))
    issues.extend(_model_issues(config))
    return issues


def _model_issues(config: Config) -> list[ConfigIssue]:
    """gRPC-mode models: the tokenizer directory exists and parser names resolve.

    The tokenizer itself loads later (first request, or in the background once live), so
    a reload never waits for a large tokenizer; only its presence is checked here.
    """
    from smg.parsers.reasoning import REASONING_PARSERS
    from smg.parsers.tool import TOOL_PARSERS

    issues: list[ConfigIssue] = []
    for m in config.models:
        if m.tokenizer is not None:
            problem = _tokenizer_dir_problem(Path(m.tokenizer))
            if problem is not None:
                issues.append(_issue(config, ("models", m.name, "tokenizer"), problem))
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


def _tokenizer_dir_problem(path: Path) -> str | None:
    if not path.is_dir():
        return f"tokenizer directory {str(path)!r} does not exist"
    if not (path / "tokenizer.json").is_file():
        return f"tokenizer directory {str(path)!r} has no tokenizer.json"
    return None
