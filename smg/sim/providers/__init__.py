"""Simulated cloud provider APIs for tests: ``smg sim --provider NAME``.

Each provider module has ``build_app(state) -> aiohttp.web.Application``; ``PROVIDERS``
maps the ``--provider`` names to them (``module:function``, imported on use).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import random
from collections.abc import Callable
from typing import Final

from aiohttp import web

from smg.sim.providers.common import SimState, run_app

PROVIDERS: Final[dict[str, str]] = {
    "openai": "smg.sim.providers.openai:build_app",
    "gemini": "smg.sim.providers.gemini:build_app",
    "anthropic": "smg.sim.providers.anthropic:build_app",
}


def builder(name: str) -> Callable[[SimState], web.Application]:
    """The app factory of provider ``name``."""
    module, _, attr = PROVIDERS[name].partition(":")
    factory: Callable[[SimState], web.Application] = getattr(importlib.import_module(module), attr)
    return factory


def run(args: argparse.Namespace) -> int:
    """Serve the simulated provider named by ``--provider`` until SIGINT/SIGTERM."""
    name = args.provider
    if name not in PROVIDERS:
        print(f"smg-sim: unknown provider {name!r} (known: {', '.join(PROVIDERS)})", flush=True)
        return 2
    state = SimState(
        models=tuple(m.strip() for m in args.model.split(",") if m.strip()),
        api_key=args.api_key,
        seed=args.seed,
        fail_rate=args.fail_rate,
        fail_status=args.fail_status,
        hang_rate=args.hang_rate,
        rng=random.Random(args.seed),
    )
    app = builder(name)(state)
    port = 8000 if args.port is None else args.port
    return asyncio.run(run_app(app, args.host, port, f"{name} provider {list(state.models)}"))
