#!/usr/bin/env python3
"""Same-round ratios of ours-obs (metrics + access log) to ours-bare.  Stdlib only.

  compare.py RESULTS_DIR   -> markdown on stdout
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

ON, OFF = "ours-obs", "ours-bare"
LIMIT = 1.15


def rounds(path: Path) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if "error" not in r:
                    out.setdefault(r["label"], {})[r["round"]] = r
    return out


def cpu_us(r: dict[str, Any]) -> float | None:
    v = r.get("cpu_s_per_10k")
    return None if v is None else v * 100.0


def row(name: str, table: dict[str, dict[int, dict[str, Any]]], key: Any) -> str:
    on, off = table.get(ON, {}), table.get(OFF, {})
    pairs = [(key(on[k]), key(off[k])) for k in sorted(on) if k in off]
    pairs = [(a, b) for a, b in pairs if a is not None and b]
    if not pairs:
        return f"| {name} | n/a | n/a | n/a | n/a |"
    ratios = [a / b for a, b in pairs]
    med = statistics.median(ratios)
    verdict = "within" if med <= LIMIT else "OVER"
    return (
        f"| {name} | {statistics.median(a for a, _ in pairs):.0f} | "
        f"{statistics.median(b for _, b in pairs):.0f} | {med:.3f} "
        f"[{min(ratios):.3f}..{max(ratios):.3f}] ({len(ratios)} rounds) | {verdict} 1.15 |"
    )


def main() -> None:
    res = Path(sys.argv[1])
    plain = rounds(res / "results.jsonl")
    sse = rounds(res / "results_sse.jsonl")
    print("| measure | metrics+log on | off | on/off (median [range]) | limit |")
    print("|---|---|---|---|---|")
    print(row("CPU µs / request, non-streaming", plain, cpu_us))
    print(row("CPU µs / request, streaming (SSE)", sse, cpu_us))
    print(row("1 / (req/s @c32), µs", plain, lambda r: 1e6 / r["c32"]["rps"]))


if __name__ == "__main__":
    main()
