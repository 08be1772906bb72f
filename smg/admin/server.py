"""The admin listener: live/ready, metrics, effective config, clusters, reload."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from smg.config.redact import redact
from smg.listeners.server import split_address
from smg.observability.workers import merged_exposition
from smg.runtime.manager import RuntimeManager

MANAGER: web.AppKey[RuntimeManager] = web.AppKey("manager")
WORKERS: web.AppKey[tuple[Path, int] | None] = web.AppKey("workers")
"""The metrics directory and worker count when several processes serve (else None)."""


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(doc, option=orjson.OPT_INDENT_2),
        status=status,
        content_type="application/json",
    )


async def live(request: web.Request) -> web.Response:
    """The process is up."""
    return _json({"status": "live"})


async def ready(request: web.Request) -> web.Response:
    """The gateway takes traffic (false while starting and draining)."""
    ok = request.app[MANAGER].ready
    return _json({"ready": ok}, 200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition (every worker process's, merged, when there are several)."""
    merge = request.app[WORKERS]
    if merge is None:
        body = generate_latest(REGISTRY)
    else:
        body = await merged_exposition(*merge)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def config(request: web.Request) -> web.Response:
    """Effective config (secrets redacted), version and the last reload's outcome."""
    m = request.app[MANAGER]
    snap = m.current
    lr = m.last_reload
    return _json(
        {
            "version": snap.version,
            "source": snap.config.source,
            "loaded_at": snap.created,
            "last_reload": {
                "result": lr.result,
                "trigger": lr.trigger,
                "version": lr.version,
                "errors": lr.errors,
                "at": lr.at,
            },
            "config": redact(snap.config.raw, snap.config.secret_paths),
        }
    )


async def clusters(request: web.Request) -> web.Response:
    """Endpoints with health, circuit state, in-flight count, weight and pool sizes."""
    snap = request.app[MANAGER].current
    out = []
    for c in snap.clusters.values():
        pools = c.upstream.pool_stats()
        out.append(
            {
                "name": c.name,
                "protocol": c.config.protocol,
                "lb_policy": c.config.lb_policy.type,
                "endpoints": [
                    {
                        "url": st.url,
                        "healthy": st.healthy,
                        "available": st.available,
                        **c.endpoint_status(st),
                        "in_flight": st.in_flight,
                        "weight": st.weight,
                        "total_requests": st.total_requests,
                        "total_failures": st.total_failures,
                        "models": list(st.models),
                        "pool": pools.get(st.url, {"size": 0, "idle": 0, "in_use": 0}),
                    }
                    for st in c.endpoints
                ],
            }
        )
    return _json({"version": snap.version, "clusters": out})


async def reload(request: web.Request) -> web.Response:
    """Reload the config file now; 200 if applied or unchanged, 400 if rejected."""
    res = await request.app[MANAGER].reload("admin")
    status = 200 if res.result in ("ok", "unchanged") else 400
    return _json({"result": res.result, "version": res.version, "errors": res.errors}, status)


async def runtime(request: web.Request) -> web.Response:
    """Process internals for leak checks: tasks, open file descriptors, requests in flight."""
    m = request.app[MANAGER]
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = -1
    return _json(
        {
            "pid": os.getpid(),
            "tasks": len(asyncio.all_tasks()),
            "background_tasks": len(m.tasks),
            "open_fds": fds,
            "active_requests": m.current.active,
            "retired_snapshots": m.retired_count,
        }
    )


def admin_app(
    manager: RuntimeManager, metrics_dir: Path | None = None, workers: int = 1
) -> web.Application:
    """The admin aiohttp application."""
    app = web.Application()
    app[MANAGER] = manager
    app[WORKERS] = (metrics_dir, workers) if metrics_dir is not None and workers > 1 else None
    app.router.add_get("/live", live)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/config", config)
    app.router.add_get("/clusters", clusters)
    app.router.add_post("/reload", reload)
    app.router.add_get("/debug/runtime", runtime)
    return app


async def start_admin(
    manager: RuntimeManager, address: str, metrics_dir: Path | None = None, workers: int = 1
) -> web.AppRunner:
    """Bind the admin listener."""
    runner = web.AppRunner(admin_app(manager, metrics_dir, workers), access_log=None)
    await runner.setup()
    host, port = split_address(address)
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner
