"""Health checks and outlier detection through a real gateway in front of real sims."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

import smg.filters.router
from tests.support.procs import (
    Gateway,
    free_port,
    gateway,
    gateway_config,
    http_get,
    http_json,
    sim,
    wait_until,
)

pytestmark = pytest.mark.e2e
BODY = {"model": "sim-model", "prompt": "x", "max_tokens": 1}

# Outlier detection learns from the outcomes the router reports through Cluster.record.
needs_record = pytest.mark.skipif(
    ".record(" not in inspect.getsource(smg.filters.router),
    reason="the router does not report attempt outcomes (Cluster.record) yet",
)


def served(url: str) -> int:
    return int(json.loads(http_get(url + "/sim/stats")[1])["total_requests"])


def endpoint(g: Gateway, url: str) -> dict[str, Any]:
    return g.cluster_endpoints("pool")[url]


def send(g: Gateway, n: int) -> list[int]:
    return [http_json(g.url + "/v1/completions", "POST", BODY)[0] for _ in range(n)]


def test_failing_health_checks_take_an_endpoint_out_and_back(tmp_path: Path) -> None:
    with sim(tmp_path) as good, sim(tmp_path, "--slow-start", "5") as starting:
        doc = gateway_config([good, starting], free_port(), free_port())
        doc["clusters"][0]["health_check"] = {
            "interval": "200ms",
            "timeout": "500ms",
            "unhealthy_threshold": 2,
            "healthy_threshold": 2,
        }
        doc["clusters"][0]["outlier_detection"] = {"enabled": False}
        with gateway(tmp_path, doc) as g:
            assert wait_until(lambda: endpoint(g, starting)["health"] == "unhealthy", 5)
            ep = endpoint(g, starting)
            assert ep["healthy"] is False and ep["available"] is False
            assert ep["circuit"] == "closed"  # a separate reason, not an ejection
            assert endpoint(g, good)["health"] == "healthy"
            before = (served(good), served(starting))
            assert send(g, 8) == [200] * 8
            assert (served(good), served(starting)) == (before[0] + 8, before[1])

            assert wait_until(lambda: endpoint(g, starting)["health"] == "healthy", 15)
            assert endpoint(g, starting)["available"] is True
            before_back = served(starting)
            assert send(g, 8) == [200] * 8
            assert served(starting) - before_back == 4  # round robin over both again
            metrics = http_get(g.admin + "/metrics")[1].decode()
            assert 'smg_health_checks_total{cluster="pool",endpoint="' in metrics
            assert "smg_circuit_state{" in metrics


@needs_record
def test_a_worker_failing_every_request_is_ejected(tmp_path: Path) -> None:
    with sim(tmp_path) as good, sim(tmp_path, "--fail-rate", "1.0") as bad:
        doc = gateway_config([good, bad], free_port(), free_port())
        doc["clusters"][0]["outlier_detection"] = {
            "consecutive_5xx": 3,
            "base_ejection_time": "60s",
        }
        doc["clusters"][0]["retry_policy"] = {"max_retries": 0}
        with gateway(tmp_path, doc) as g:
            send(g, 12)
            ep = endpoint(g, bad)
            assert ep["circuit"] == "open", ep
            assert ep["ejections"] == 1 and ep["ejected_until"] is not None
            assert ep["available"] is False and ep["health"] != "unhealthy"
            assert served(bad) == 3
            assert send(g, 6) == [200] * 6
            assert served(bad) == 3
            metrics = http_get(g.admin + "/metrics")[1].decode()
            assert f'smg_circuit_state{{cluster="pool",endpoint="{bad}"}} 2.0' in metrics
            assert "smg_outlier_ejections_total{" in metrics


@needs_record
def test_with_the_breaker_disabled_a_failing_worker_stays_in(tmp_path: Path) -> None:
    with sim(tmp_path) as good, sim(tmp_path, "--fail-rate", "1.0") as bad:
        doc = gateway_config([good, bad], free_port(), free_port())
        doc["clusters"][0]["outlier_detection"] = {"enabled": False, "consecutive_5xx": 1}
        doc["clusters"][0]["retry_policy"] = {"max_retries": 0}
        with gateway(tmp_path, doc) as g:
            statuses = send(g, 10)
            assert statuses.count(503) == 5
            ep = endpoint(g, bad)
            assert ep["circuit"] == "closed" and ep["ejections"] == 0
            assert served(bad) == 5
