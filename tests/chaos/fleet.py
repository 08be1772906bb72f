"""Several ``smg sim`` workers started at once, each killable on its own, and gateway probes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.procs import HOST, Gateway, Proc, free_port, http_get, smg_cmd, wait_until


@dataclass
class Worker:
    """A running simulated engine: its base URL and process."""

    url: str
    proc: Proc

    def kill(self) -> None:
        """SIGKILL the process group: no graceful end, the kernel closes its sockets mid-answer."""
        if self.proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.popen.wait(5)

    def stats(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(http_get(self.url + "/sim/stats", 2)[1])
        return doc


@contextmanager
def workers(tmp: Path, *flag_sets: tuple[str, ...]) -> Iterator[list[Worker]]:
    """One sim per flag set, started in parallel (sequential starts cost ~1 s each)."""
    started: list[Worker] = []
    try:
        for flags in flag_sets:
            port = free_port()
            p = Proc(
                smg_cmd("sim", "--port", str(port), "--model", "sim-model", "--seed", "7", *flags),
                tmp / f"sim-{port}.log",
            )
            started.append(Worker(f"http://{HOST}:{port}", p))
        for w in started:
            if not wait_until(lambda w=w: http_get(w.url + "/health", 1)[0] == 200, 20):
                raise RuntimeError(f"sim did not start:\n{w.proc.output()}")
        yield started
    finally:
        for w in started:
            w.proc.stop()


def runtime(g: Gateway) -> dict[str, Any]:
    """The gateway's ``/debug/runtime`` document (tasks, open fds, active requests)."""
    doc: dict[str, Any] = g.admin_json("/debug/runtime")
    return doc


def in_flight(g: Gateway, cluster: str = "pool") -> dict[str, int]:
    return {url: int(ep["in_flight"]) for url, ep in g.cluster_endpoints(cluster).items()}


def settle(g: Gateway, before: dict[str, Any], fd_margin: int, task_margin: int) -> bool:
    """Wait until the gateway is back to (about) ``before``; False if it never gets there."""

    def back() -> bool:
        now = runtime(g)
        return (
            now["active_requests"] == 0
            and now["tasks"] <= before["tasks"] + task_margin
            and now["open_fds"] <= before["open_fds"] + fd_margin
            and not any(in_flight(g).values())
        )

    return wait_until(back, 10, 0.2)


def quiet(seconds: float) -> None:
    """Let background work (health checks, pool sweeps) run before a measurement."""
    time.sleep(seconds)
