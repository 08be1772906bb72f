"""The smg CLI: validate, launch (and --print-config → run), the custom filter example."""

from __future__ import annotations

import subprocess
from pathlib import Path

import openai
import pytest
import yaml

from tests.support.procs import (
    HOST,
    Proc,
    free_port,
    http_get,
    http_json,
    sim,
    smg_cmd,
    wait_until,
)

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(smg_cmd(*args), capture_output=True, text=True, timeout=60, cwd=cwd)


def test_validate_accepts_examples_and_lists_every_error(tmp_path: Path) -> None:
    ok = run_cli(
        "validate", "examples/configs/quickstart.yaml", "examples/configs/custom-filter.yaml"
    )
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "live.yaml"
    bad.write_text(
        "listeners:\n"
        "  - name: a\n"
        "    address: 127.0.0.1:1\n"
        "    routes: [{match: {model: '*'}, cluster: c}]\n"
        "clusters:\n"
        "  - name: c\n"
        "    endpoints: [http://127.0.0.1:2]\n"
        "    lb_policy: {type: cache_awre}\n"
        "    timeouts: {connect: soon}\n"
    )
    res = run_cli("validate", str(bad))
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert any(
        line.startswith(f"{bad}:8: clusters[0].lb_policy.type: 'cache_awre' is not one of")
        for line in lines
    ), lines
    assert any(line.startswith(f"{bad}:9: clusters[0].timeouts.connect") for line in lines), lines


def test_validate_reports_bad_filter_config_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "f.yaml"
    bad.write_text(
        "listeners:\n"
        "  - name: a\n"
        "    address: 127.0.0.1:1\n"
        "    filters: [auth, router]\n"
        "    routes: [{match: {model: '*'}, cluster: c}]\n"
        "filters:\n"
        "  auth:\n"
        "    type: api_key\n"
        "    config: {keys: [1]}\n"
        "clusters: [{name: c, endpoints: [http://127.0.0.1:2]}]\n"
    )
    res = run_cli("validate", str(bad))
    assert res.returncode == 1
    assert f"{bad}:9: filters.auth.config.keys[0]" in res.stderr, res.stderr


def test_launch_print_config_round_trips_through_run(tmp_path: Path) -> None:
    with sim(tmp_path) as s:
        port, admin = free_port(), free_port()
        res = run_cli(
            "launch",
            "--worker-urls",
            s,
            "--policy",
            "least_request",
            "--host",
            HOST,
            "--port",
            str(port),
            "--prometheus-port",
            str(admin),
            "--print-config",
        )
        assert res.returncode == 0, res.stderr
        doc = yaml.safe_load(res.stdout)
        assert doc["clusters"][0]["lb_policy"] == {"type": "least_request"}
        cfg = tmp_path / "gw.yaml"
        cfg.write_text(res.stdout)
        assert run_cli("validate", str(cfg)).returncode == 0
        p = Proc(smg_cmd("run", "-c", str(cfg)), tmp_path / "run.log")
        try:
            assert wait_until(lambda: http_get(f"http://{HOST}:{admin}/ready", 1)[0] == 200, 20)
            c = openai.OpenAI(base_url=f"http://{HOST}:{port}/v1", api_key="x", max_retries=0)
            r = c.chat.completions.create(
                model="sim-model", messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
            assert r.usage is not None and r.usage.completion_tokens == 2
            assert b"smg_requests_total" in http_get(f"http://{HOST}:{admin}/metrics")[1]
        finally:
            assert p.stop() == 0


def test_launch_serves_directly(tmp_path: Path) -> None:
    with sim(tmp_path) as s:
        port = free_port()
        p = Proc(
            smg_cmd(
                "launch",
                "--worker-urls",
                s,
                "--port",
                str(port),
                "--prometheus-port",
                str(free_port()),
                "--api-key",
                "sk-1",
            ),
            tmp_path / "launch.log",
        )
        try:
            url = f"http://{HOST}:{port}"
            assert wait_until(lambda: http_get(url + "/health", 1)[0] == 200, 20)
            body = {"model": "sim-model", "messages": [{"role": "user", "content": "x"}]}
            assert http_json(url + "/v1/chat/completions", "POST", body)[0] == 401
            ok = http_json(
                url + "/v1/chat/completions", "POST", body, headers={"Authorization": "Bearer sk-1"}
            )
            assert ok[0] == 200
        finally:
            p.stop()


def test_custom_filter_by_module_path(tmp_path: Path) -> None:
    with sim(tmp_path) as s:
        port, admin = free_port(), free_port()
        doc = yaml.safe_load((ROOT / "examples/configs/custom-filter.yaml").read_text())
        doc["admin"]["address"] = f"{HOST}:{admin}"
        doc["listeners"][0]["address"] = f"{HOST}:{port}"
        doc["clusters"][0]["endpoints"] = [s]
        cfg = tmp_path / "custom.yaml"
        cfg.write_text(yaml.safe_dump(doc))
        p = Proc(
            smg_cmd("run", "-c", str(cfg)),
            tmp_path / "custom.log",
            env={"PYTHONPATH": str(ROOT), "SMG_TENANT": "globex"},
        )
        try:
            assert wait_until(lambda: http_get(f"http://{HOST}:{admin}/ready", 1)[0] == 200, 20)
            status, _, headers = http_json(
                f"http://{HOST}:{port}/v1/completions",
                "POST",
                {"model": "sim-model", "prompt": "x", "max_tokens": 1},
            )
            assert status == 200
            assert headers.get("x-served-by") == f"tenant/{s}"
            seen = http_json(s + "/sim/stats")[1]["last_headers"]
            assert seen.get("x-tenant") == "globex"
        finally:
            p.stop()
