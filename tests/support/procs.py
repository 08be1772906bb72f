"""Start real smg / smg sim processes on 127.0.0.1 for end-to-end tests, and clean up."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET returning (status, body) without raising on 4xx/5xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_json(
    url: str,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any, dict[str, str]]:
    """Request with an optional JSON body; returns (status, parsed JSON or None, headers)."""
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status, hdrs = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, dict(e.headers)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, parsed, hdrs


def wait_until(pred: Any, timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Poll ``pred()`` until true or timeout; returns the last result as bool."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except Exception:
            pass
        time.sleep(interval)
    return False


class Proc:
    """A child process in its own session, with its output captured to a file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._fh = open(log, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, **(env or {})}
        self.popen = subprocess.Popen(
            args, stdout=self._fh, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL after ``timeout``; returns the exit code."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._fh.close()
        return self.popen.returncode


def smg_cmd(*args: str) -> list[str]:
    """Command line running the smg CLI with this interpreter."""
    return [sys.executable, "-m", "smg", *args]


@contextmanager
def sim(tmp: Path, *extra: str, port: int | None = None, model: str = "sim-model") -> Iterator[str]:
    """A running ``smg sim`` on a free port; yields its base URL."""
    port = port or free_port()
    p = Proc(
        smg_cmd("sim", "--port", str(port), "--model", model, "--seed", "7", *extra),
        tmp / f"sim-{port}.log",
    )
    url = f"http://{HOST}:{port}"
    try:
        if not wait_until(lambda: http_get(url + "/health", 1)[0] in (200, 503), 20):
            raise RuntimeError(f"sim did not start:\n{p.output()}")
        yield url
    finally:
        p.stop()


class Gateway:
    """A running ``smg run`` with its config file, listener URL and admin URL."""

    def __init__(self, proc: Proc, config_path: Path, url: str, admin: str) -> None:
        self.proc = proc
        self.config_path = config_path
        self.url = url
        self.admin = admin

    def write_config(self, doc: dict[str, Any]) -> None:
        """Replace the config file atomically (as editors and ConfigMaps do)."""
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
        os.replace(tmp, self.config_path)

    def admin_json(self, path: str) -> Any:
        _, body = http_get(self.admin + path)
        return json.loads(body)

    def cluster_endpoints(self, cluster: str) -> dict[str, dict[str, Any]]:
        doc = self.admin_json("/clusters")
        for c in doc["clusters"]:
            if c["name"] == cluster:
                return {e["url"]: e for e in c["endpoints"]}
        raise KeyError(cluster)


def gateway_config(workers: list[str], port: int, admin_port: int, **over: Any) -> dict[str, Any]:
    """A minimal config: one listener, catch-all route, one cluster of ``workers``."""
    doc: dict[str, Any] = {
        "admin": {"address": f"{HOST}:{admin_port}"},
        "listeners": [
            {
                "name": "public",
                "address": f"{HOST}:{port}",
                "filters": ["request_id", "router"],
                "routes": [{"match": {"model": "*"}, "cluster": "pool"}],
            }
        ],
        "filters": {"request_id": {"type": "request_id"}},
        "clusters": [
            {
                "name": "pool",
                "endpoints": [{"url": u} for u in workers],
                "lb_policy": {"type": "round_robin"},
            }
        ],
    }
    doc.update(over)
    return doc


@contextmanager
def gateway(tmp: Path, doc: dict[str, Any], env: dict[str, str] | None = None) -> Iterator[Gateway]:
    """A running ``smg run -c`` on ``doc``; waits for readiness; always stops it."""
    cfg = tmp / "gw.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    listen = doc["listeners"][0]["address"]
    admin = doc["admin"]["address"]
    p = Proc(smg_cmd("run", "-c", str(cfg)), tmp / "gw.log", env)
    gw = Gateway(p, cfg, f"http://{listen}", f"http://{admin}")
    try:
        ok = wait_until(lambda: http_get(gw.admin + "/ready", 1)[0] == 200, 20)
        if not ok:
            raise RuntimeError(f"gateway did not become ready:\n{p.output()}")
        yield gw
    finally:
        code = p.stop()
    # A clean SIGTERM drain exits 0; anything else is a bug worth failing on.
    if code != 0:
        raise AssertionError(f"gateway exited with {code}:\n{p.output()[-3000:]}")
