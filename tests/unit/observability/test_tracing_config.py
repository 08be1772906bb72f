"""The ``tracing`` section: schema defaults, errors that name the field, launch shorthands."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from smg import launch
from smg.config.errors import ConfigError
from smg.config.loader import config_from_dict
from smg.config.redact import redact_config


def doc(**tracing: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "listeners": [
            {
                "name": "l",
                "address": "127.0.0.1:30000",
                "routes": [{"match": {"model": "*"}, "cluster": "c"}],
            }
        ],
        "clusters": [{"name": "c", "endpoints": ["http://127.0.0.1:31001"]}],
    }
    if tracing:
        out["tracing"] = tracing
    return out


def launch_doc(*argv: str) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    launch.add_arguments(parser)
    return launch.config_doc(parser.parse_args(["--worker-urls", "http://127.0.0.1:1", *argv]))


def test_defaults_come_from_the_schema() -> None:
    t = config_from_dict(doc(), "<t>").tracing
    assert (t.enabled, t.exporter, t.endpoint) == (False, "otlp_grpc", "http://127.0.0.1:4317")
    assert (t.sample_ratio, t.service_name, t.headers) == (1.0, "smg", ())


def test_bad_values_are_reported_with_their_paths() -> None:
    with pytest.raises(ConfigError) as exc:
        config_from_dict(doc(endpoint="collector:4317", exporter="zipkin", sample_ratio=1.5), "<t>")
    by_path = {i.path: i.message for i in exc.value.issues}
    assert set(by_path) == {"tracing.endpoint", "tracing.exporter", "tracing.sample_ratio"}
    assert "must be a URL" in by_path["tracing.endpoint"]


def test_export_headers_are_redacted_in_dumps() -> None:
    cfg = config_from_dict(doc(headers={"Authorization": "Bearer s3cret", "x-team": "a"}), "<t>")
    assert cfg.tracing.headers == (("Authorization", "Bearer s3cret"), ("x-team", "a"))
    assert redact_config(cfg)["tracing"]["headers"] == {"Authorization": "***", "x-team": "a"}


def test_launch_flags_set_the_tracing_section() -> None:
    assert "tracing" not in launch_doc()
    assert launch_doc("--enable-trace")["tracing"] == {"enabled": True}
    d = launch_doc("--enable-trace", "--otlp-traces-endpoint", "localhost:4317")
    assert d["tracing"] == {"enabled": True, "endpoint": "http://localhost:4317"}
    d = launch_doc("--otlp-traces-endpoint", "https://otel.example:4317")
    assert d["tracing"] == {"endpoint": "https://otel.example:4317"}
    cfg = config_from_dict(launch_doc("--enable-trace"), "<launch>")
    assert cfg.tracing.enabled
