"""Owns the live snapshot: single-flight reload, warm, atomic swap, drain, shutdown.

Reload follows docs/architecture.md §Hot reload: read and hash (unchanged → nothing);
parse and validate everything (any error → old snapshot stays, errors logged once and
kept for the admin API); build, reusing unchanged clusters and endpoint state; warm new
clusters and bind new listener addresses (a failure → old snapshot stays); swap with one
assignment; stop listeners whose address vanished; close what the old snapshot alone
used once its in-flight requests finished.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from smg.clusters.cluster import Cluster
from smg.config.errors import ConfigError
from smg.config.loader import load_config_text
from smg.config.model import Config
from smg.filters.base import Filter
from smg.listeners.handler import ListenerHandler
from smg.listeners.server import ListenerServer
from smg.observability import metrics
from smg.observability.tracing import Tracing
from smg.openai_grpc.resources import preload
from smg.runtime.builder import build_snapshot
from smg.runtime.checks import config_issues
from smg.runtime.snapshot import Snapshot
from smg.runtime.tasks import TaskSet

log = logging.getLogger("smg.runtime")

WARM_TIMEOUT = 2.0


@dataclass(slots=True)
class ReloadResult:
    """The outcome of one reload attempt, as shown on the admin API."""

    result: str  # ok | unchanged | rejected | failed
    trigger: str
    version: str | None
    errors: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.time)


def load_and_check(path: Path, data: bytes | None = None) -> Config:
    """Load, validate and check filter configs; raise ConfigError with every issue."""
    text = (data if data is not None else path.read_bytes()).decode("utf-8", "replace")
    cfg = load_config_text(text, str(path))
    issues = config_issues(cfg)
    if issues:
        raise ConfigError(issues)
    return cfg


class RuntimeManager:
    """The gateway's live state in one process."""

    def __init__(self, config: Config, path: Path | None = None, reuse_port: bool = False):
        self.path = path
        self.reuse_port = reuse_port
        self.tasks = TaskSet()
        self.ready = False
        self.current: Snapshot = build_snapshot(config, None)[0]
        self.last_reload = ReloadResult("ok", "startup", config.version_hash)
        self._servers: dict[tuple[str, str], ListenerServer] = {}
        self._retired: list[Snapshot] = []
        self._closed: weakref.WeakSet[Cluster | Filter | Tracing] = weakref.WeakSet()
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._file_hash = hashlib.sha256(path.read_bytes()).hexdigest() if path else None

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Warm clusters, bind listeners, start the file watcher."""
        await self._warm(list(self.current.clusters.values()))
        for lc in self.current.config.listeners:
            srv = ListenerServer(
                lc.name, lc.address, ListenerHandler(lc.name, self), self.reuse_port
            )
            await srv.start()
            self._servers[srv.key] = srv
        for cluster in self.current.clusters.values():
            cluster.start(self.tasks)
        self._preload_tokenizers(self.current.config)
        metrics.set_config_version(self.current.version)
        if self.path is not None and self.current.config.server.watch_config:
            self.tasks.spawn("config-watcher", self._watch())
        self.ready = True

    async def shutdown(self, grace: float) -> None:
        """Not ready; stop accepting; drain in-flight up to ``grace``; close everything."""
        self.ready = False
        self._stop.set()
        servers = list(self._servers.values())
        for s in servers:
            s.stop_accepting()
        await asyncio.gather(*(s.close(grace) for s in servers))
        self._servers.clear()
        await self.tasks.close()
        snaps = [self.current, *self._retired]
        for snap in snaps:
            for c in snap.clusters.values():
                if c not in self._closed:
                    self._closed.add(c)
                    await c.close()
            for f in snap.filters.values():
                if f not in self._closed:
                    self._closed.add(f)
                    await f.close()
            if snap.tracing is not None and snap.tracing not in self._closed:
                self._closed.add(snap.tracing)  # last: flushes the spans of drained requests
                await snap.tracing.close()

    # ---- reload ----------------------------------------------------------------------

    async def reload(self, trigger: str) -> ReloadResult:
        """Reload the config file; single-flight (concurrent calls wait their turn)."""
        async with self._lock:
            result = await self._reload(trigger)
        self.last_reload = result if result.result != "unchanged" else self.last_reload
        metrics.reload_attempted(result.result)
        if result.result == "ok":
            metrics.set_config_version(self.current.version)
        return result

    async def _reload(self, trigger: str) -> ReloadResult:
        if self.path is None:
            return ReloadResult("unchanged", trigger, self.current.version)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            return self._rejected(trigger, [f"{self.path}: cannot read: {exc.strerror}"])
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._file_hash:
            return ReloadResult("unchanged", trigger, self.current.version)
        try:
            cfg = load_and_check(self.path, data)
        except ConfigError as exc:
            self._file_hash = digest  # log a bad file once, not on every event
            return self._rejected(trigger, [str(i) for i in exc.issues])
        try:
            snap, created = build_snapshot(cfg, self.current)
        except Exception as exc:
            log.exception("building the new config failed")
            return self._failed(trigger, cfg, f"build failed: {exc}")
        await self._warm(created)
        started, err = await self._bind_new(cfg)
        if err is not None:
            for s in started:
                await s.close(0)
            return self._failed(trigger, cfg, err)
        self._file_hash = digest
        self._swap(snap, started)
        for cluster in created:  # live now: health checks and breakers switch over
            cluster.start(self.tasks)
        self._preload_tokenizers(cfg)
        log.info(
            "config reloaded (%s): version %s",
            trigger,
            cfg.version_hash,
            extra={"event": "config_reloaded", "trigger": trigger, "version": cfg.version_hash},
        )
        return ReloadResult("ok", trigger, cfg.version_hash)

    def _preload_tokenizers(self, cfg: Config) -> None:
        """Load gRPC-mode tokenizers in the background: the swap never waits for them."""
        if any(m.tokenizer for m in cfg.models):
            self.tasks.spawn("tokenizer-preload", preload(cfg.models))

    def _rejected(self, trigger: str, errors: list[str]) -> ReloadResult:
        log.error(
            "config rejected (%s); keeping version %s:\n  %s",
            trigger,
            self.current.version,
            "\n  ".join(errors),
            extra={"event": "config_rejected", "trigger": trigger, "errors": errors},
        )
        return ReloadResult("rejected", trigger, self.current.version, errors)

    def _failed(self, trigger: str, cfg: Config, error: str) -> ReloadResult:
        log.error(
            "config %s could not be applied (%s): %s",
            cfg.version_hash,
            trigger,
            error,
            extra={"event": "config_failed", "trigger": trigger, "errors": [error]},
        )
        return ReloadResult("failed", trigger, self.current.version, [error])

    async def _bind_new(self, cfg: Config) -> tuple[list[ListenerServer], str | None]:
        started: list[ListenerServer] = []
        wanted = {(lc.name, lc.address) for lc in cfg.listeners}
        vacated = {k[1] for k in self._servers if k not in wanted}
        for lc in cfg.listeners:
            if (lc.name, lc.address) in self._servers:
                continue
            srv = ListenerServer(
                lc.name, lc.address, ListenerHandler(lc.name, self), self.reuse_port
            )
            if lc.address in vacated:  # same address, renamed listener: free it first
                for key, old in list(self._servers.items()):
                    if key[1] == lc.address:
                        old.stop_accepting()
            try:
                await srv.start()
            except OSError as exc:
                return started, f"listener {lc.name}: cannot bind {lc.address}: {exc.strerror}"
            started.append(srv)
        return started, None

    def _swap(self, snap: Snapshot, started: list[ListenerServer]) -> None:
        old = self.current
        self.current = snap  # the one reference assignment that switches traffic
        for s in started:
            self._servers[s.key] = s
        wanted = {(lc.name, lc.address) for lc in snap.config.listeners}
        for key in [k for k in self._servers if k not in wanted]:
            srv = self._servers.pop(key)
            srv.stop_accepting()
            grace = snap.config.server.shutdown_grace_period
            self.tasks.spawn(f"drain-listener-{key[0]}", srv.close(grace))
        old.retired = True
        self._retired.append(old)
        self._collect()

    @property
    def retired_count(self) -> int:
        """Retired snapshots still serving requests."""
        return len(self._retired)

    def snapshot_drained(self, snap: Snapshot) -> None:
        """A retired snapshot's last request finished: close what nothing uses any more."""
        self._collect()

    def _collect(self) -> None:
        live = [self.current, *(s for s in self._retired if s.active > 0)]
        dead = [s for s in self._retired if s.active == 0]
        if not dead:
            return
        used = {id(c) for s in live for c in s.clusters.values()}
        used |= {id(f) for s in live for f in s.filters.values()}
        used |= {id(s.tracing) for s in live}
        self._retired = [s for s in self._retired if s.active > 0]
        for s in dead:
            parts: list[Cluster | Filter | Tracing] = [*s.clusters.values(), *s.filters.values()]
            if s.tracing is not None:
                parts.append(s.tracing)
            for part in parts:
                if id(part) not in used and part not in self._closed:
                    self._closed.add(part)
                    self.tasks.spawn(f"close-{type(part).__name__}", part.close())

    async def _warm(self, clusters: list[Cluster]) -> None:
        todo = [c.warm(WARM_TIMEOUT) for c in clusters]
        if todo:
            await asyncio.gather(*todo)

    async def _watch(self) -> None:
        from smg.config.watcher import watch_file

        assert self.path is not None
        async for _ in watch_file(self.path, self._stop):
            await self.reload("file")
