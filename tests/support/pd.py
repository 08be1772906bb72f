"""Prefill/decode sims, PD gateway configs and the checks every PD end-to-end test makes."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from smg_grpc_proto import sglang_scheduler_pb2, sglang_scheduler_pb2_grpc

from tests.support.procs import HOST, Gateway, Proc, free_port, http_get, sim, smg_cmd, wait_until


@dataclass(frozen=True)
class PdSim:
    """A running sim in a PD role: its URL and (prefill) its KV transfer port."""

    url: str
    bootstrap_port: int | None = None

    def stats(self) -> dict[str, Any]:
        """The sim's counters (HTTP ``/sim/stats``, gRPC ``GetServerInfo.scheduler_info``)."""
        if self.url.startswith("grpc://"):
            with grpc.insecure_channel(self.url.removeprefix("grpc://")) as ch:
                stub = sglang_scheduler_pb2_grpc.SglangSchedulerStub(ch)
                info = stub.GetServerInfo(sglang_scheduler_pb2.GetServerInfoRequest(), timeout=5)
            doc: dict[str, Any] = json_format.MessageToDict(info.scheduler_info)
            return doc
        parsed: dict[str, Any] = json.loads(http_get(self.url + "/sim/stats")[1])
        return parsed


@contextmanager
def pd_sim(
    tmp: Path, role: str, style: str, *extra: str, grpc_mode: bool = False
) -> Iterator[PdSim]:
    """A ``smg sim --role ROLE --pd-style STYLE`` (a prefill one gets a free bootstrap port)."""
    flags = ["--role", role, "--pd-style", style, *extra]
    boot = free_port() if role == "prefill" else None
    if boot is not None:
        flags += ["--bootstrap-port", str(boot)]
    if not grpc_mode:
        with sim(tmp, *flags) as url:
            yield PdSim(url, boot)
        return
    port = free_port()
    p = Proc(
        smg_cmd("sim", "--grpc", "--port", str(port), "--seed", "7", *flags),
        tmp / f"gsim-{port}.log",
    )
    try:
        if not wait_until(lambda: "listening on grpc://" in p.output(), 20):
            raise RuntimeError(f"gRPC sim did not start:\n{p.output()}")
        yield PdSim(f"grpc://{HOST}:{port}", boot)
    finally:
        p.stop()


def pd_cluster(
    name: str,
    prefill: list[PdSim],
    decode: list[PdSim],
    style: str,
    protocol: str = "openai_http",
    **over: Any,
) -> dict[str, Any]:
    """A PD cluster of these sims (round robin in both groups, outlier detection off)."""
    pre = []
    for s in prefill:
        ep: dict[str, Any] = {"url": s.url}
        if style == "sglang" and s.bootstrap_port is not None:
            ep["bootstrap_port"] = s.bootstrap_port
        pre.append(ep)
    doc: dict[str, Any] = {
        "name": name,
        "protocol": protocol,
        "pd": {
            "style": style,
            "prefill": {"endpoints": pre, "lb_policy": "round_robin"},
            "decode": {"endpoints": [s.url for s in decode], "lb_policy": "round_robin"},
        },
        "outlier_detection": {"enabled": False},
        "health_check": {"enabled": False},
    }
    doc.update(over)
    return doc


def pd_gateway_config(clusters: list[dict[str, Any]]) -> dict[str, Any]:
    """One listener whose routes send model ``<cluster name>`` to that cluster."""
    return {
        "admin": {"address": f"{HOST}:{free_port()}"},
        "listeners": [
            {
                "name": "public",
                "address": f"{HOST}:{free_port()}",
                "filters": ["request_id", "router"],
                "routes": [{"match": {"model": c["name"]}, "cluster": c["name"]} for c in clusters],
            }
        ],
        "filters": {"request_id": {"type": "request_id"}},
        "clusters": clusters,
    }


def in_flight(g: Gateway) -> dict[tuple[str, str], int]:
    """In-flight count of every endpoint of every cluster, by (cluster, URL)."""
    doc = g.admin_json("/clusters")
    return {(c["name"], e["url"]): e["in_flight"] for c in doc["clusters"] for e in c["endpoints"]}


def assert_idle(g: Gateway) -> None:
    """Every endpoint of both groups of every cluster is back to zero in flight."""
    if not wait_until(lambda: not any(in_flight(g).values()), 5):
        busy = {k: v for k, v in in_flight(g).items() if v}
        raise AssertionError(f"load not released: {busy}")


def settle(
    pred: Any, what: str, detail: Callable[[], str] | None = None, timeout: float = 10.0
) -> None:
    """Wait for a sim-side condition (aborts are seen a moment after the gateway acts)."""
    if not wait_until(pred, timeout):
        more = f" ({detail()})" if detail is not None else ""
        raise AssertionError(f"never happened: {what}{more}")


def leave_when(g: Gateway, path: str, body: dict[str, Any], ready: Callable[[], bool]) -> None:
    """POST ``body`` and hang up, without reading the answer, once ``ready()`` holds.

    Clients that leave after a fixed time may leave, on a loaded machine, before the
    gateway sent a leg: waiting for the engines to see it keeps the test about leaving.
    """
    host, port = g.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        settle(ready, "legs reached their engines before the client left")
    finally:
        conn.close()


def metric(g: Gateway, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` on the admin /metrics whose labels include ``labels``."""
    text = http_get(g.admin + "/metrics")[1].decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
