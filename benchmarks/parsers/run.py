"""CPU cost per streamed token of each tool-call and reasoning parser (pure Python, no I/O).

Each realistic output is cut into ~4-character deltas (a typical token) and fed one
at a time to a fresh parser, then ``finish()``; the figure is process CPU time for the
whole stream divided by the number of deltas, the median over ``--repeats`` rounds of
``--iterations`` streams each. A plain-prose row shows the content fast path.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from samples import ANSWER, REASONING_OUTPUTS, TOOL_OUTPUTS, TOOLS

from smg.parsers import create_output_parser
from smg.parsers.reasoning import create_reasoning_parser
from smg.parsers.tool import create_tool_parser

Feeder = Callable[[], tuple[Callable[[str], object], Callable[[], object]]]


def deltas(text: str, size: int = 4) -> list[str]:
    """``text`` in consecutive ``size``-character pieces."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def measure(make: Feeder, pieces: list[str], iterations: int, repeats: int) -> float:
    """Median over rounds of CPU µs per delta."""
    rounds = []
    for _ in range(repeats):
        gc.disable()
        start = time.process_time_ns()
        for _ in range(iterations):
            feed, finish = make()
            for p in pieces:
                feed(p)
            finish()
        elapsed = time.process_time_ns() - start
        gc.enable()
        rounds.append(elapsed / 1000 / iterations / len(pieces))
    return statistics.median(rounds)


def tool_feeder(name: str) -> Feeder:
    """Fresh tool parser per stream."""

    def make() -> tuple[Callable[[str], object], Callable[[], object]]:
        p = create_tool_parser(name, tools=TOOLS, id_seed="bench")
        assert p is not None
        return p.feed, p.finish

    return make


def reasoning_feeder(name: str) -> Feeder:
    """Fresh reasoning parser per stream."""

    def make() -> tuple[Callable[[str], object], Callable[[], object]]:
        p = create_reasoning_parser(name)
        assert p is not None
        return p.feed, p.finish

    return make


def pipeline_feeder(model: str) -> Feeder:
    """Fresh reasoning + tool pipeline per stream."""

    def make() -> tuple[Callable[[str], object], Callable[[], object]]:
        p = create_output_parser(model, tools=TOOLS, id_seed="bench")
        return p.feed, p.finish

    return make


def main() -> None:
    """Print one table row per parser."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {args.iterations} streams x {args.repeats} rounds")
    print(f"{'kind':<10} {'parser':<14} {'chars':>6} {'deltas':>6} {'us/delta':>9} {'calls':>5}")
    rows: list[tuple[str, str, str, Feeder]] = []
    for name, text in TOOL_OUTPUTS.items():
        rows.append(("tool", name, text, tool_feeder(name)))
    rows.append(("tool", "hermes/prose", ANSWER * 2, tool_feeder("hermes")))
    for name, text in REASONING_OUTPUTS.items():
        rows.append(("reasoning", name, text, reasoning_feeder(name)))
    qwen = REASONING_OUTPUTS["qwen3"].replace(
        "</think>\n\n", "</think>\n\n" + TOOL_OUTPUTS["hermes"] + "\n"
    )
    rows.append(("pipeline", "qwen3+hermes", qwen, pipeline_feeder("Qwen/Qwen3-8B")))
    oss = REASONING_OUTPUTS["harmony"].split("<|start|>")[0] + TOOL_OUTPUTS["harmony"]
    rows.append(("pipeline", "gpt-oss", oss, pipeline_feeder("openai/gpt-oss-20b")))
    for kind, name, text, make in rows:
        pieces = deltas(text)
        feed, finish = make()
        n_calls = sum(
            len(getattr(r, "calls", []) or getattr(r, "tool_calls", []))
            for r in [*(feed(p) for p in pieces), finish()]
        )
        us = measure(make, pieces, args.iterations, args.repeats)
        print(f"{kind:<10} {name:<14} {len(text):>6} {len(pieces):>6} {us:>9.2f} {n_calls:>5}")


if __name__ == "__main__":
    main()
