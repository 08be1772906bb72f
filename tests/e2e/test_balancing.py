"""Load balancing and routing features through the real gateway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.procs import free_port, gateway, gateway_config, http_get, http_json, sim

pytestmark = pytest.mark.e2e
BODY = {"model": "sim-model", "prompt": "x", "max_tokens": 1}


def served(url: str) -> int:
    return int(json.loads(http_get(url + "/sim/stats")[1])["total_requests"])


def test_consistent_hash_keeps_a_session_on_one_worker(tmp_path: Path) -> None:
    with sim(tmp_path) as a, sim(tmp_path) as b, sim(tmp_path) as c:
        doc = gateway_config([a, b, c], free_port(), free_port())
        doc["clusters"][0]["lb_policy"] = {"type": "consistent_hash"}
        with gateway(tmp_path, doc) as g:
            sims = [a, b, c]
            for key in ("user-1", "user-2", "user-3", "user-4"):
                before = [served(s) for s in sims]
                for _ in range(4):
                    st = http_json(
                        g.url + "/v1/completions", "POST", BODY, headers={"x-smg-routing-key": key}
                    )[0]
                    assert st == 200
                delta = [served(s) - b0 for s, b0 in zip(sims, before, strict=True)]
                assert sorted(delta) == [0, 0, 4], (key, delta)


def test_weighted_clusters_and_header_routes(tmp_path: Path) -> None:
    with sim(tmp_path) as a, sim(tmp_path) as b:
        doc = gateway_config([a], free_port(), free_port())
        doc["clusters"].append({"name": "canary", "endpoints": [b]})
        doc["listeners"][0]["routes"] = [
            {"match": {"headers": {"x-canary": "1"}}, "cluster": "canary"},
            {
                "match": {"model": "*"},
                "clusters": [{"name": "pool", "weight": 1}, {"name": "canary", "weight": 0}],
            },
        ]
        with gateway(tmp_path, doc) as g:
            for _ in range(6):
                assert http_json(g.url + "/v1/completions", "POST", BODY)[0] == 200
            assert (served(a), served(b)) == (6, 0)
            assert (
                http_json(g.url + "/v1/completions", "POST", BODY, headers={"x-canary": "1"})[0]
                == 200
            )
            assert (served(a), served(b)) == (6, 1)


def test_fallback_cluster_used_when_primary_is_down(tmp_path: Path) -> None:
    with sim(tmp_path) as b:
        dead = f"http://127.0.0.1:{free_port()}"
        doc = gateway_config([dead], free_port(), free_port())
        doc["clusters"].append({"name": "backup", "endpoints": [b]})
        doc["listeners"][0]["routes"] = [
            {"match": {"model": "*"}, "cluster": "pool", "fallback": ["backup"]}
        ]
        with gateway(tmp_path, doc) as g:
            assert http_json(g.url + "/v1/completions", "POST", BODY)[0] == 200
            assert served(b) == 1


def test_dead_worker_without_fallback_is_a_clean_503(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    doc = gateway_config([dead], free_port(), free_port())
    with gateway(tmp_path, doc) as g:
        status, body, _ = http_json(g.url + "/v1/completions", "POST", BODY)
        assert status == 503
        assert body["error"]["code"] == "upstream_connect_error"


def test_two_worker_processes_share_the_port(tmp_path: Path) -> None:
    with sim(tmp_path) as a:
        doc = gateway_config([a], free_port(), free_port())
        doc["server"] = {"workers": 2}
        with gateway(tmp_path, doc) as g:
            for _ in range(20):
                assert http_json(g.url + "/v1/completions", "POST", BODY)[0] == 200
            out = g.proc.output()
            assert out.count("smg ready (worker") == 2
