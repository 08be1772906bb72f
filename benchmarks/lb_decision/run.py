"""Decision-latency microbenchmark: p50/p99 of one ``pick()`` per LB policy and cluster size.

Each call is timed on its own with ``time.perf_counter_ns`` (the timer's own cost is
measured and printed, not subtracted). Every (scenario, size) cell runs ``--repeats``
independent rounds of ``--iterations`` picks; the table shows the median over rounds
of each round's p50 and p99. The garbage collector is off while timing.

    python benchmarks/lb_decision/run.py [--iterations 20000] [--repeats 5]

The cache_aware table (``--cache-aware-only`` runs just that one) times one decision on
realistic chat traffic (``conversations.py``) against a prefix tree first filled to its
bound (``--tree-size``, default the policy's 64 MiB characters): the routed text is
rendered from the messages, matched, and inserted inside the timed call, and the
insert pays for eviction inline (the background trim is not running), so every
decision is the worst case a request can see.
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
from smg.clusters.engine_metrics import EngineLoad
from smg.clusters.lb import create_policy
from smg.clusters.lb.base import PickContext
from smg.clusters.lb.cache_aware import DEFAULT_MAX_TREE_SIZE, CacheAware

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from conversations import Conversations

SIZES = (8, 64, 512)


@dataclass(frozen=True)
class Scenario:
    """One row of the table: a policy, its config and what the requests look like."""

    label: str
    policy: str
    config: dict[str, Any]
    mixed_weights: bool
    with_key: bool
    with_text: bool = False


SCENARIOS = (
    Scenario("round_robin", "round_robin", {}, True, False),
    Scenario("random", "random", {"seed": 1}, True, False),
    Scenario("least_request (choice_count=2)", "least_request", {"seed": 1}, True, False),
    Scenario("consistent_hash, header key, equal weights", "consistent_hash", {}, False, True),
    Scenario("consistent_hash, header key, weights 1-4", "consistent_hash", {}, True, True),
    Scenario("consistent_hash, no key (least in-flight)", "consistent_hash", {}, True, False),
    Scenario("power_of_two (engine load)", "power_of_two", {"seed": 1}, True, False),
    Scenario("least_load (engine load)", "least_load", {"seed": 1}, True, False),
    Scenario("prefix_hash, 2 KB prompts", "prefix_hash", {}, False, False, True),
    Scenario("manual, header key", "manual", {}, True, True),
)


def make_endpoints(n: int, mixed_weights: bool, rng: random.Random) -> list[EndpointState]:
    """``n`` healthy endpoints with some load (and an engine report); weights 1-4 or all 1."""
    return [
        EndpointState(
            Endpoint.parse(f"http://10.0.{i // 250}.{i % 250}:8000"),
            weight=rng.randint(1, 4) if mixed_weights else 1,
            in_flight=rng.randint(0, 8),
            # Only the engine-load policies read it.
            engine=EngineLoad(running=rng.randint(0, 8), waiting=rng.randint(0, 2)),
        )
        for i in range(n)
    ]


def make_contexts(with_key: bool, count: int = 1024, with_text: bool = False) -> list[PickContext]:
    """Request contexts to cycle through (distinct routing keys when ``with_key``)."""
    if with_text:
        head = "You are a helpful assistant. " + "Rules follow. " * 140
        return [
            PickContext(headers={}, body={}, model="m", text=f"<|system|>\nsession {i}: {head}")
            for i in range(count)
        ]
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


CACHE_AWARE_SCENARIOS = (
    ("cache_aware, balanced pool", {}),
    ("cache_aware, imbalanced pool (abs 4)", {"balance_abs_threshold": 4}),
)


def cache_aware_cell(
    n: int, config: dict[str, Any], tree_size: int, iterations: int, repeats: int
) -> tuple[tuple[float, float], tuple[float, float], str]:
    """Median over rounds of wall (p50, p99) and thread-CPU (p50, p99) in ns, and the tree."""
    rng = random.Random(n)
    eps = make_endpoints(n, False, rng)
    lb = create_policy("cache_aware", {"max_tree_size": tree_size, "seed": 1, **config})
    assert isinstance(lb, CacheAware)
    conv = Conversations(seed=n)
    pick = lb.pick
    # Fill the tree through the policy itself until it has been evicting for a while.
    filled = 0
    while lb.tree.size < tree_size * 0.99 or filled < 2000:
        pick(eps, PickContext(headers={}, body=conv.next_body(), model="m", kind="chat"))
        filled += 1
    wall = time.perf_counter_ns
    # CPU time of this thread: what the decision costs without the preemptions of a
    # shared machine (it still includes cache misses caused by other processes).
    cpu = time.thread_time_ns
    rounds = []
    for _ in range(repeats):
        bodies = [conv.next_body() for _ in range(iterations)]
        samples = [0] * iterations
        cpu_samples = [0] * iterations
        gc.collect()
        gc.disable()
        try:
            for i, body in enumerate(bodies):
                ctx = PickContext(headers={}, body=body, model="m", kind="chat")
                c0 = cpu()
                t0 = wall()
                pick(eps, ctx)
                samples[i] = wall() - t0
                cpu_samples[i] = cpu() - c0
        finally:
            gc.enable()
        samples.sort()
        cpu_samples.sort()
        rounds.append(
            (
                percentile(samples, 0.5),
                percentile(samples, 0.99),
                percentile(cpu_samples, 0.5),
                percentile(cpu_samples, 0.99),
            )
        )
    shape = (
        f"{filled} fill picks, {len(lb.tree)} nodes, {lb.tree.size / 2**20:.1f} MiB chars,"
        f" hit share {hit_share(lb, eps, conv):.0%}"
    )
    med = [statistics.median(r[k] for r in rounds) for k in range(4)]
    return (med[0], med[1]), (med[2], med[3]), shape


def hit_share(lb: CacheAware, eps: list[EndpointState], conv: Conversations) -> float:
    """Share of 500 further decisions that were cache hits (the traffic is not all misses)."""
    hits = 0
    for _ in range(500):
        lb.pick(eps, PickContext(headers={}, body=conv.next_body(), model="m", kind="chat"))
        hits += "hit=" in lb.reason()
    return hits / 500


def cache_aware_table(args: argparse.Namespace) -> None:
    """The cache_aware rows, printed as their own table."""
    iterations = min(args.iterations, 5000)
    print()
    print(
        f"cache_aware, tree filled to {args.tree_size / 2**20:g} MiB characters; "
        f"{iterations} decisions x {args.repeats} rounds per cell, median of rounds. "
        "p50 / p99 in µs, wall clock (thread CPU time in brackets):"
    )
    print()
    print("| policy | " + " | ".join(f"n={n}" for n in SIZES) + " |")
    print("|---|" + "---:|" * len(SIZES))
    for label, config in CACHE_AWARE_SCENARIOS:
        cells = []
        for n in SIZES:
            (p50, p99), (c50, c99), shape = cache_aware_cell(
                n, config, args.tree_size, iterations, args.repeats
            )
            cells.append(f"{fmt_us(p50)} / {fmt_us(p99)} ({fmt_us(c50)} / {fmt_us(c99)})")
            print(
                f"  {label} n={n}: wall p50={p50:.0f}ns p99={p99:.0f}ns,"
                f" cpu p50={c50:.0f}ns p99={c99:.0f}ns; {shape}",
                file=sys.stderr,
                flush=True,
            )
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    """Run every scenario at every size and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tree-size", type=int, default=DEFAULT_MAX_TREE_SIZE)
    parser.add_argument("--cache-aware-only", action="store_true")
    args = parser.parse_args()

    if args.cache_aware_only:
        cache_aware_table(args)
        return
    rng = random.Random(42)
    timer_p50, timer_p99 = measure(lambda i: None, args.iterations, args.repeats)

    rows = []
    for sc in SCENARIOS:
        cells = []
        for n in SIZES:
            policy = create_policy(sc.policy, sc.config)
            eps = make_endpoints(n, sc.mixed_weights, rng)
            contexts = make_contexts(sc.with_key, with_text=sc.with_text)
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
    cache_aware_table(args)


if __name__ == "__main__":
    main()
