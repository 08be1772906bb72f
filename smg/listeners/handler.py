"""The per-listener request handler: decode → filter chain → write, on one snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from smg.errors import GatewayError, InternalError, NotFound, ShuttingDown
from smg.filters.base import RequestContext
from smg.listeners.decode import decode_request
from smg.listeners.writer import error_response, uncancel, write_response
from smg.observability import access
from smg.protocol.dialects import dialect_of_path, match_ingress
from smg.protocol.request import KIND_BY_PATH

if TYPE_CHECKING:
    from smg.runtime.manager import RuntimeManager
    from smg.runtime.snapshot import ListenerRuntime, Snapshot

log = logging.getLogger("smg.listeners")

_HEALTH_PATHS = frozenset({"/health", "/health_generate", "/liveness", "/readiness"})


class ListenerHandler:
    """Serves one named listener; reads the current snapshot once per request."""

    def __init__(self, name: str, manager: RuntimeManager) -> None:
        self.name = name
        self.manager = manager
        self.stats = access.listener_stats(name)
        self._running: dict[asyncio.Task[Any], RequestContext] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    async def drain(self, grace: float) -> None:
        """Let running requests finish for up to ``grace`` s, then end them with an error."""
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        if not self._running:
            return
        log.warning("drain deadline: ending %d requests still running", len(self._running))
        tasks = list(self._running)
        for task, ctx in self._running.items():
            ctx.shutdown = True
            task.cancel()
        await asyncio.wait(tasks, timeout=2.0)

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        """aiohttp low-level handler entry point."""
        snap = self.manager.current
        lr = snap.listeners.get(self.name)
        if lr is None:
            return error_response({}, NotFound("This listener is being removed."))
        path = request.path
        kind = KIND_BY_PATH.get(path)
        ingress = None if kind is not None else match_ingress(path)
        if ingress is not None:
            kind = ingress.kind
        if kind is None or request.method != "POST":
            return self._local(request, snap, lr)
        snap.active += 1
        stats = self.stats
        stats.in_flight.inc()
        ctx: RequestContext | None = None
        try:
            try:
                req = await decode_request(request, kind, lr.config.max_payload_size, ingress)
            except GatewayError as err:
                stats.request("", "", err.status)
                stats.error(err.kind, err.blame)
                return error_response({}, err, ingress.dialect if ingress else "openai")
            ctx = RequestContext(req, snap, lr, request.remote)
            if snap.tracing is not None:
                ctx.trace = snap.tracing.begin(ctx, self.name)
            task = asyncio.current_task()
            assert task is not None
            self._running[task] = ctx
            self._idle.clear()
            try:
                return await self._proxy(request, ctx, lr)
            finally:
                del self._running[task]
                if not self._running:
                    self._idle.set()
        finally:
            if ctx is not None:
                lr.chain.finish(ctx)
                if ctx.trace is not None:
                    ctx.trace.end(ctx)
                access.record(ctx, stats, snap.config.logging.access_log)
            stats.in_flight.dec()
            snap.active -= 1
            if snap.retired and snap.active == 0:
                self.manager.snapshot_drained(snap)

    async def _proxy(
        self, request: web.BaseRequest, ctx: RequestContext, lr: ListenerRuntime
    ) -> web.StreamResponse:
        # The deadline is enforced where waiting happens (upstream timeouts are cut to
        # it, the admission queue, the stream writer): no Timeout object per request.
        ctx.deadline = ctx.started + lr.config.request_timeout
        try:
            resp = await lr.chain.run(ctx)
            # After this point the head may be out: failures become stream error events.
            return await write_response(request, ctx, resp)
        except GatewayError as err:
            ctx.error = err
            ctx.status = err.status
            return error_response(ctx.response_headers, err, ctx.request.dialect)
        except asyncio.CancelledError:
            if not ctx.shutdown:
                ctx.client_disconnected = True
                raise
            uncancel()
            serr = ShuttingDown("The gateway is shutting down; retry the request.")
            ctx.error = serr
            ctx.status = serr.status
            return error_response(ctx.response_headers, serr, ctx.request.dialect)
        except Exception:
            log.exception("internal error serving %s", request.path)
            ierr = InternalError("The gateway failed to serve this request.")
            ctx.error = ierr
            ctx.status = ierr.status
            return error_response(ctx.response_headers, ierr, ctx.request.dialect)

    def _local(
        self, request: web.BaseRequest, snap: Snapshot, lr: ListenerRuntime
    ) -> web.StreamResponse:
        """Requests answered by the gateway itself (models, health)."""
        path = request.path
        if request.method == "GET":
            if path in _HEALTH_PATHS:
                ok = self.manager.ready
                return web.Response(status=200 if ok else 503)
            if path == "/v1/models" or path.startswith("/v1/models/"):
                return self._models(snap, lr, path[len("/v1/models/") :] or None)
        dialect = dialect_of_path(path)
        if path in KIND_BY_PATH or dialect != "openai":
            err: GatewayError = NotFound(
                f"Method {request.method} is not allowed on {path}.",
                status=405,
                code="method_not_allowed",
            )
        else:
            err = NotFound(f"Unknown path {path}.")
        return error_response({}, err, dialect)

    def _models(self, snap: Snapshot, lr: ListenerRuntime, one: str | None) -> web.Response:
        declared = tuple(m.name for m in snap.config.models)
        owners = {m.name: m.owned_by for m in snap.config.models}
        created = int(snap.created)
        ids = lr.served_models(snap.clusters, declared)
        cards = [
            {"id": m, "object": "model", "created": created, "owned_by": owners.get(m, "smg")}
            for m in ids
        ]
        if one is not None:
            for c in cards:
                if c["id"] == one:
                    return web.Response(body=orjson.dumps(c), content_type="application/json")
            return error_response(
                {}, NotFound(f"The model '{one}' does not exist.", code="model_not_found")
            )
        body = orjson.dumps({"object": "list", "data": cards})
        return web.Response(body=body, content_type="application/json")
