"""CPU cost per proxied request: smg HttpPool vs aiohttp.ClientSession (keep-alive).

The upstream is a raw asyncio + httptools server in a *separate process* (so
``time.process_time`` in this process counts only the client's CPU) answering every
request with the same 313-byte JSON body. For each client, loop and concurrency we
run ``--rounds`` rounds of ``--requests`` requests and report the median CPU µs per
request (user + system; "(user)" is the user-space part, the rest is mostly the
kernel's loopback TCP work for send/recv) and the median wall-clock requests/s.
Rounds alternate between the clients so that background load on a shared machine
does not favour either one.

    /tmp/v/bin/python benchmarks/upstream_client/run.py
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

import aiohttp
import httptools
import orjson
import uvloop

from smg.upstreams.http_client import HttpPool

BODY = orjson.dumps(
    {
        "id": "chatcmpl-0123456789ab",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
)
assert len(BODY) == 313, len(BODY)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"date: Thu, 01 Jan 2026 00:00:00 GMT\r\nserver: bench\r\n"
    b"content-length: %d\r\n\r\n" % len(BODY)
) + BODY
REQUEST_BODY = orjson.dumps(
    {"model": "meta-llama/Llama-3.1-8B-Instruct", "messages": [{"role": "user", "content": "Hi"}]}
)
PATH = "/v1/chat/completions"
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


# -- upstream (child process) ---------------------------------------------------------


class _ServerConn(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        self.transport.write(RESPONSE)


def _serve(port_q: Any, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_ServerConn, "127.0.0.1", 0, backlog=1024)
        port_q.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(main())


# -- clients --------------------------------------------------------------------------

Once = Callable[[], Awaitable[None]]


async def _smg_client(port: int) -> tuple[Once, Callable[[], Awaitable[None]]]:
    pool = HttpPool("127.0.0.1", port, max_connections=64)
    headers = [(k.encode(), v.encode()) for k, v in HEADERS.items()]

    async def once() -> None:
        resp = await pool.request("POST", PATH, headers, REQUEST_BODY, first_byte_timeout=10)
        body = await resp.read()
        assert resp.status == 200 and len(body) == 313

    return once, pool.close


async def _aiohttp_client(port: int) -> tuple[Once, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(sock_read=10),
    )
    url = f"http://127.0.0.1:{port}{PATH}"

    async def once() -> None:
        async with session.post(url, data=REQUEST_BODY, headers=HEADERS) as resp:
            body = await resp.read()
            assert resp.status == 200 and len(body) == 313

    return once, session.close


CLIENTS = {"smg HttpPool": _smg_client, "aiohttp": _aiohttp_client}


def _user() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


async def _round(once: Once, n: int, concurrency: int) -> tuple[float, float, float]:
    """(CPU µs, of it user-space µs, per request; requests/s) for ``n`` requests."""
    per_worker = n // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await once()

    total = per_worker * concurrency
    c0, u0, w0 = time.process_time(), _user(), time.perf_counter()
    if concurrency == 1:
        await worker()
    else:
        await asyncio.gather(*[worker() for _ in range(concurrency)])
    c1, u1, w1 = time.process_time(), _user(), time.perf_counter()
    return (c1 - c0) / total * 1e6, (u1 - u0) / total * 1e6, total / (w1 - w0)


async def _bench(
    port: int, n: int, rounds: int, conc: list[int]
) -> list[tuple[str, int, float, float, float]]:
    rows = []
    med = statistics.median
    for concurrency in conc:
        clients = {name: await make(port) for name, make in CLIENTS.items()}
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in clients}
        for once, _ in clients.values():
            await _round(once, min(n, 500), concurrency)  # warm up connections and caches
        # Interleaved rounds: background noise on a shared machine hits both clients alike.
        for _ in range(rounds):
            for name, (once, _) in clients.items():
                samples[name].append(await _round(once, n, concurrency))
        for name, (_, close) in clients.items():
            await close()
            cpu, user, rps = zip(*samples[name], strict=True)
            rows.append((name, concurrency, med(cpu), med(user), med(rps)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=4000, help="requests per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--concurrency", default="1,32", help="comma-separated")
    ap.add_argument("--loop", choices=["uvloop", "asyncio", "both"], default="both")
    ap.add_argument("--pin", action="store_true", help="pin client and upstream to two CPUs")
    args = ap.parse_args()
    conc = [int(c) for c in args.concurrency.split(",")]

    # Optionally client and upstream on different CPUs. Off by default: for sequential
    # ping-pong the cross-CPU wake-ups cost more kernel time than they save.
    cpus = sorted(os.sched_getaffinity(0))
    pin = len(cpus) >= 2 and args.pin
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    server = ctx.Process(target=_serve, args=(q, cpus[-1] if pin else None), daemon=True)
    server.start()
    if pin:
        os.sched_setaffinity(0, {cpus[0]})
    try:
        port = q.get(timeout=10)
        print(
            f"python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
            f"httptools {httptools.__version__}, uvloop {version('uvloop')}, "
            f"{os.cpu_count()} CPUs{' (client, upstream pinned apart)' if pin else ''}; "
            f"{args.rounds} interleaved rounds x {args.requests} requests, medians; "
            f"313-byte JSON response, upstream in a separate process"
        )
        loops = ["uvloop", "asyncio"] if args.loop == "both" else [args.loop]
        for loop_name in loops:
            factory = uvloop.new_event_loop if loop_name == "uvloop" else asyncio.new_event_loop
            with asyncio.Runner(loop_factory=factory) as runner:
                rows = runner.run(_bench(port, args.requests, args.rounds, conc))
            print(f"\nloop: {loop_name}")
            print(
                f"{'client':<14} {'concurrency':>11} {'CPU us/req':>11} {'(user)':>8} "
                f"{'req/s':>8} {'CPU vs aiohttp':>15}"
            )
            base = {c: cpu for name, c, cpu, _, _ in rows if name == "aiohttp"}
            for name, c, cpu, user, rps in rows:
                print(
                    f"{name:<14} {c:>11} {cpu:>11.1f} {user:>8.1f} {rps:>8.0f} "
                    f"{cpu / base[c]:>14.2f}x"
                )
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
