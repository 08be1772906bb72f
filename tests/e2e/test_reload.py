"""Hot reload, one test per rule of docs/architecture.md §Hot reload."""

from __future__ import annotations

import copy
import json
import os
import signal
import threading
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.procs import (
    Gateway,
    Proc,
    free_port,
    gateway,
    gateway_config,
    http_get,
    http_json,
    sim,
    smg_cmd,
    wait_until,
)

pytestmark = pytest.mark.e2e

BODY = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def served(url: str) -> int:
    return int(json.loads(http_get(url + "/sim/stats")[1])["total_requests"])


def two_cluster_config(a: str, b: str, target: str) -> dict[str, Any]:
    doc = gateway_config([a], free_port(), free_port())
    doc["clusters"].append({"name": "other", "endpoints": [{"url": b}]})
    doc["listeners"][0]["routes"] = [{"match": {"model": "*"}, "cluster": target}]
    return doc


def test_route_change_under_load_loses_nothing_and_takes_effect_within_a_second(
    tmp_path: Path,
) -> None:
    with sim(tmp_path) as a, sim(tmp_path) as b:
        doc = two_cluster_config(a, b, "pool")
        with gateway(tmp_path, doc) as g:
            results: list[int] = []
            stop = threading.Event()

            def load() -> None:
                while not stop.is_set():
                    try:
                        status, _, _ = http_json(g.url + "/v1/chat/completions", "POST", BODY)
                    except (OSError, urllib.error.URLError):
                        status = -1
                    results.append(status)

            threads = [threading.Thread(target=load) for _ in range(4)]
            for t in threads:
                t.start()
            try:
                assert wait_until(lambda: len(results) > 20)
                before_b = served(b)
                new = copy.deepcopy(doc)
                new["listeners"][0]["routes"][0]["cluster"] = "other"
                saved = time.monotonic()
                g.write_config(new)
                assert wait_until(lambda: served(b) > before_b, 5)
                assert time.monotonic() - saved < 1.0
                time.sleep(0.3)
                a_after = served(a)
                time.sleep(0.5)
                assert served(a) == a_after  # everything new goes to the new route
            finally:
                stop.set()
                for t in threads:
                    t.join(10)
            assert results and set(results) == {200}


def test_bad_file_changes_nothing_and_reports_errors_once(tmp_path: Path) -> None:
    with sim(tmp_path) as a:
        doc = gateway_config([a], free_port(), free_port())
        with gateway(tmp_path, doc) as g:
            version = g.admin_json("/config")["version"]
            bad = copy.deepcopy(doc)
            bad["clusters"][0]["lb_policy"] = {"type": "cache_awre"}
            g.write_config(bad)
            assert wait_until(
                lambda: g.admin_json("/config")["last_reload"]["result"] == "rejected"
            )
            cfg = g.admin_json("/config")
            assert cfg["version"] == version
            err = cfg["last_reload"]["errors"][0]
            assert "gw.yaml:" in err and "clusters[0].lb_policy.type" in err and "cache_awre" in err
            assert http_json(g.url + "/v1/chat/completions", "POST", BODY)[0] == 200
            # touching the same bad content again must not log it again
            os.utime(g.config_path)
            time.sleep(0.5)
            assert g.proc.output().count("cache_awre") == 1


def test_unchanged_cluster_keeps_endpoint_state(tmp_path: Path) -> None:
    with sim(tmp_path) as a, sim(tmp_path) as b:
        doc = two_cluster_config(a, b, "pool")
        with gateway(tmp_path, doc) as g:
            for _ in range(3):
                assert http_json(g.url + "/v1/chat/completions", "POST", BODY)[0] == 200
            assert g.cluster_endpoints("pool")[a]["total_requests"] == 3
            new = copy.deepcopy(doc)
            new["clusters"][1]["lb_policy"] = {"type": "random"}  # only "other" changes
            g.write_config(new)
            assert wait_until(lambda: g.admin_json("/config")["version"] != "", 5)
            assert wait_until(
                lambda: (
                    g.admin_json("/clusters")["version"] == g.admin_json("/config")["version"]
                    and g.admin_json("/config")["last_reload"]["result"] == "ok"
                )
            )
            assert g.cluster_endpoints("pool")[a]["total_requests"] == 3


def test_listener_port_change(tmp_path: Path) -> None:
    with sim(tmp_path) as a:
        doc = gateway_config([a], free_port(), free_port())
        with gateway(tmp_path, doc) as g:
            new_port = free_port()
            new = copy.deepcopy(doc)
            new["listeners"][0]["address"] = f"127.0.0.1:{new_port}"
            g.write_config(new)
            new_url = f"http://127.0.0.1:{new_port}"
            assert wait_until(lambda: http_get(new_url + "/health", 1)[0] == 200, 5)
            assert http_json(new_url + "/v1/chat/completions", "POST", BODY)[0] == 200

            def old_closed() -> bool:
                try:
                    http_get(g.url + "/health", 1)
                except OSError:
                    return True
                return False

            assert wait_until(old_closed, 5)


def test_symlink_swap_is_seen(tmp_path: Path) -> None:
    with sim(tmp_path) as a, sim(tmp_path) as b:
        doc = two_cluster_config(a, b, "pool")
        # Kubernetes ConfigMap layout: gw.yaml -> ..data/gw.yaml, ..data -> v1
        conf = tmp_path / "conf"
        (conf / "v1").mkdir(parents=True)
        (conf / "v1" / "gw.yaml").write_text(yaml.safe_dump(doc))
        os.symlink("v1", conf / "..data")
        os.symlink("..data/gw.yaml", conf / "gw.yaml")
        p = Proc(smg_cmd("run", "-c", str(conf / "gw.yaml")), tmp_path / "gw2.log")
        g = Gateway(
            p,
            conf / "gw.yaml",
            f"http://{doc['listeners'][0]['address']}",
            f"http://{doc['admin']['address']}",
        )
        try:
            assert wait_until(lambda: http_get(g.admin + "/ready", 1)[0] == 200, 20)
            new = copy.deepcopy(doc)
            new["listeners"][0]["routes"][0]["cluster"] = "other"
            (conf / "v2").mkdir()
            (conf / "v2" / "gw.yaml").write_text(yaml.safe_dump(new))
            os.symlink("v2", conf / "..data_tmp")
            os.replace(conf / "..data_tmp", conf / "..data")
            before = served(b)
            assert wait_until(
                lambda: (
                    http_json(g.url + "/v1/chat/completions", "POST", BODY)[0] == 200
                    and served(b) > before
                ),
                5,
            )
        finally:
            p.stop()


def test_sighup_and_admin_reload_apply_changes_when_watching_is_off(tmp_path: Path) -> None:
    with sim(tmp_path) as a, sim(tmp_path) as b:
        doc = two_cluster_config(a, b, "pool")
        doc["server"] = {"watch_config": False}
        with gateway(tmp_path, doc) as g:
            new = copy.deepcopy(doc)
            new["listeners"][0]["routes"][0]["cluster"] = "other"
            g.write_config(new)
            time.sleep(0.5)
            assert g.admin_json("/config")["last_reload"]["trigger"] == "startup"
            g.proc.signal(signal.SIGHUP)
            assert wait_until(lambda: g.admin_json("/config")["last_reload"]["trigger"] == "sighup")
            before = served(b)
            assert http_json(g.url + "/v1/chat/completions", "POST", BODY)[0] == 200
            assert served(b) == before + 1
            g.write_config(doc)
            status, res, _ = http_json(g.admin + "/reload", "POST", b"")
            assert status == 200 and res["result"] == "ok"
            before_a = served(a)
            assert http_json(g.url + "/v1/chat/completions", "POST", BODY)[0] == 200
            assert served(a) == before_a + 1
            # a bad file through the admin API: 400 with the errors, old config stays
            broken = copy.deepcopy(doc)
            broken["listeners"][0]["routes"][0]["cluster"] = "missing"
            g.write_config(broken)
            status, res, _ = http_json(g.admin + "/reload", "POST", b"")
            assert status == 400 and res["result"] == "rejected"
            assert any("missing" in e for e in res["errors"])
