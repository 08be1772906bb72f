"""Runs the gateway in this process, or in N worker processes sharing the ports."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import platform
import shutil
import signal
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from smg.admin.server import start_admin
from smg.config.model import Config
from smg.observability import fast, metrics
from smg.observability.access_log import ACCESS_LOG
from smg.observability.workers import serve_worker_metrics
from smg.runtime.manager import RuntimeManager
from smg.runtime.state_metrics import state_rows

log = logging.getLogger("smg.runtime")


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(
    config: Config,
    path: Path | None,
    worker_index: int,
    workers: int,
    metrics_dir: Path | None = None,
) -> int:
    """Start, serve until SIGTERM/SIGINT, drain, exit 0."""
    manager = RuntimeManager(config, path, reuse_port=workers > 1)
    if config.server.metrics:
        metrics.register_state_source(lambda: state_rows(lambda: manager.current))
    metrics.BUILD_INFO.labels(version("smg"), platform.python_version()).set(1)
    await manager.start()
    # Startup objects (config, schemas, modules) never die: keep them out of every GC
    # pass, and collect the young generation less often (requests allocate in bursts).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    admin = None
    if config.admin is not None and worker_index == 0:
        admin = await start_admin(manager, config.admin.address, metrics_dir, workers)
        log.info("admin listener on %s", config.admin.address)
    elif metrics_dir is not None:
        admin = await serve_worker_metrics(metrics_dir, worker_index)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(
        signal.SIGHUP, lambda: manager.tasks.spawn("reload-sighup", manager.reload("sighup"))
    )
    print(f"smg ready (worker {worker_index}, pid {os.getpid()})", file=sys.stderr, flush=True)
    await stop.wait()
    grace = manager.current.config.server.shutdown_grace_period
    log.info("draining (grace %.1fs)", grace)
    await manager.shutdown(grace)
    ACCESS_LOG.flush()
    if admin is not None:
        await admin.cleanup()
    return 0


def run(config: Config, path: Path | None) -> int:
    """Run with ``server.workers`` processes (fork, SO_REUSEPORT); returns an exit code."""
    workers = config.server.workers
    fast.set_enabled(config.server.metrics)
    # Per-process limits (rate_limit) divide configured rates by this.
    os.environ["SMG_WORKERS"] = str(workers)
    if workers <= 1:
        _install_uvloop()
        return asyncio.run(serve(config, path, 0, 1))
    metrics_dir = Path(tempfile.mkdtemp(prefix="smg-metrics-"))
    children: list[int] = []
    for i in range(workers):
        pid = os.fork()
        if pid == 0:
            _install_uvloop()
            code = asyncio.run(serve(config, path, i, workers, metrics_dir))
            os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for c in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(c, signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    code = 0
    for c in children:
        _, status = os.waitpid(c, 0)
        code = code or os.waitstatus_to_exitcode(status)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return code
