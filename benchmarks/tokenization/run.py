"""CPU cost of the gateway's token path on the real Qwen3 tokenizer.

  python benchmarks/tokenization/run.py [--runs 7] [--iters 300]

Per request: chat-template render + tokenize (encode cache on/off). Per streamed token:
incremental detokenize + stop-string matching (OutputStream, one id per push).
Figures are CPU time (process_time), median of --runs runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from smg.tokenization import OutputStream, Tokenizer
from tests.support.tokenizer_assets import asset_dir

SYSTEM = (
    "You are a helpful assistant for a travel company. Answer concisely, cite prices in EUR, "
    "and ask a clarifying question when the request is ambiguous. Prefer public transport, "
    "mention opening hours and closing days, warn about crowds on weekends and national "
    "holidays, and keep each answer under 300 words unless the user asks for more detail. "
    "Never invent bookings, prices or availability; say when figures are estimates."
)
TURNS = [
    ("I want to visit Kyoto in April for five days. What should I plan for?", None),
    (
        "April is cherry-blossom season, so book early. Plan Fushimi Inari at dawn, Arashiyama, "
        "the Philosopher's Path, and a day trip to Nara. Budget about 150 EUR per day.",
        "assistant",
    ),
    ("Great. Which neighbourhood is best to stay in, and how do I get from Kansai airport?", None),
    (
        "Stay near Shijo-Karasuma or Gion for walkability. From Kansai airport take the Haruka "
        "limited express to Kyoto Station (about 75 minutes, ~25 EUR), then subway or taxi.",
        "assistant",
    ),
    ("Can you draft a day-by-day itinerary with rough costs? Include 日本語 phrases too.", None),
]
MESSAGES = [{"role": "system", "content": SYSTEM}] + [
    {"role": role or "user", "content": text} for text, role in TURNS
]
OUTPUT = (
    "Day 1 — Arrival: Haruka to Kyoto (25 EUR), check in near Gion, evening walk in Pontocho. "
    "Useful phrase: すみません (sumimasen, excuse me). Day 2 — Fushimi Inari at 6am (free), "
    "Tofuku-ji (6 EUR), lunch of kitsune udon (9 EUR). ありがとう (arigatou). 🌸 Day 3 — "
    "Arashiyama bamboo grove, Tenryu-ji (8 EUR), monkey park (5 EUR). Day 4 — Nara: deer park, "
    "Todai-ji (6 EUR), train 7 EUR each way. Day 5 — Philosopher's Path, Ginkaku-ji (5 EUR), "
    "Nishiki market snacks (20 EUR). Total excluding hotel: roughly 420 EUR. "
) * 3


def cpu_us(fn: Callable[[], object], iters: int) -> float:
    """CPU microseconds per call over `iters` calls."""
    t0 = time.process_time()
    for _ in range(iters):
        fn()
    return (time.process_time() - t0) / iters * 1e6


def median_of(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--iters", type=int, default=300)
    args = ap.parse_args()
    path = asset_dir("qwen3")
    cached = Tokenizer.from_pretrained(path, encode_cache_size=4096)
    uncached = Tokenizer.from_pretrained(path, encode_cache_size=0)
    prompt = cached.apply_chat_template(MESSAGES, add_generation_prompt=True)
    n_prompt = len(cached.encode(prompt))

    def request(tok: Tokenizer) -> Callable[[], object]:
        return lambda: tok.encode(tok.apply_chat_template(MESSAGES, add_generation_prompt=True))

    render = median_of(
        args.runs,
        lambda: cpu_us(
            lambda: cached.apply_chat_template(MESSAGES, add_generation_prompt=True), args.iters
        ),
    )
    enc_off = median_of(args.runs, lambda: cpu_us(lambda: uncached.encode(prompt), args.iters))
    req_on = median_of(args.runs, lambda: cpu_us(request(cached), args.iters))
    req_off = median_of(args.runs, lambda: cpu_us(request(uncached), args.iters))

    out_ids = cached.encode(OUTPUT)

    def stream_once(stops: list[str]) -> float:
        s = OutputStream(cached, stop=stops, eos_token_ids=cached.eos_token_ids)
        t0 = time.process_time()
        for tid in out_ids:
            s.push((tid,))
        s.finish()
        return (time.process_time() - t0) / len(out_ids) * 1e6

    def per_token(stops: list[str]) -> float:
        return statistics.mean(stream_once(stops) for _ in range(10))

    tok_nostop = median_of(args.runs, lambda: per_token([]))
    tok_stop = median_of(args.runs, lambda: per_token(["</answer>", "\n\nUser:", "STOP"]))
    info = cached.cache_info()
    print(f"tokenizer: Qwen3 (vocab {cached.vocab_size}); python {sys.version.split()[0]}")
    print(f"request: {len(MESSAGES)} messages, prompt {len(prompt)} chars / {n_prompt} tokens")
    print(f"median of {args.runs} runs x {args.iters} iterations, CPU time (process_time)")
    print(f"  template render only                 : {render:8.1f} us/request")
    print(f"  encode only, cache off               : {enc_off:8.1f} us/request")
    print(f"  render + tokenize, encode cache on   : {req_on:8.1f} us/request")
    print(f"  render + tokenize, encode cache off  : {req_off:8.1f} us/request")
    print(f"stream: {len(out_ids)} output tokens, one id per push")
    print(f"  detokenize, no stop strings          : {tok_nostop:8.2f} us/token")
    print(f"  detokenize + 3 stop strings          : {tok_stop:8.2f} us/token")
    print(f"encode cache: hits={info.hits} misses={info.misses}")


if __name__ == "__main__":
    main()
