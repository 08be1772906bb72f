"""Runs one engine per port on a single event loop until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import functools
import signal
import sys

from smg.sim.app import App
from smg.sim.config import SimConfig
from smg.sim.engine import Engine
from smg.sim.http import HttpConnection


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but optional here
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(cfg: SimConfig) -> int:
    """Serve until told to stop; returns the process exit code."""
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_serve(cfg))
    finally:
        loop.close()


async def _serve(cfg: SimConfig) -> int:
    loop = asyncio.get_running_loop()
    servers: list[asyncio.Server] = []
    for port in cfg.ports:
        engine = Engine(cfg, port, loop)
        factory = functools.partial(HttpConnection, App(engine), loop)
        if engine.pd is not None:
            # Before the engine listens: a decode leg may pull as soon as it takes requests.
            try:
                transfer = await engine.pd.start(port)
            except OSError as exc:
                print(f"smg-sim: cannot open the KV transfer port: {exc}", file=sys.stderr)
                for s in servers:
                    s.close()
                return 1
            if transfer is not None:
                servers.append(transfer)
        try:
            server = await loop.create_server(
                factory, cfg.host, port, backlog=4096, reuse_address=True
            )
        except OSError as exc:
            print(f"smg-sim: cannot listen on {cfg.host}:{port}: {exc}", file=sys.stderr)
            for s in servers:
                s.close()
            return 1
        servers.append(server)
        # Port 0 asks the OS for a free port; report the one we got.
        engine.port = server.sockets[0].getsockname()[1]
        print(
            f"smg-sim: model {cfg.model!r} listening on http://{cfg.host}:{engine.port}",
            flush=True,
        )
        if engine.pd is not None:
            engine.pd.engine_port = engine.port
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    return 0
