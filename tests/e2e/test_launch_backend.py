"""``smg launch --backend openai|gemini --worker-urls URL`` end to end, keys from the env."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import openai
import pytest
import yaml

from tests.support.procs import HOST, Proc, free_port, http_get, smg_cmd, wait_until
from tests.support.providers import provider_sim

pytestmark = pytest.mark.e2e

KEY = "sk-launchkey-5e6f7a8b9c"


@pytest.mark.parametrize(
    ("backend", "env", "model", "path"),
    [
        ("openai", "OPENAI_API_KEY", "gpt-4o", "/v1"),
        ("gemini", "GEMINI_API_KEY", "gemini-2.5-flash", ""),
    ],
)
def test_launch_backend_serves_the_provider(
    tmp_path: Path, backend: str, env: str, model: str, path: str
) -> None:
    with provider_sim(tmp_path, backend, [model], KEY) as prov:
        port, admin = free_port(), free_port()
        argv = ["launch", "--backend", backend, "--worker-urls", prov.url + path]
        argv += ["--port", str(port), "--prometheus-port", str(admin)]
        printed = subprocess.run(
            smg_cmd(*argv, "--print-config"),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, env: KEY},
        ).stdout
        assert KEY not in printed
        cluster = yaml.safe_load(printed)["clusters"][0]
        assert cluster["protocol"] == backend
        assert cluster["provider"] == {"api_key": "${" + env + "}"}
        p = Proc(smg_cmd(*argv), tmp_path / "launch.log", env={env: KEY})
        try:
            assert wait_until(lambda: http_get(f"http://{HOST}:{admin}/ready", 1)[0] == 200, 20)
            c = openai.OpenAI(base_url=f"http://{HOST}:{port}/v1", api_key="x", max_retries=0)
            r = c.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4
            )
            assert r.usage is not None and r.usage.completion_tokens == 4
            chunks = list(
                c.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "hi"}], stream=True
                )
            )
            assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
            assert model in {m.id for m in c.models.list()}
            assert KEY not in http_get(f"http://{HOST}:{admin}/config")[1].decode()
            assert KEY not in p.output()
        finally:
            assert p.stop() == 0


def test_launch_backend_without_its_key_variable_says_which(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    done = subprocess.run(
        smg_cmd("launch", "--backend", "anthropic", "--worker-urls", "https://api.anthropic.com"),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    assert "ANTHROPIC_API_KEY" in done.stderr
