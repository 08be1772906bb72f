"""``smg launch --pd-disaggregation``: the Shepherd Model Gateway PD flags as a pd block."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from smg import launch
from smg.config.loader import config_from_dict


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    launch.add_arguments(parser)
    return parser.parse_args(list(argv))


def cluster_of(*argv: str) -> dict[str, Any]:
    doc = launch.config_doc(parse(*argv))
    config_from_dict(doc, "<launch>", env={})  # the document is valid as it is
    cluster: dict[str, Any] = doc["clusters"][0]
    return cluster


def test_prefill_takes_an_optional_bootstrap_port_per_url() -> None:
    cluster = cluster_of(
        "--pd-disaggregation",
        "--prefill", "http://p1:8000", "8998",
        "--prefill", "http://p2:8000",
        "--decode", "http://d1:8000",
        "--decode", "http://d2:8000",
    )  # fmt: skip
    assert "endpoints" not in cluster and "lb_policy" not in cluster
    assert cluster["protocol"] == "openai_http"
    assert cluster["pd"] == {
        "prefill": {
            "endpoints": [
                {"url": "http://p1:8000", "bootstrap_port": 8998},
                {"url": "http://p2:8000"},
            ]
        },
        "decode": {"endpoints": [{"url": "http://d1:8000"}, {"url": "http://d2:8000"}]},
    }


def test_group_policies_default_to_policy_and_take_cache_aware_knobs() -> None:
    pd = cluster_of(
        "--pd-disaggregation", "--prefill", "http://p:1", "--decode", "http://d:1",
        "--policy", "random", "--prefill-policy", "cache_aware", "--cache-threshold", "0.2",
    )["pd"]  # fmt: skip
    assert pd["prefill"]["lb_policy"] == {"type": "cache_aware", "config": {"cache_threshold": 0.2}}
    assert pd["decode"]["lb_policy"] == {"type": "random"}
    pd = cluster_of(
        "--pd-disaggregation", "--prefill", "http://p:1", "--decode", "http://d:1",
        "--decode-policy", "least_request",
    )["pd"]  # fmt: skip
    assert "lb_policy" not in pd["prefill"]
    assert pd["decode"]["lb_policy"] == {"type": "least_request"}


def test_styles_over_http_and_grpc() -> None:
    pd = cluster_of(
        "--pd-disaggregation", "--prefill", "http://p:1", "--decode", "http://d:1",
        "--pd-style", "vllm",
    )["pd"]  # fmt: skip
    assert pd["style"] == "vllm"
    sglang = cluster_of(
        "--pd-disaggregation", "--prefill", "grpc://p:1", "9000", "--decode", "grpc://d:1",
        "--grpc-engine", "sglang",
    )  # fmt: skip
    assert sglang["protocol"] == "sglang_grpc" and sglang["pd"]["style"] == "sglang"
    vllm = cluster_of(
        "--pd-disaggregation", "--prefill", "grpc://p:1", "--decode", "grpc://d:1",
    )  # fmt: skip
    assert vllm["protocol"] == "vllm_grpc" and vllm["pd"]["style"] == "vllm"


@pytest.mark.parametrize(
    "argv",
    [
        ("--prefill", "http://p:1", "not-a-port"),
        ("--prefill", "http://p:1", "1", "2"),
    ],
)
def test_bad_prefill_arguments_are_usage_errors(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse("--pd-disaggregation", *argv)
    assert exc.value.code == 2
    assert "--prefill" in capsys.readouterr().err


def test_without_workers_the_config_names_what_is_missing() -> None:
    from smg.config.errors import ConfigError

    doc = launch.config_doc(parse("--pd-disaggregation", "--prefill", "http://p:1"))
    with pytest.raises(ConfigError) as exc:
        config_from_dict(doc, "<launch>", env={})
    assert [str(i) for i in exc.value.issues] == [
        "<launch>: clusters[0].pd.decode.endpoints: [] should be non-empty"
    ]
