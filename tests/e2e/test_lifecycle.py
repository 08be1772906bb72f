"""Process lifecycle: SIGTERM drains in-flight streams, then exits 0."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import openai
import pytest

from tests.support.procs import free_port, gateway, gateway_config, http_get, sim, wait_until

pytestmark = pytest.mark.e2e


def test_sigterm_lets_running_streams_finish_and_turns_ready_off(tmp_path: Path) -> None:
    with sim(tmp_path, "--itl-ms", "100") as s:
        doc = gateway_config([s], free_port(), free_port())
        doc["server"] = {"shutdown_grace_period": "20s"}
        with gateway(tmp_path, doc) as g:
            c = openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0)
            texts: list[str] = []
            errors: list[BaseException] = []

            def consume() -> None:
                try:
                    stream = c.chat.completions.create(
                        model="sim-model",
                        messages=[{"role": "user", "content": "x"}],
                        max_tokens=20,
                        stream=True,
                    )
                    finish = None
                    for ch in stream:
                        if ch.choices and ch.choices[0].finish_reason:
                            finish = ch.choices[0].finish_reason
                    texts.append(str(finish))
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=consume) for _ in range(3)]
            for t in threads:
                t.start()
            time.sleep(0.5)  # streams are under way (20 tokens x 100 ms)
            g.proc.signal(signal.SIGTERM)
            assert wait_until(lambda: http_get(g.admin + "/ready", 1)[0] == 503, 3) or (
                g.proc.popen.poll() is not None
            )
            for t in threads:
                t.join(15)
            assert not errors
            assert texts == ["length"] * 3
            assert g.proc.popen.wait(10) == 0
