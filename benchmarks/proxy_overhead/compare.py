#!/usr/bin/env python3
"""Same-round ratios of our gateway against the others, and the issue-2 goals.  Stdlib only.

  compare.py RESULTS_DIR [--scaling SCALING_DIR]    -> markdown on stdout
  compare.py --scaling SCALING_DIR

Reads results.jsonl / results_sse.jsonl / results_flush.jsonl written by run.sh (records of
../shared/bench/gateway_overhead.py).  Every ratio is computed inside one round (both
targets measured minutes apart), then the median and [min..max] over rounds are shown.
Env: OURS=ours RUST=smg-rust RUST_INFO=smg-rust-info VLLM=vllm-router (labels).
"""

import json
import os
import statistics
import sys
from collections import defaultdict

OURS = os.environ.get("OURS", "ours")
RUST = os.environ.get("RUST", "smg-rust")
RUST_INFO = os.environ.get("RUST_INFO", "smg-rust-info")
VLLM = os.environ.get("VLLM", "vllm-router")
P50_GOAL_US = 250


def load(d, name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [json.loads(line) for line in f if line.strip()]


def by_label_round(rows):
    out = defaultdict(dict)
    for r in rows:
        if "error" not in r:
            out[r["label"]][r["round"]] = r
    return out


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(vals, nd=0, suffix=""):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"

    def f(x):
        return f"{x:,.{nd}f}{suffix}"

    m = statistics.median(vals)
    return f(m) if len(vals) == 1 else f"{f(m)} [{f(min(vals))}..{f(max(vals))}]"


def cpu_us(r):
    v = r.get("cpu_s_per_10k")
    return v * 100 if v is not None else None


def added_fn(direct, key, p):
    def f(r):
        d = direct.get(r["round"])
        if d is None or key not in r or key not in d:
            return None
        return r[key][p] - d[key][p]

    return f


def metric_fns(tk, direct):
    return [
        ("CPU µs / request", cpu_us),
        (f"req/s @{tk}", lambda r: r[tk]["rps"]),
        ("added p50 @c1 µs", added_fn(direct, "c1", "p50_us")),
        ("added p99 @c1 µs", added_fn(direct, "c1", "p99_us")),
        ("added p50 @c8 µs", added_fn(direct, "c8", "p50_us")),
        ("added p99 @c8 µs", added_fn(direct, "c8", "p99_us")),
    ]


def sse_fns(tk, direct):
    return [
        ("CPU µs / stream request", cpu_us),
        (f"stream req/s @{tk}", lambda r: r[tk]["rps"]),
        ("added TTFB p50 µs (first `data:`)", added_fn(direct, "sse", "first_p50_us")),
        ("added TTFB p99 µs", added_fn(direct, "sse", "first_p99_us")),
        ("added last-byte p50 µs", added_fn(direct, "sse", "done_p50_us")),
    ]


def side_by_side(title, data, fns, others):
    ours = data.get(OURS, {})
    lines = [title, ""]
    head = ["metric", OURS]
    for o in others:
        head += [o, f"{OURS} / {o} (same round)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for name, fn in fns:
        row = [name, fmt([fn(r) for r in ours.values()])]
        for o in others:
            od = data.get(o, {})
            row.append(fmt([fn(r) for r in od.values()]))
            ratios = []
            for rnd, r in ours.items():
                if rnd in od:
                    a, b = fn(r), fn(od[rnd])
                    ratios.append(a / b if a is not None and b not in (None, 0) else None)
            row.append(fmt(ratios, 2, "x"))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def per_round(data, a, b, fn):
    """(round, value of a, value of b, a/b) for every round both have."""
    out = []
    for rnd, r in data.get(a, {}).items():
        o = data.get(b, {}).get(rnd)
        if o is not None and fn(r) is not None and fn(o):
            out.append((rnd, fn(r), fn(o), fn(r) / fn(o)))
    return out


def flush_word(r):
    word = "flushed" if r["flushed"] else "BUFFERED"
    return f"{word} (worst lateness {r['max_late_ms_worst']} ms)"


def goal_cpu(data, other, strict, label):
    rr = per_round(data, OURS, other, cpu_us)
    if not rr:
        return f"- {label}: no {other} data"
    ratios = [x[3] for x in rr]
    diffs = [x[1] - x[2] for x in rr]
    m, dm = statistics.median(ratios), statistics.median(diffs)
    mo, mt = med([x[1] for x in rr]), med([x[2] for x in rr])
    wins = sum(1 for x in ratios if (x < 1 if strict else x <= 1))
    ok = m < 1 if strict else m <= 1
    how = "lower" if strict else "not higher"
    text = (
        f"ours {mo:.0f} µs vs {other} {mt:.0f} µs per request (medians over rounds); "
        f"same-round ratio {m:.2f}x [{min(ratios):.2f}..{max(ratios):.2f}], same-round "
        f"difference {dm:+.0f} µs [{min(diffs):+.0f}..{max(diffs):+.0f}]; "
        f"ours {how} in {wins}/{len(ratios)} rounds"
    )
    if ok:
        text += f"; margin {(1 - m) * 100:.0f}% (median same-round ratio)"
    else:
        text += f"; missed by {(m - 1) * 100:.0f}% (median same-round ratio)"
    if min(ratios) < 1 < max(ratios):
        text += "; the ratio falls on both sides of 1 across rounds: within this run's noise"
    return f"- {label}: **{'met' if ok else 'missed'}** — {text}"


def goal_p50(data, others):
    direct = data.get("direct", {})

    def adds(label):
        return [
            r["c1"]["p50_us"] - direct[k]["c1"]["p50_us"]
            for k, r in data.get(label, {}).items()
            if k in direct
        ]

    a = adds(OURS)
    if not a:
        return None
    m = statistics.median(a)
    ok = m <= P50_GOAL_US
    text = f"median +{m:.0f} µs [{min(a):+.0f}..{max(a):+.0f}] over {len(a)} rounds"
    if not ok:
        text += f"; missed by {m - P50_GOAL_US:.0f} µs"
    for o in others:
        if adds(o):
            text += f"; {o} +{med(adds(o)):.0f} µs"
    verdict = "met" if ok else "missed"
    return f"- AIM added p50 at one connection ≤ {P50_GOAL_US} µs: **{verdict}** — {text}"


def flush_table(flush):
    first = flush[0]
    out = [
        f"### Flush check: {first.get('events')} SSE events {first.get('interval_ms', 0):.0f} ms "
        "apart from a trickling worker (`flush_check.py`)\n",
        "| target | flushed as they arrive | max lateness vs schedule, median ms | worst ms "
        "| first event ms | arrival offsets ms (one request) |",
        "|---|---|---|---|---|---|",
    ]
    for r in flush:
        if "error" in r:
            out.append(f"| {r['label']} | error: {r['error'][:80]} | | | | |")
            continue
        out.append(
            f"| {r['label']} | {'yes' if r['flushed'] else 'NO'} | {r['max_late_ms_median']} "
            f"| {r['max_late_ms_worst']} | {r['first_event_ms_median']} "
            f"| {r['offsets_ms_example']} |"
        )
    out.append("")
    return out


def overhead(d, scaling):
    rows = load(d, "results.jsonl")
    sse = load(d, "results_sse.jsonl")
    flush = load(d, "results_flush.jsonl")
    data, sdata = by_label_round(rows), by_label_round(sse)
    others = [o for o in (RUST, RUST_INFO, VLLM) if o in data]
    out = []
    if rows:
        tk = next(
            (k for k in rows[0] if k[0] == "c" and k[1:].isdigit() and k not in ("c1", "c8")),
            "c32",
        )
        n = len({r["round"] for r in rows})
        title = (
            f"### {OURS} vs the Rust gateways, non-streaming ({n} rounds; median [min..max]; "
            "ratios computed per round)"
        )
        out += side_by_side(title, data, metric_fns(tk, data.get("direct", {})), others)
        out.append("")
    if sse:
        sk = next(k for k in sse[0] if k.startswith("sse_c"))
        n = len({r["round"] for r in sse})
        title = f"### {OURS} vs the Rust gateways, streaming ({n} rounds)"
        sothers = [o for o in (RUST, RUST_INFO, VLLM) if o in sdata]
        out += side_by_side(title, sdata, sse_fns(sk, sdata.get("direct", {})), sothers)
        out.append("")
    if flush:
        out += flush_table(flush)

    out.append("### Goals (issue 2)\n")
    if rows:
        label = f"MUST CPU per request below the Rust SMG's (`{RUST}`, quiet logging), same run"
        out.append(goal_cpu(data, RUST, True, label))
        if RUST_INFO in data:
            label = f"  (same, against the Rust SMG at its default info logging, `{RUST_INFO}`)"
            out.append(goal_cpu(data, RUST_INFO, True, label))
    if sse and RUST in sdata:
        out.append(goal_cpu(sdata, RUST, True, f"  (streaming requests, against `{RUST}`)"))
    fl = [r for r in flush if r.get("label") == OURS and "error" not in r]
    bad = sum(r["sse"]["bad"] for r in sse if r.get("label") == OURS and "sse" in r)
    if fl or sse:
        ok = all(r["flushed"] for r in fl) and bad == 0
        verdict = ("met" if ok else "missed") if fl else "not checked (no flush run)"
        words = ", ".join(flush_word(r) for r in fl) or "not run"
        out.append(
            f"- MUST streaming chunks flushed as they arrive: **{verdict}** — trickle check: "
            f"{words}; SSE responses without [DONE] through {OURS}: {bad}"
        )
    if scaling:
        out.append("- MUST `--workers N` scales throughput: see the scaling table below")
    if rows:
        out.append(goal_cpu(data, VLLM, False, "AIM CPU per request no higher than vllm-router's"))
        if sse and VLLM in sdata:
            out.append(goal_cpu(sdata, VLLM, False, f"  (streaming requests, against `{VLLM}`)"))
        p50 = goal_p50(data, others)
        if p50:
            out.append(p50)
    out.append("")
    return out


def scaling_table(d):
    rows = load(d, "results.jsonl")
    data = by_label_round(rows)
    if not rows:
        return ["(no scaling results)"]
    tk = next((k for k in rows[0] if k[0] == "c" and k[1:].isdigit()), "c32")
    n = len({r["round"] for r in rows})
    out = [
        f"### `--workers` scaling, gateway and load generator both on cores 0-1 ({n} rounds)\n",
        f"| target | req/s @{tk} | vs {OURS}-w1 same round | CPU µs / req "
        "| gateway CPU (cores busy) | processes |",
        "|---|---|---|---|---|---|",
    ]
    base = data.get(f"{OURS}-w1", {})
    known = ("direct-2c", f"{OURS}-w1", f"{OURS}-w2", f"{OURS}-w3", f"{OURS}-w4")
    order = [lbl for lbl in (*known, f"{RUST}-2c", f"{VLLM}-2c") if lbl in data]
    order += sorted(lbl for lbl in data if lbl not in order)
    for lbl in order:
        rs = data[lbl]
        ratios = [r[tk]["rps"] / base[k][tk]["rps"] for k, r in rs.items() if k in base]
        out.append(
            f"| {lbl} | {fmt([r[tk]['rps'] for r in rs.values()])} | {fmt(ratios, 2, 'x')} | "
            f"{fmt([cpu_us(r) for r in rs.values()])} | "
            f"{fmt([r.get('cpu_util') for r in rs.values()], 2)} | "
            f"{fmt([r.get('nprocs') for r in rs.values()])} |"
        )
    w2 = [
        r[tk]["rps"] / base[k][tk]["rps"]
        for k, r in data.get(f"{OURS}-w2", {}).items()
        if k in base
    ]
    if w2:
        out.append(
            f"\n`--workers 2` / `--workers 1` throughput: {statistics.median(w2):.2f}x "
            f"[{min(w2):.2f}..{max(w2):.2f}] (with the load generator and the mock competing "
            "for the same 2 cores, the ceiling is well under 2x)."
        )
    la = [float(r["loadavg_before"][0]) for r in rows]
    out.append(
        f"1-min loadavg at run start: median {statistics.median(la):.2f}, "
        f"range {min(la):.2f}..{max(la):.2f} (2 cores)\n"
    )
    return out


def main():
    args = sys.argv[1:]
    scaling = None
    if "--scaling" in args:
        i = args.index("--scaling")
        scaling = args[i + 1]
        del args[i : i + 2]
    out = overhead(args[0], scaling) if args else []
    if scaling:
        out += scaling_table(scaling)
    print("\n".join(out))


if __name__ == "__main__":
    main()
