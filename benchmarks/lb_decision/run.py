"""Decision-latency microbenchmark: p50/p99 of one ``pick()`` per LB policy and cluster size.

Each call is timed on its own with ``time.perf_counter_ns`` (the timer's own cost is
measured and printed, not subtracted). Every (scenario, size) cell runs ``--repeats``
independent rounds of ``--iterations`` picks; the table shows the median over rounds
of each round's p50 and p99. The garbage collector is off while timing.

    python benchmarks/lb_decision/run.py [--iterations 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smg.clusters.endpoint import Endpoint, EndpointState
from smg.clusters.lb import create_policy
from smg.clusters.lb.base import PickContext

SIZES = (8, 64, 512)


@dataclass(frozen=True)
class Scenario:
    """One row of the table: a policy, its config and what the requests look like."""

    label: str
    policy: str
    config: dict[str, Any]
    mixed_weights: bool
    with_key: bool


SCENARIOS = (
    Scenario("round_robin", "round_robin", {}, True, False),
    Scenario("random", "random", {"seed": 1}, True, False),
    Scenario("least_request (choice_count=2)", "least_request", {"seed": 1}, True, False),
    Scenario("consistent_hash, header key, equal weights", "consistent_hash", {}, False, True),
    Scenario("consistent_hash, header key, weights 1-4", "consistent_hash", {}, True, True),
    Scenario("consistent_hash, no key (least in-flight)", "consistent_hash", {}, True, False),
)


def make_endpoints(n: int, mixed_weights: bool, rng: random.Random) -> list[EndpointState]:
    """``n`` healthy endpoints with some load; weights 1-4 or all 1."""
    return [
        EndpointState(
            Endpoint.parse(f"http://10.0.{i // 250}.{i % 250}:8000"),
            weight=rng.randint(1, 4) if mixed_weights else 1,
            in_flight=rng.randint(0, 8),
        )
        for i in range(n)
    ]


def make_contexts(with_key: bool, count: int = 1024) -> list[PickContext]:
    """Request contexts to cycle through (distinct routing keys when ``with_key``)."""
    if not with_key:
        return [PickContext(headers={"content-type": "application/json"}, body={}, model="m")]
    return [
        PickContext(headers={"x-smg-routing-key": f"session-{i}"}, body={}, model="m")
        for i in range(count)
    ]


def percentile(sorted_ns: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list."""
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))]


def time_round(call: Callable[[int], object], iterations: int) -> tuple[int, int]:
    """p50 and p99 in ns of ``iterations`` single timed calls."""
    clock = time.perf_counter_ns
    samples = [0] * iterations
    for i in range(min(1000, iterations)):  # warm caches and memos
        call(i)
    gc.collect()
    gc.disable()
    try:
        for i in range(iterations):
            t0 = clock()
            call(i)
            samples[i] = clock() - t0
    finally:
        gc.enable()
    samples.sort()
    return percentile(samples, 0.50), percentile(samples, 0.99)


def measure(call: Callable[[int], object], iterations: int, repeats: int) -> tuple[float, float]:
    """Median over rounds of (p50, p99), in ns."""
    rounds = [time_round(call, iterations) for _ in range(repeats)]
    return statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)


def fmt_us(ns: float) -> str:
    """Nanoseconds as microseconds with sensible precision."""
    us = ns / 1000
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 100 else f"{us:.0f}"


def main() -> None:
    """Run every scenario at every size and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(42)
    timer_p50, timer_p99 = measure(lambda i: None, args.iterations, args.repeats)

    rows = []
    for sc in SCENARIOS:
        cells = []
        for n in SIZES:
            policy = create_policy(sc.policy, sc.config)
            eps = make_endpoints(n, sc.mixed_weights, rng)
            contexts = make_contexts(sc.with_key)
            mask = len(contexts) - 1 if len(contexts) > 1 else 0
            pick = policy.pick

            def call(
                i: int, pick: Any = pick, eps: Any = eps, c: Any = contexts, m: int = mask
            ) -> object:
                return pick(eps, c[i & m])

            p50, p99 = measure(call, args.iterations, args.repeats)
            cells.append(f"{fmt_us(p50)} / {fmt_us(p99)}")
            print(f"  {sc.label} n={n}: p50={p50:.0f}ns p99={p99:.0f}ns", file=sys.stderr)
        rows.append((sc.label, cells))

    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()}, {platform.system()}; "
        f"{args.iterations} picks x {args.repeats} rounds per cell, median of rounds."
    )
    print(
        f"Timer overhead (empty timed call): p50 {timer_p50:.0f} ns, p99 {timer_p99:.0f} ns "
        "(included in the numbers below)."
    )
    print()
    print("p50 / p99 of one `pick()`, in µs:")
    print()
    print("| policy | " + " | ".join(f"n={n}" for n in SIZES) + " |")
    print("|---|" + "---:|" * len(SIZES))
    for label, cells in rows:
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
