"""``smg launch`` cache-aware shorthands: each sets one key of the policy config."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from smg import launch
from smg.config.loader import config_from_dict
from smg.runtime.checks import config_issues

BASE = ["--worker-urls", "http://127.0.0.1:31001"]


def policy_for(*argv: str) -> Any:
    parser = argparse.ArgumentParser()
    launch.add_arguments(parser)
    doc = launch.config_doc(parser.parse_args([*BASE, *argv]))
    return doc["clusters"][0].get("lb_policy"), doc


@pytest.mark.parametrize(
    ("argv", "key", "value"),
    [
        (["--cache-threshold", "0.5"], "cache_threshold", 0.5),
        (["--balance-abs-threshold", "16"], "balance_abs_threshold", 16),
        (["--balance-rel-threshold", "1.25"], "balance_rel_threshold", 1.25),
        (["--max-tree-size", "1000000"], "max_tree_size", 1000000),
        (["--eviction-interval", "30"], "eviction_interval", 30.0),
        (["--eviction-interval-secs", "30"], "eviction_interval", 30.0),
    ],
)
def test_each_flag_sets_one_cache_aware_key(argv: list[str], key: str, value: Any) -> None:
    policy, doc = policy_for(*argv)
    assert policy == {"type": "cache_aware", "config": {key: value}}
    cfg = config_from_dict(doc, "<launch>", env={})
    assert config_issues(cfg) == []


def test_policy_flag_alone_and_the_flags_with_another_policy() -> None:
    assert policy_for("--policy", "power_of_two")[0] == {"type": "power_of_two"}
    assert policy_for()[0] is None
    _, doc = policy_for("--policy", "round_robin", "--cache-threshold", "0.5")
    issues = config_issues(config_from_dict(doc, "<launch>", env={}))
    assert len(issues) == 1 and "unknown config key 'cache_threshold'" in str(issues[0])
