"""``smg launch`` health / circuit breaker / retry flags: each sets exactly one YAML field."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

import pytest
import yaml

from smg import launch
from smg.config.loader import config_from_dict

# flag → (arguments, path under clusters[0], value expected in the YAML)
FLAGS: dict[str, tuple[list[str], tuple[str, ...], Any]] = {
    "--health-check-interval-secs": (["0.25"], ("health_check", "interval"), "0.25s"),
    "--health-check-timeout-secs": (["3"], ("health_check", "timeout"), "3s"),
    "--health-failure-threshold": (["4"], ("health_check", "unhealthy_threshold"), 4),
    "--health-success-threshold": (["5"], ("health_check", "healthy_threshold"), 5),
    "--health-check-endpoint": (["/ready"], ("health_check", "path"), "/ready"),
    "--disable-health-check": ([], ("health_check", "enabled"), False),
    "--cb-failure-threshold": (["7"], ("outlier_detection", "consecutive_5xx"), 7),
    "--cb-success-threshold": (["6"], ("outlier_detection", "success_threshold"), 6),
    "--cb-timeout-duration-secs": (["45"], ("outlier_detection", "base_ejection_time"), "45s"),
    "--cb-window-duration-secs": (["120"], ("outlier_detection", "window"), "120s"),
    "--disable-circuit-breaker": ([], ("outlier_detection", "enabled"), False),
    "--retry-max-retries": (["5"], ("retry_policy", "max_retries"), 5),
    "--retry-initial-backoff-ms": (["100"], ("retry_policy", "backoff", "base"), "100ms"),
    "--retry-max-backoff-ms": (["1500.5"], ("retry_policy", "backoff", "max"), "1500.5ms"),
    "--retry-backoff-multiplier": (["1.5"], ("retry_policy", "backoff", "multiplier"), 1.5),
    "--retry-jitter-factor": (["0.1"], ("retry_policy", "backoff", "jitter"), 0.1),
    "--disable-retries": ([], ("retry_policy", "max_retries"), 0),
}
BASE = ["--worker-urls", "http://127.0.0.1:31001"]


def doc_for(*argv: str) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    launch.add_arguments(parser)
    return launch.config_doc(parser.parse_args([*BASE, *argv]))


def dig(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@pytest.mark.parametrize("flag", list(FLAGS))
def test_each_flag_sets_its_field_and_nothing_else(flag: str) -> None:
    args, path, expected = FLAGS[flag]
    cluster = doc_for(flag, *args)["clusters"][0]
    assert dig(cluster, path) == expected
    section = cluster[path[0]]
    assert section == ({path[1]: expected} if len(path) == 2 else {path[1]: {path[2]: expected}}), (
        "a flag must not write other fields: unset flags leave schema defaults alone"
    )
    config = config_from_dict(doc_for(flag, *args), "<launch>", env={})
    assert config.clusters[0].config_hash


def test_without_flags_the_sections_are_absent() -> None:
    cluster = doc_for()["clusters"][0]
    assert not {"health_check", "outlier_detection", "retry_policy"} & set(cluster)


def test_disable_retries_wins_over_a_retry_count() -> None:
    cluster = doc_for("--retry-max-retries", "5", "--disable-retries")["clusters"][0]
    assert cluster["retry_policy"]["max_retries"] == 0


def test_print_config_maps_every_flag() -> None:
    argv = [
        token
        for flag, (args, _, _) in FLAGS.items()
        if flag != "--disable-retries"  # it would hide --retry-max-retries
        for token in (flag, *args)
    ]
    out = subprocess.run(
        [sys.executable, "-m", "smg", "launch", *BASE, *argv, "--print-config"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    doc = yaml.safe_load(out.stdout)
    cluster = doc["clusters"][0]
    for flag, (_, path, expected) in FLAGS.items():
        if flag != "--disable-retries":
            assert dig(cluster, path) == expected, flag
    typed = config_from_dict(doc, "<launch>", env={}).clusters[0]
    assert typed.health_check.interval == 0.25
    assert typed.health_check.enabled is False
    assert typed.outlier_detection.base_ejection_time == 45.0
    assert typed.retry_policy.backoff.max == pytest.approx(1.5005)
    assert typed.retry_policy.max_retries == 5


def test_admission_rate_limit_and_grace_flags_build_filters_in_order() -> None:
    doc = doc_for(
        *BASE,
        "--api-key",
        "k",
        "--rate-limit-tokens-per-second",
        "10",
        "--max-concurrent-requests",
        "4",
        "--queue-size",
        "2",
        "--queue-timeout-secs",
        "1.5",
        "--shutdown-grace-period-secs",
        "5",
    )
    assert doc["listeners"][0]["filters"] == [
        "request_id",
        "auth",
        "rate_limit",
        "admission",
        "router",
    ]
    assert doc["filters"]["rate_limit"]["config"] == {"requests_per_second": 10.0}
    assert doc["filters"]["admission"]["config"] == {
        "max_concurrent_requests": 4,
        "queue_size": 2,
        "queue_timeout": "1.5s",
    }
    assert doc["server"]["shutdown_grace_period"] == "5s"
    config_from_dict(doc, "<launch>")
