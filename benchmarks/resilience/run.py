"""Resilience benchmark: what retries + circuit breaking buy when one worker of four is bad.

A pool of four ``smg sim`` workers (realistic small latencies) behind one ``smg run``
gateway (round robin). One worker is faulty, per scenario:

* ``fail50``  answers 503 to half of its requests (``--fail-rate 0.5``)
* ``dead``    nobody listens on its port (connection refused)
* ``hang``    accepts every request and never answers (``--hang-rate 1.0``)

Each scenario runs two gateway configs on the same workers:

* ``on``   the defaults (3 retries with budget, outlier detection, health checks), plus
           ``retry_on`` including ``timeout``
* ``off``  ``retry_policy.max_retries: 0``, ``outlier_detection.enabled: false``,
           ``health_check.enabled: false``

Both get ``request_timeout: 5s`` on the listener and, in ``hang``, ``per_try_timeout: 1s``
(so the only difference is what the gateway does after a failed attempt). Every run is a
fresh gateway process (the breaker learns from scratch each time) driven by ``--requests``
requests at ``--concurrency`` (half streamed, half chat / half completions), each with a
client timeout of 6 s. ON and OFF alternate, the order flipping every round, for
``--rounds`` rounds; the table gives the median and [min..max] over rounds.

    /tmp/v/bin/python benchmarks/resilience/run.py [--requests 2000] [--concurrency 32]
        [--rounds 3] [--scenarios fail50,dead,hang] [--json out.json]

Loopback only; every process started here is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

# The process helpers of the end-to-end tests start and reap smg / smg sim exactly the
# way this benchmark needs; reuse them rather than keep a second copy in sync.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.procs import (
    HOST,
    Proc,
    free_port,
    gateway,
    gateway_config,
    http_get,
    smg_cmd,
    wait_until,
)

SIM_FLAGS = ("--ttft-base-ms", "20", "--itl-ms", "5")
MAX_TOKENS = 16
REQUEST_TIMEOUT = 5.0
CLIENT_TIMEOUT = 6.0
FAULTS = {
    "fail50": ("--fail-rate", "0.5"),
    "dead": None,  # a port nobody listens on
    "hang": ("--hang-rate", "1.0"),
}
DESCRIPTIONS = {
    "fail50": "one worker fails 50% (503)",
    "dead": "one worker dead (refused)",
    "hang": "one worker hangs",
}


@dataclass
class RunResult:
    """One drive of ``requests`` requests against one gateway."""

    ok: int = 0
    total: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))]

        return {
            "success_pct": 100.0 * self.ok / self.total,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": lat[-1],
            "over_1s": sum(1 for x in lat if x >= 1000.0),
            "errors": dict(sorted(self.errors.items())),
            "wall_s": self.wall_s,
        }


def body(i: int, stream: bool, chat: bool) -> tuple[str, dict[str, Any]]:
    """Path and JSON body of request ``i``."""
    doc: dict[str, Any] = {"model": "sim-model", "max_tokens": MAX_TOKENS}
    if chat:
        path = "/v1/chat/completions"
        doc["messages"] = [{"role": "user", "content": f"request {i}"}]
    else:
        path = "/v1/completions"
        doc["prompt"] = f"request {i}"
    if stream:
        doc["stream"] = True
    return path, doc


async def one(
    s: aiohttp.ClientSession, url: str, i: int, stream: bool, chat: bool, res: RunResult
) -> None:
    """Send request ``i``; record its latency and how it ended."""
    path, doc = body(i, stream, chat)
    t0 = time.perf_counter()
    key: str | None = None
    try:
        async with asyncio.timeout(CLIENT_TIMEOUT), s.post(url + path, json=doc) as r:
            raw = await r.read()
            if r.status != 200:
                key = str(r.status)
            elif stream:
                # A stream cut after its head ends with an error event, not [DONE].
                if b'data: {"error"' in raw:
                    key = "200+error_event"
                elif not raw.rstrip().endswith(b"data: [DONE]"):
                    key = "200+truncated"
            elif b'"finish_reason"' not in raw:
                key = "200+bad_body"
    except TimeoutError:
        key = "client_timeout"
    except aiohttp.ClientError as exc:
        key = type(exc).__name__
    res.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
    res.total += 1
    if key is None:
        res.ok += 1
    else:
        res.error(key)


async def drive(url: str, requests: int, concurrency: int) -> RunResult:
    """``requests`` requests, ``concurrency`` at a time (a fixed pool of client loops)."""
    res = RunResult()
    # Seeded coin flips, not i % 2: with round robin over four workers a regular pattern
    # could send only streams (or none) to the faulty one.
    rng = random.Random(1)
    kinds = [(rng.random() < 0.5, rng.random() < 0.5) for _ in range(requests)]
    counter = iter(range(requests))

    async def loop(s: aiohttp.ClientSession) -> None:
        for i in counter:
            await one(s, url, i, *kinds[i], res)

    t0 = time.perf_counter()
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:
        await asyncio.gather(*(loop(s) for _ in range(concurrency)))
    res.wall_s = time.perf_counter() - t0
    return res


def gateway_doc(urls: list[str], scenario: str, mode: str) -> dict[str, Any]:
    doc = gateway_config(urls, free_port(), free_port())
    doc["listeners"][0]["request_timeout"] = f"{REQUEST_TIMEOUT:g}s"
    doc["logging"] = {"access_log": False, "level": "warning"}
    cluster = doc["clusters"][0]
    retry: dict[str, Any] = {}
    if scenario == "hang":
        retry["per_try_timeout"] = "1s"
    if mode == "on":
        retry["retry_on"] = ["connect_failure", "reset", "timeout", "5xx"]
    else:
        retry["max_retries"] = 0
        cluster["outlier_detection"] = {"enabled": False}
        cluster["health_check"] = {"enabled": False}
    cluster["retry_policy"] = retry
    return doc


@contextlib.contextmanager
def workers(tmp: Path, scenario: str) -> Iterator[list[str]]:
    """Three healthy sims and the scenario's faulty one (first in the list)."""
    fault = FAULTS[scenario]
    procs: list[Proc] = []
    urls: list[str] = []
    try:
        for k in range(4):
            port = free_port()
            urls.append(f"http://{HOST}:{port}")
            if k == 0 and fault is None:
                continue  # the dead worker: its port stays unbound
            flags = (*SIM_FLAGS, *(fault if k == 0 and fault else ()))
            procs.append(
                Proc(
                    smg_cmd("sim", "--port", str(port), "--model", "sim-model", *flags),
                    tmp / f"sim-{port}.log",
                )
            )
        for u in urls[1:] if fault is None else urls:
            if not wait_until(lambda u=u: http_get(u + "/health", 1)[0] == 200, 20):
                raise RuntimeError(f"sim {u} did not start")
        yield urls
    finally:
        for p in procs:
            p.stop()


def run_one(tmp: Path, urls: list[str], scenario: str, mode: str, args: Any) -> dict[str, Any]:
    d = Path(tempfile.mkdtemp(prefix=f"{scenario}-{mode}-", dir=tmp))
    with gateway(d, gateway_doc(urls, scenario, mode)) as g:
        res = asyncio.run(drive(g.url, args.requests, args.concurrency))
        out = res.summary()
        # Attempts the gateway made on the faulty worker (first in the list): what the
        # breaker saves it, and the workers' capacity it no longer wastes.
        bad = g.cluster_endpoints("pool")[urls[0]]
        out["bad_attempts"] = bad["total_requests"]
        out["bad_ejections"] = bad.get("ejections", 0)
    return out


def med(xs: list[float], fmt: str) -> str:
    """``median [min..max]``."""
    return f"{statistics.median(xs):{fmt}} [{min(xs):{fmt}}..{max(xs):{fmt}}]"


def table(results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    lines = [
        "| scenario | config | success % | p50 ms | p99 ms | max ms | requests ≥ 1 s "
        "| attempts on the bad worker | errors by status |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for scenario, modes in results.items():
        for mode in ("on", "off"):
            runs = modes[mode]
            keys = sorted({k for r in runs for k in r["errors"]})
            errs = ", ".join(
                f"{k}: {med([float(r['errors'].get(k, 0)) for r in runs], '.0f')}" for k in keys
            )
            lines.append(
                f"| {DESCRIPTIONS[scenario]} | {mode.upper()} "
                f"| {med([r['success_pct'] for r in runs], '.2f')} "
                f"| {med([r['p50_ms'] for r in runs], '.0f')} "
                f"| {med([r['p99_ms'] for r in runs], '.0f')} "
                f"| {med([r['max_ms'] for r in runs], '.0f')} "
                f"| {med([float(r['over_1s']) for r in runs], '.0f')} "
                f"| {med([float(r['bad_attempts']) for r in runs], '.0f')} "
                f"| {errs or '—'} |"
            )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scenarios", default="fail50,dead,hang")
    ap.add_argument("--json", type=Path, help="also write every run's figures here")
    args = ap.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    for s in scenarios:
        if s not in FAULTS:
            ap.error(f"unknown scenario {s!r}")

    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"{args.requests} requests x {args.rounds} rounds, concurrency {args.concurrency}",
        file=sys.stderr,
    )
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="smg-resilience-") as tmpdir:
        tmp = Path(tmpdir)
        for scenario in scenarios:
            results[scenario] = {"on": [], "off": []}
            with workers(tmp, scenario) as urls:
                for rnd in range(args.rounds):
                    order = ("on", "off") if rnd % 2 == 0 else ("off", "on")
                    for mode in order:
                        r = run_one(tmp, urls, scenario, mode, args)
                        results[scenario][mode].append(r)
                        print(
                            f"{scenario:7s} round {rnd + 1} {mode:3s} "
                            f"ok {r['success_pct']:6.2f}% p50 {r['p50_ms']:6.0f} ms "
                            f"p99 {r['p99_ms']:6.0f} ms max {r['max_ms']:6.0f} ms "
                            f"{r['wall_s']:5.1f} s >=1s {r['over_1s']} "
                            f"bad {r['bad_attempts']} {r['errors']}",
                            file=sys.stderr,
                            flush=True,
                        )
    print(f"# load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
