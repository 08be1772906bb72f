"""Start ``smg sim --provider NAME`` processes for end-to-end tests, and talk to their /sim API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.procs import HOST, Proc, free_port, http_get, http_json, smg_cmd, wait_until


class ProviderSim:
    """A running simulated provider: its base URL and its control endpoints."""

    def __init__(self, url: str, proc: Proc) -> None:
        self.url = url
        self.proc = proc

    def fault(self, **spec: Any) -> None:
        """Inject a fault (``status``, ``retry_after``, ``hang``, ``times``); none clears."""
        status, _, _ = http_json(self.url + "/sim/fault", "POST", spec)
        assert status == 200

    def last_request(self) -> dict[str, Any]:
        """What the gateway sent last: method, path, query, headers, body."""
        _, body = http_get(self.url + "/sim/last_request")
        doc = json.loads(body)
        assert isinstance(doc, dict), "the simulator received no model call"
        return doc

    def requests(self) -> int:
        """Model calls received so far."""
        return int(json.loads(http_get(self.url + "/sim/stats")[1])["requests"])

    def reset(self) -> None:
        """Clear faults, the request record, counters and the prompt cache."""
        http_json(self.url + "/sim/reset", "POST", {})


@contextmanager
def provider_sim(
    tmp: Path, provider: str, models: list[str], api_key: str, *extra: str
) -> Iterator[ProviderSim]:
    """``smg sim --provider NAME`` on a free port; always stopped."""
    port = free_port()
    p = Proc(
        smg_cmd(
            "sim",
            "--provider",
            provider,
            "--port",
            str(port),
            "--model",
            ",".join(models),
            "--api-key",
            api_key,
            *extra,
        ),
        tmp / f"{provider}-sim-{port}.log",
    )
    url = f"http://{HOST}:{port}"
    try:
        if not wait_until(lambda: http_get(url + "/health", 1)[0] == 200, 20):
            raise RuntimeError(f"{provider} simulator did not start:\n{p.output()}")
        yield ProviderSim(url, p)
    finally:
        p.stop()
