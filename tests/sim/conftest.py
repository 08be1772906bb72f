"""Start ``python -m smg.sim`` subprocesses on free loopback ports, and always stop them."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def free_port_range(count: int) -> int:
    """First of ``count`` consecutive free ports."""
    for _ in range(50):
        base = free_port()
        if base + count > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind((HOST, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def wait_until(pred: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll ``pred`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(interval)
    return False


class Sim:
    """One simulator process; ``ports`` are its engines, ``url`` the first one."""

    def __init__(self, *flags: str, ports: list[int] | None = None) -> None:
        self.ports = ports or [free_port()]
        where = (
            ["--port", str(self.ports[0])]
            if len(self.ports) == 1
            else ["--ports", f"{self.ports[0]}-{self.ports[-1]}"]
        )
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smg.sim", *where, *flags],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://{HOST}:{self.ports[0]}"

    def wait_listening(self) -> None:
        def answers(port: int) -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"simulator exited:\n{self.output()}")
            return self.request("GET", "/health", port=port, timeout=1)[0] > 0

        for port in self.ports:
            if not wait_until(lambda p=port: answers(p), 10):  # type: ignore[misc]
                raise RuntimeError(f"simulator did not start:\n{self.output()}")

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        port: int | None = None,
        timeout: float = 5.0,
    ) -> tuple[int, bytes, dict[str, str]]:
        """Plain HTTP request; returns (status, body, lower-cased headers)."""
        conn = http.client.HTTPConnection(HOST, port or self.ports[0], timeout=timeout)
        try:
            data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        """POST JSON; returns (status, parsed JSON body)."""
        status, raw, _ = self.request("POST", path, body, **kw)
        return status, json.loads(raw) if raw else None

    def stats(self, port: int | None = None) -> dict[str, Any]:
        """The /sim/stats document."""
        doc: dict[str, Any] = json.loads(self.request("GET", "/sim/stats", port=port)[1])
        return doc

    def client(self, **kw: Any) -> openai.OpenAI:
        """An official OpenAI SDK client aimed at this engine."""
        return openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0, **kw)


SimFactory = Callable[..., Sim]


@pytest.fixture
def start_sim() -> Iterator[SimFactory]:
    """Factory for simulators with custom flags; all are stopped at teardown."""
    started: list[Sim] = []

    def start(*flags: str, ports: list[int] | None = None) -> Sim:
        s = Sim(*flags, ports=ports)
        started.append(s)
        s.wait_listening()
        return s

    try:
        yield start
    finally:
        for s in started:
            s.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    """A simulator with default settings and seed 7, shared by a test module."""
    s = Sim("--seed", "7")
    try:
        s.wait_listening()
        yield s
    finally:
        s.stop()
