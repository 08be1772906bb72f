#!/usr/bin/env python3
"""Same-round ratios of our gateway against the others, and the issue-2 goals.  Stdlib only.

  compare.py RESULTS_DIR [--scaling SCALING_DIR]    -> markdown on stdout

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
    return [json.loads(line) for line in open(p) if line.strip()]


def by_label_round(rows):
    out = defaultdict(dict)
    for r in rows:
        if "error" not in r:
            out[r["label"]][r["round"]] = r
    return out


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(vals, nd=0, pct=False):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"
    f = (lambda x: f"{x * 100 - 100:+.{nd}f}%") if pct else (lambda x: f"{x:,.{nd}f}")
    m = statistics.median(vals)
    return f(m) if len(vals) == 1 else f"{f(m)} [{f(min(vals))}..{f(max(vals))}]"


def cpu_us(r):
    v = r.get("cpu_s_per_10k")
    return v * 100 if v is not None else None


def metric_fns(tk, direct):
    def added(key, p):
        def f(r):
            d = direct.get(r["round"])
            if d is None or key not in r or key not in d:
                return None
            return r[key][p] - d[key][p]

        return f

    return [
        ("CPU µs / request", cpu_us, 0),
        (f"req/s @{tk}", lambda r: r[tk]["rps"], 0),
        ("added p50 @c1 µs", added("c1", "p50_us"), 0),
        ("added p99 @c1 µs", added("c1", "p99_us"), 0),
        ("added p50 @c8 µs", added("c8", "p50_us"), 0),
        ("added p99 @c8 µs", added("c8", "p99_us"), 0),
    ]


def sse_fns(tk, direct):
    def added(p):
        def f(r):
            d = direct.get(r["round"])
            return (r["sse"][p] - d["sse"][p]) if d is not None else None

        return f

    return [
        ("CPU µs / stream request", cpu_us, 0),
        (f"stream req/s @{tk}", lambda r: r[tk]["rps"], 0),
        ("added TTFB p50 µs (first `data:`)", added("first_p50_us"), 0),
        ("added TTFB p99 µs", added("first_p99_us"), 0),
        ("added last-byte p50 µs", added("done_p50_us"), 0),
    ]


def side_by_side(title, data, fns, others):
    ours = data.get(OURS, {})
    lines = [title, ""]
    head = ["metric", OURS]
    for o in others:
        head += [o, f"{OURS} / {o} (same round)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for name, fn, nd in fns:
        row = [name, fmt([fn(r) for r in ours.values()], nd)]
        for o in others:
            od = data.get(o, {})
            row.append(fmt([fn(r) for r in od.values()], nd))
            ratios = []
            for rnd, r in ours.items():
                if rnd in od:
                    a, b = fn(r), fn(od[rnd])
                    ratios.append(a / b if a is not None and b not in (None, 0) else None)
            row.append(fmt(ratios, 2) + "×" if any(x is not None for x in ratios) else "n/a")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def per_round_ratio(data, a, b, fn):
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
    rr = per_round_ratio(data, OURS, other, cpu_us)
    if not rr:
        return f"- {label}: no {other} data"
    ratios = [x[3] for x in rr]
    m = statistics.median(ratios)
    mo, mt = med([x[1] for x in rr]), med([x[2] for x in rr])
    wins = sum(1 for x in ratios if (x < 1 if strict else x <= 1))
    ok = m < 1 if strict else m <= 1
    verdict = "**met**" if ok else "**missed**"
    by = (
        f"ours {mo:.0f} µs vs {other} {mt:.0f} µs per request (medians); same-round ratio "
        f"{m:.2f}× [{min(ratios):.2f}..{max(ratios):.2f}], ours {'lower' if strict else 'not higher'} in {wins}/{len(ratios)} rounds"
    )
    if not ok:
        by += f"; missed by {mo - mt:.0f} µs/request ({(m - 1) * 100:.0f}% over)"
    else:
        by += f"; margin {mt - mo:.0f} µs/request ({(1 - m) * 100:.0f}% under)"
    return f"- {label}: {verdict} — {by}"


def main():
    args = sys.argv[1:]
    scaling = None
    if "--scaling" in args:
        i = args.index("--scaling")
        scaling = args[i + 1]
        del args[i : i + 2]
    out = []
    if args:
        d = args[0]
        rows = load(d, "results.jsonl")
        sse = load(d, "results_sse.jsonl")
        flush = load(d, "results_flush.jsonl")
        data = by_label_round(rows)
        others = [o for o in (RUST, RUST_INFO, VLLM) if o in data]
        if rows:
            tk = next(
                (
                    k
                    for k in rows[0]
                    if k.startswith("c") and k[1:].isdigit() and k not in ("c1", "c8")
                ),
                "c32",
            )
            out += side_by_side(
                f"### {OURS} vs the Rust gateways, non-streaming ({len({r['round'] for r in rows})} rounds; median [min..max]; ratios computed per round)",
                data,
                metric_fns(tk, data.get("direct", {})),
                others,
            )
            out.append("")
        sdata = by_label_round(sse)
        if sse:
            sk = next(k for k in sse[0] if k.startswith("sse_c"))
            out += side_by_side(
                f"### {OURS} vs the Rust gateways, streaming ({len({r['round'] for r in sse})} rounds)",
                sdata,
                sse_fns(sk, sdata.get("direct", {})),
                [o for o in (RUST, RUST_INFO, VLLM) if o in sdata],
            )
            out.append("")
        if flush:
            out.append(
                f"### Flush check: {flush[0].get('events')} SSE events {flush[0].get('interval_ms'):.0f} ms apart from a trickling worker (`flush_check.py`)\n"
            )
            out.append(
                "| target | flushed as they arrive | max lateness vs schedule, median ms | worst ms | first event ms | arrival offsets ms (one request) |"
            )
            out.append("|---|---|---|---|---|---|")
            for r in flush:
                if "error" in r:
                    out.append(f"| {r['label']} | error: {r['error'][:80]} | | | | |")
                    continue
                out.append(
                    f"| {r['label']} | {'yes' if r['flushed'] else 'NO'} | {r['max_late_ms_median']} | {r['max_late_ms_worst']} | {r['first_event_ms_median']} | {r['offsets_ms_example']} |"
                )
            out.append("")
        # goals
        out.append("### Goals (issue 2)\n")
        if rows:
            out.append(
                goal_cpu(
                    data,
                    RUST,
                    True,
                    f"MUST CPU per request below the Rust SMG's (`{RUST}`, quiet logging) in the same run",
                )
            )
            if RUST_INFO in data:
                out.append(
                    goal_cpu(
                        data,
                        RUST_INFO,
                        True,
                        f"  (same, against the Rust SMG at its default info logging, `{RUST_INFO}`)",
                    )
                )
        fl = [r for r in flush if r.get("label") == OURS and "error" not in r]
        bad = sum(r["sse"]["bad"] for r in sse if r.get("label") == OURS and "sse" in r)
        if fl or sse:
            ok = all(r["flushed"] for r in fl) and bad == 0
            verdict = ("met" if ok else "missed") if fl else "not checked (no flush run)"
            out.append(
                f"- MUST streaming chunks flushed as they arrive: **{verdict}** — "
                f"trickle check: {', '.join(flush_word(r) for r in fl) or 'not run'}; "
                f"SSE responses without [DONE] through {OURS}: {bad}"
            )
        if scaling:
            out.append(f"- MUST `--workers N` scales throughput: see the scaling table below")
        if rows:
            out.append(
                goal_cpu(data, VLLM, False, f"AIM CPU per request no higher than vllm-router's")
            )
            direct = data.get("direct", {})
            adds = [
                r["c1"]["p50_us"] - direct[k]["c1"]["p50_us"]
                for k, r in data.get(OURS, {}).items()
                if k in direct
            ]
            if adds:
                m = statistics.median(adds)
                ok = m <= P50_GOAL_US
                out.append(
                    f"- AIM added p50 at one connection ≤ {P50_GOAL_US} µs: **{'met' if ok else 'missed'}** — "
                    f"median +{m:.0f} µs [{min(adds):+.0f}..{max(adds):+.0f}] over {len(adds)} rounds"
                    + ("" if ok else f"; missed by {m - P50_GOAL_US:.0f} µs")
                    + "".join(
                        f"; {o} +{med([r['c1']['p50_us'] - direct[k]['c1']['p50_us'] for k, r in data.get(o, {}).items() if k in direct]):.0f} µs"
                        for o in others
                    )
                )
        out.append("")
    if scaling:
        out += scaling_table(scaling)
    print("\n".join(out))


def scaling_table(d):
    rows = load(d, "results.jsonl")
    data = by_label_round(rows)
    if not rows:
        return ["(no scaling results)"]
    tk = next((k for k in rows[0] if k.startswith("c") and k[1:].isdigit()), "c32")
    out = [
        f"### `--workers` scaling, gateway and load generator both on cores 0-1 ({len({r['round'] for r in rows})} rounds)\n",
        f"| target | req/s @{tk} | vs {OURS}-w1 same round | CPU µs / req | gateway CPU (cores busy) | processes |",
        "|---|---|---|---|---|---|",
    ]
    base = data.get(f"{OURS}-w1", {})
    order = [
        l
        for l in ("direct-2c", f"{OURS}-w1", f"{OURS}-w2", f"{OURS}-w4", f"{RUST}-2c", f"{VLLM}-2c")
        if l in data
    ]
    order += sorted(l for l in data if l not in order)
    for lbl in order:
        rs = data[lbl]
        ratios = [r[tk]["rps"] / base[k][tk]["rps"] for k, r in rs.items() if k in base]
        out.append(
            f"| {lbl} | {fmt([r[tk]['rps'] for r in rs.values()])} | {fmt(ratios, 2) + '×' if ratios else 'n/a'} | "
            f"{fmt([cpu_us(r) for r in rs.values()])} | {fmt([r.get('cpu_util') for r in rs.values()], 2)} | "
            f"{fmt([r.get('nprocs') for r in rs.values()])} |"
        )
    w2 = [
        r[tk]["rps"] / base[k][tk]["rps"]
        for k, r in data.get(f"{OURS}-w2", {}).items()
        if k in base
    ]
    if w2:
        m = statistics.median(w2)
        out.append(
            f"\n`--workers 2` / `--workers 1` throughput: {m:.2f}× [{min(w2):.2f}..{max(w2):.2f}] "
            f"(ideal on 2 cores with the load generator and mock competing: well under 2×)."
        )
    la = [float(r["loadavg_before"][0]) for r in rows]
    out.append(
        f"1-min loadavg at run start: median {statistics.median(la):.2f}, range {min(la):.2f}..{max(la):.2f} (2 cores)\n"
    )
    return out


if __name__ == "__main__":
    main()
