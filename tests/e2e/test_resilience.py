"""Retries, deadlines and truthful stream endings against faulty simulated engines."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest

from tests.support.procs import free_port, gateway, gateway_config, http_get, http_json, sim

pytestmark = pytest.mark.e2e
BODY = {"model": "sim-model", "prompt": "x", "max_tokens": 2}


def served(url: str) -> int:
    return int(json.loads(http_get(url + "/sim/stats")[1])["total_requests"])


def statuses(url: str, n: int) -> list[int]:
    return [http_json(url + "/v1/completions", "POST", BODY)[0] for _ in range(n)]


def test_retries_hide_a_failing_worker_and_can_be_turned_off(tmp_path: Path) -> None:
    with sim(tmp_path, "--fail-rate", "1.0") as bad, sim(tmp_path) as good:
        doc = gateway_config([bad, good], free_port(), free_port())
        doc["clusters"][0]["outlier_detection"] = {"enabled": False}
        with gateway(tmp_path, doc) as g:
            assert statuses(g.url, 10) == [200] * 10
            assert served(bad) >= 4  # round robin still tried it, then retried elsewhere
        doc["clusters"][0]["retry_policy"] = {"max_retries": 0}
        with gateway(tmp_path, doc) as g:
            got = statuses(g.url, 10)
            assert got.count(503) == 5 and got.count(200) == 5


def test_hanging_worker_is_retried_after_per_try_timeout(tmp_path: Path) -> None:
    with sim(tmp_path, "--hang-rate", "1.0") as hung, sim(tmp_path) as good:
        doc = gateway_config([hung, good], free_port(), free_port())
        doc["clusters"][0]["retry_policy"] = {
            "per_try_timeout": "300ms",
            "retry_on": ["connect_failure", "reset", "timeout", "5xx"],
        }
        doc["clusters"][0]["outlier_detection"] = {"enabled": False}
        with gateway(tmp_path, doc) as g:
            t0 = time.monotonic()
            assert statuses(g.url, 4) == [200] * 4
            assert time.monotonic() - t0 < 4 * 0.3 + 2.0


def test_total_deadline_gives_504_in_openai_form(tmp_path: Path) -> None:
    with sim(tmp_path, "--hang-rate", "1.0") as hung:
        doc = gateway_config([hung], free_port(), free_port())
        doc["listeners"][0]["request_timeout"] = "1s"
        with gateway(tmp_path, doc) as g:
            t0 = time.monotonic()
            status, body, _ = http_json(g.url + "/v1/completions", "POST", BODY)
            took = time.monotonic() - t0
            assert status == 504 and body["error"]["code"] == "upstream_timeout"
            assert 0.9 < took < 3.0


def test_stream_cut_by_worker_raises_in_the_client_quickly(tmp_path: Path) -> None:
    with sim(tmp_path, "--drop-after-chunks", "3", "--itl-ms", "20") as s:
        doc = gateway_config([s], free_port(), free_port())
        with gateway(tmp_path, doc) as g:
            c = openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0)
            stream = c.chat.completions.create(
                model="sim-model",
                messages=[{"role": "user", "content": "x"}],
                max_tokens=50,
                stream=True,
            )
            t0 = time.monotonic()
            with pytest.raises(openai.APIError):
                for _ in stream:
                    pass
            assert time.monotonic() - t0 < 1.0


def test_stream_past_total_deadline_ends_with_error_event(tmp_path: Path) -> None:
    with sim(tmp_path, "--itl-ms", "200") as s:
        doc = gateway_config([s], free_port(), free_port())
        doc["listeners"][0]["request_timeout"] = "1s"
        with gateway(tmp_path, doc) as g:
            c = openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0)
            got = 0
            with pytest.raises(openai.APIError) as ei:
                for _ch in c.chat.completions.create(
                    model="sim-model",
                    messages=[{"role": "user", "content": "x"}],
                    max_tokens=50,
                    stream=True,
                ):
                    got += 1
            assert got >= 2  # it was a real stream that got cut by the deadline
            assert "deadline" in str(ei.value)


def test_unknown_path_and_method_are_openai_errors(tmp_path: Path) -> None:
    with sim(tmp_path) as s:
        doc = gateway_config([s], free_port(), free_port())
        with gateway(tmp_path, doc) as g:
            status, body, _ = http_json(g.url + "/v1/nothing", "POST", BODY)
            assert status == 404 and body["error"]["code"] == "not_found"
            status, body, _ = http_json(g.url + "/v1/completions", "GET")
            assert status == 405 and body["error"]["code"] == "method_not_allowed"
            status, body, _ = http_json(
                g.url + "/v1/completions",
                "POST",
                b"x=1",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert status == 415
