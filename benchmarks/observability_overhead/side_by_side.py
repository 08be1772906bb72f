#!/usr/bin/env python3
"""Observability overhead, gateways measured concurrently: over +15% CPU per request?

What it measures: CPU time (utime+stime from /proc/PID/stat, summed over the process group) of
each gateway per request its own wrk completed, over one shared wall window, for three set-ups:
  on    metrics + one JSON access line per request  (--log-level info --log-json)
  text  metrics + the default text access line      (--log-level info)
  bare  neither                                     (--disable-metrics --log-level warning)
Phases: json (non-streaming chat to the nginx JSON mock, 18001-18004) and sse ("stream": true,
SSE mock 18101-18104).  Each gateway writes its output to a file (access lines really written).
Per phase and set-up: ratio to bare per window, median over all windows of all runs with IQR,
min..max and per-run medians, verdict against 1.15; the CPU share of core 1 each gateway got;
checks that on/text wrote ~1 access line per request and that /metrics has smg_* samples.

Run: [SMG_PY=.../bin/smg] python3 benchmarks/observability_overhead/side_by_side.py [DIR]
(SMG_PY: this repo's `smg`, default the one next to the running interpreter.)  Defaults:
--runs 3 --rounds 8 --sse-rounds 8 --window 5 --warmup 2 --conns 12, about 6 min, fresh
gateways for every run and phase.  DIR (default results-sbs-<timestamp> next to this file)
gets smg-src/ (smg/ + schemas/ copied at start and run by the gateways, so repo edits during
the run change nothing), env.txt, rounds.jsonl (one record per window), logs/ (trimmed once
counted) and summary.md (also printed).  Needs wrk, nginx, taskset and the mock
../shared/bench/mock_worker.sh next to the repo (env BENCH): reused if running, stopped
only if started here.

Why concurrent: measured one at a time in alternating windows, per-round on/bare ratios ranged
0.79..1.29, as the machine's speed drifts between windows.  Here the three gateways run AT THE
SAME TIME on core 1, each loaded by its own wrk (started together, order rotated every round, on
core 0 with the mock), and CPU and requests are taken over the same wall window, so the drift
hits all three alike and cancels in the ratio: quote the ratio.  Absolute µs per request are
inflated by three processes sharing one core.
"""

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from statistics import median, quantiles
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MOCK = Path(os.environ.get("BENCH", REPO.parent / "shared" / "bench")) / "mock_worker.sh"
CLK = os.sysconf("SC_CLK_TCK")
LIMIT, HOST, BASE, CHAT = 1.15, "127.0.0.1", "bare", "/v1/chat/completions"
BODY = '{"model":"mock-model","stream":%s,"messages":[{"role":"user","content":"ping"}],'
BODY += '"max_tokens":8}'  # the request of the prototype's /tmp/body.lua and /tmp/sse.lua
PHASES = {"json": (18001, "false"), "sse": (18101, "true")}  # first of 4 mock ports, "stream"
OPTS = "runs=3 rounds=8 sse-rounds=8 window=5 warmup=2 conns=12 gw-core=1 load-core=0"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
ERRS = re.compile(r"\b(connect|read|write|timeout|responses):? (\d+)")  # wrk's error lines
LUA = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '
HASH = "find smg -name '*.py' | sort | xargs cat | sha256sum | cut -c1-16"


FLAGS = {  # set-up: gateway flags (port 30001.. in this order, its /metrics on port - 1000)
    "on": "--log-level info --log-json",
    "text": "--log-level info",
    "bare": "--disable-metrics --log-level warning",
}
SMG = Path(os.environ.get("SMG_PY") or Path(sys.executable).parent / "smg")
PROCS: list[subprocess.Popen[bytes]] = []  # process groups this run started and must end
MOCK_STARTED = [False]


@dataclass
class Gateway:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    sent: int = 0  # requests answered (readiness probes, warm-up, windows)


Args = argparse.Namespace


class BenchError(Exception):
    """Ends the benchmark, after cleanup."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd: str) -> str:
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)
    return (p.stdout + p.stderr).strip()


def on_signal(signum: int, _frame: object) -> None:
    raise BenchError(f"interrupted by {signal.Signals(signum).name}")


def group_cpu(pgid: int) -> float:
    """utime+stime in seconds (fields 14, 15 of /proc/PID/stat) summed over a process group."""
    ticks = 0
    for d in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            f = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()  # f[k]: field k+3
            ticks += int(f[11]) + int(f[12]) if int(f[2]) == pgid else 0
    return ticks / CLK


def spawn(cmd: list[str], out: Any, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `cmd` in a new session (own process group) and remember it for cleanup."""
    kw: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "env": env}
    PROCS.append(subprocess.Popen(cmd, stdout=out, start_new_session=True, **kw))
    return PROCS[-1]


def end_group(p: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group; 5 s later SIGKILL to whatever is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    PROCS[:] = [q for q in PROCS if q is not p]


def http(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status), r.read()
    except (OSError, ValueError) as e:  # HTTPError (has .code) and URLError are OSErrors
        return int(getattr(e, "code", 0)), b""


def snapshot(res: Path, smg: Path) -> str:
    """Copy smg/ and schemas/ to RES/smg-src and check that smg's Python imports the copy."""
    dst = res / "smg-src"
    for sub in ("smg", "schemas"):
        shutil.copytree(REPO / sub, dst / sub, ignore=shutil.ignore_patterns("__pycache__"))
    interp = smg.read_text().splitlines()[0].removeprefix("#!").split()[-1]
    cmd = [interp, "-c", "import smg; print(smg.__file__)"]
    env = {**os.environ, "PYTHONPATH": str(dst)}
    got = subprocess.run(cmd, capture_output=True, text=True, cwd="/", env=env, check=False)
    if not got.stdout.startswith(str(dst)):
        raise BenchError(f"{interp} does not import the snapshot {dst}: {got}")
    return str(dst)


def start_gateways(a: Args, phase: str, run: int, res: Path) -> list[Gateway]:
    port0, stream = PHASES[phase]
    gws = []
    for port, (name, flags) in enumerate(FLAGS.items(), 30001):
        cmd = f"taskset -c {a.gw_core} {SMG} launch --host {HOST} --port {port} --prometheus-host"
        cmd += f" {HOST} --prometheus-port {port - 1000} {flags} --worker-urls"
        cmd += "".join(f" http://{HOST}:{port0 + i}" for i in range(4))
        if run == 1:
            with (res / "env.txt").open("a") as f:
                f.write(f"cmd {phase} {name}: PYTHONPATH={a.pythonpath} {cmd}\n")
        path = res / "logs" / f"run{run}-{phase}-{name}.log"
        with path.open("ab") as f:
            proc = spawn(cmd.split(), f, {**os.environ, "PYTHONPATH": a.pythonpath})
        gws.append(Gateway(name, port, proc, path))
    t0 = time.monotonic()
    for g in gws:
        while (code := http(f"http://{HOST}:{g.port}{CHAT}", (BODY % stream).encode())[0]) != 200:
            if g.proc.poll() is not None or time.monotonic() > t0 + 60:
                raise BenchError(f"{g.name} not ready (rc {g.proc.returncode}): {g.log_path}")
            g.sent += code != 0
            time.sleep(0.1)
        g.sent += 1
    log(f"run {run} {phase}: gateways ready in {time.monotonic() - t0:.1f} s")
    return gws


def run_wrks(a: Args, gws: list[Gateway], secs: int, lua: Path) -> list[dict[str, Any]]:
    """One wrk per gateway, all started at once in the order of `gws`; results in that order."""
    wrk = f"taskset -c {a.load_core} wrk -t1 -c{a.conns} -d{secs}s --timeout 5s -s {lua}".split()
    procs = [spawn([*wrk, f"http://{HOST}:{g.port}{CHAT}"], subprocess.PIPE) for g in gws]
    out: list[dict[str, Any]] = []
    for g, p in zip(gws, procs, strict=True):
        try:
            text = p.communicate(timeout=secs + 30)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            text = "wrk timed out"
        end_group(p)
        m = re.search(r"(\d+) requests in", text)
        errs = {k: int(v) for k, v in ERRS.findall(text)}  # responses: non-2xx/3xx
        bad = None if m and p.returncode == 0 else f"wrk rc {p.returncode}: {text[-300:]!r}"
        out.append({"requests": int(m.group(1)) if m else 0, "errors": errs, "wrk_error": bad})
        g.sent += out[-1]["requests"]
    return out


def run_phase(a: Args, run: int, phase: str, rounds: int, res: Path, checks: list[str]) -> None:
    gws, lua = start_gateways(a, phase, run, res), res / f"{phase}.lua"
    try:
        run_wrks(a, gws, a.warmup, lua)
        for r in range(1, rounds + 1):
            order = gws[(r - 1) % len(gws) :] + gws[: (r - 1) % len(gws)]
            c0, t0 = [group_cpu(g.proc.pid) for g in order], time.monotonic()
            got = run_wrks(a, order, a.window, lua)
            time.sleep(0.25)  # let in-flight requests finish before reading CPU
            wall = time.monotonic() - t0
            cpu = [group_cpu(g.proc.pid) - c for g, c in zip(order, c0, strict=True)]
            if dead := [g.name for g in order if g.proc.poll() is not None]:
                raise BenchError(f"gateway {dead} died; logs in {res / 'logs'}")
            bad = any(x["wrk_error"] or not x["requests"] or sum(x["errors"].values()) for x in got)
            trio = list(zip(order, cpu, got, strict=True))
            rec = {"run": run, "phase": phase, "round": r, "wall_s": round(wall, 3), "flagged": bad}
            rec |= {"window_s": a.window, "loadavg1": os.getloadavg()[0]}
            rec |= {g.name: {"cpu_s": round(c, 3), **x} for g, c, x in trio}
            rec["order"] = [g.name for g in order]
            with (res / "rounds.jsonl").open("a") as f:
                f.write(json.dumps(rec) + "\n")
            msg = ", ".join(f"{g.name} {c:.2f} s ({x['requests']} req)" for g, c, x in trio)
            msg = f"run {run} {phase} round {r}: CPU {msg} in {wall:.2f} s wall"
            with (res / "env.txt").open("a") as f:
                f.write(f"{msg}, core {a.gw_core} busy {sum(cpu) / wall:.0%}\n")
            log(msg + (f"  FLAGGED {got}" if bad else ""))
        for g in gws[:2]:  # on, text
            code, body = http(f"http://{HOST}:{g.port - 1000}/metrics")
            n = sum(ln.startswith("smg_") for ln in body.decode(errors="replace").splitlines())
            ok = "ok" if code == 200 and n else "PROBLEM"
            checks.append(f"run {run} {phase} {g.name}: /metrics {code}, {n} smg_* samples: {ok}")
    finally:
        for g in gws:
            end_group(g.proc)
    for g in gws:  # stopped, so the logs are complete: count access lines, then trim
        text = g.log_path.read_text(errors="replace")
        lines = text.splitlines(keepends=True)
        n = sum("smg.access" in ln for ln in lines)
        per = n / g.sent if g.sent else 0.0
        fine = (per == 0) if g.name == BASE else (0.95 <= per <= 1.05)
        checks.append(
            f"run {run} {phase} {g.name}: {n} access lines for ~{g.sent} requests "
            f"({per:.3f} per request): {'ok' if fine else 'PROBLEM'}"
        )
        if len(text) > 2_000_000:
            cut = f"... {len(lines) - 220} lines ({len(text) / 1e6:.0f} MB) trimmed once counted\n"
            g.log_path.write_text("".join(lines[:20]) + cut + "".join(lines[-200:]))


def summarize(res: Path, checks: list[str]) -> str:
    recs = [json.loads(ln) for ln in (res / "rounds.jsonl").read_text().splitlines()]
    good = [w for w in recs if not w["flagged"]]

    def us(w: dict[str, Any], name: str) -> float:
        return float(w[name]["cpu_s"] / w[name]["requests"] * 1e6)

    def share(w: dict[str, Any], name: str) -> float:
        return float(w[name]["cpu_s"] / sum(w[s]["cpu_s"] for s in FLAGS))

    out = f"""# Observability overhead, gateways measured concurrently ({res.name})

CPU µs per completed request; ratio = set-up / {BASE} in the same window: median [IQR] (min..max)
over all windows of all runs, then the per-run medians; verdict: median ratio against {LIMIT}.
Absolute µs are inflated by three gateways sharing one core: quote the ratio.

| phase | set-up | median CPU µs/req | ratio to bare: median [IQR] (min..max) | per-run medians \
| windows | verdict | median req/s | CPU share of the core: median (min) |
|---|---|---|---|---|---|---|---|---|""".splitlines()
    answers: list[str] = []
    for phase in PHASES:
        mine = [w for w in good if w["phase"] == phase]
        n = f"{len(mine)} of {sum(w['phase'] == phase for w in recs)}"
        for s in FLAGS if mine else ():
            xs = [us(w, s) / us(w, BASE) for w in mine]
            med = median(xs)
            q = quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [med] * 3
            per_run: dict[int, list[float]] = {}
            for x, w in zip(xs, mine, strict=True):
                per_run.setdefault(w["run"], []).append(x)
            sh_ = [share(w, s) for w in mine]
            verdict, ref = ("within" if med <= LIMIT else "OVER") + f" {LIMIT}", s != BASE
            out.append(
                f"| {phase} | {s} | {median(us(w, s) for w in mine):.0f} "
                f"| {f'{med:.3f} [{q[0]:.3f}..{q[2]:.3f}] ({min(xs):.3f}..{max(xs):.3f})' * ref} "
                f"| {', '.join(f'{median(v):.3f}' for v in per_run.values()) * ref} | {n} "
                f"| {verdict if ref else 'reference'}{' (IQR spans it)' * (q[0] <= LIMIT < q[2])} "
                f"| {median(w[s]['requests'] / w['window_s'] for w in mine):.0f} "
                f"| {median(sh_):.3f} ({min(sh_):.3f}) |"
            )
            if ref:
                pct = f"{(med - 1) * 100:+.1f}% CPU per request, {verdict}"
                answers.append(f"{s}/bare {phase} {med:.3f} ({pct})")
    starved = [
        f"run {w['run']} {w['phase']} round {w['round']} {s} {share(w, s):.3f}"
        for w in good
        for s in FLAGS
        if share(w, s) < 0.8 / len(FLAGS)
    ]
    busy = [sum(w[s]["cpu_s"] for s in FLAGS) / w["wall_s"] for w in good] or [0.0]
    flagged = [f"run {w['run']} {w['phase']} round {w['round']}" for w in recs if w["flagged"]]
    checks_md = "\n".join(f"- {c}" for c in checks)
    return (
        "\n".join(out)
        + f"""

**Answer:** {"; ".join(answers)}.

Gateway core busy (the gateways' CPU / wall, which includes the 0.25 s settle after wrk stops, \
so ~0.95 = saturated): median {median(busy):.2f}, min {min(busy):.2f}.
Starved (CPU share < 80% of a fair 1/3): {"; ".join(starved) or "none"}.
Flagged windows (socket errors, non-2xx or wrk failure; left out): {", ".join(flagged) or "none"}.

Checks:
{checks_md}
"""
    )


def write_env(res: Path, a: Args) -> None:
    git = f"git -C {REPO}"
    lines = [
        f"date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}   kernel: {os.uname().release}   "
        f"nproc: {os.cpu_count()}   {sh('grep -m1 model.name /proc/cpuinfo')}",
        f"loadavg at start: {Path('/proc/loadavg').read_text().strip()}",
        f"command: {shlex.join([sys.executable, *sys.argv])}   cwd: {os.getcwd()}",
        f"smg: {SMG}   git HEAD {sh(f'{git} rev-parse HEAD')}, "
        f"{sh(f'{git} status --short smg | wc -l')} uncommitted files under smg/",
        f"smg/*.py sha256: live {sh(f'cd {REPO} && {HASH}')}, "
        f"measured snapshot {sh(f'cd {a.pythonpath} && {HASH}')} ({a.pythonpath})",
        f"settings: {vars(a)}",
        f"wrk: {sh('wrk -v 2>&1 | head -1')}   nginx: {sh('nginx -v')}",
        f"mock: {'started by this run' if MOCK_STARTED[0] else 'already running (reused)'}",
        "busiest processes at start:",
        sh("ps -eo pid,pcpu,comm --sort=-pcpu | head -6"),
        "per window below: CPU seconds each gateway got (fair share: 1/3 of the window).",
    ]
    (res / "env.txt").write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description="Observability overhead, gateways concurrently.")
    ap.add_argument("results", nargs="?", help="results dir [results-sbs-<timestamp>]")
    for name, default in re.findall(r"([\w-]+)=(\d+)", OPTS):
        ap.add_argument(f"--{name}", type=int, default=int(default), help=f"[{default}]")
    a = ap.parse_args()
    res = Path(a.results or HERE / f"results-sbs-{time.strftime('%Y%m%d-%H%M%S')}").absolute()
    if (res / "rounds.jsonl").exists():
        sys.exit(f"{res}/rounds.jsonl exists already: pick a new results dir")
    for sig in SIGNALS:
        signal.signal(sig, on_signal)
    t0, rc, checks = time.monotonic(), 0, list[str]()
    try:
        (res / "logs").mkdir(parents=True, exist_ok=True)
        a.pythonpath = snapshot(res, SMG)
        for phase, (_, stream) in PHASES.items():
            (res / f"{phase}.lua").write_text(f"{LUA}'{BODY % stream}'\n")
        if sh(f"{MOCK} status").startswith("running"):
            log("mock worker already running: reusing it (and leaving it running)")
        else:
            MOCK_STARTED[0] = True
            log(sh(f"LOAD_CORE={a.load_core} {MOCK} start"))
        for port, _ in PHASES.values():
            if http(f"http://{HOST}:{port}/health")[0] != 200:
                raise BenchError(f"mock worker does not answer /health on port {port}")
        write_env(res, a)
        log(f"results: {res}")
        for run in range(1, a.runs + 1):
            for phase, rounds in (("json", a.rounds), ("sse", a.sse_rounds)):
                if rounds > 0:
                    run_phase(a, run, phase, rounds, res, checks)
    except BenchError as e:
        log(f"STOPPED: {e}")
        rc = 1
    finally:
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        while PROCS:
            end_group(PROCS[-1])
        if MOCK_STARTED[0]:
            log(sh(f"{MOCK} stop"))
    elapsed = time.monotonic() - t0
    with (res / "env.txt").open("a") as f:
        f.write(f"loadavg at end: {Path('/proc/loadavg').read_text().strip()}\n")
        f.write(f"smg/*.py sha256 live at end: {sh(f'cd {REPO} && {HASH}')}\n")
        f.write(f"elapsed {elapsed:.0f} s, exit code {rc}\n")
    if (res / "rounds.jsonl").exists():
        text = summarize(res, checks) + f"\nElapsed {elapsed:.0f} s{' (INCOMPLETE)' * rc}\n"
        (res / "summary.md").write_text(text)
        print(text, end="")
    return rc


if __name__ == "__main__":
    sys.exit(main())
