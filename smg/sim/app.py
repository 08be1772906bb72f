"""Routes one engine's requests to their handlers; applies slow start and error mapping."""

from __future__ import annotations

import logging
from collections.abc import Callable

from smg.sim import embeddings_api, metrics, openai_api, sglang_api
from smg.sim.engine import Engine
from smg.sim.http import PROMETHEUS, TEXT, HttpConnection, Request
from smg.sim.params import BadRequest, error_body
from smg.sim.runner import Process, Runner

log = logging.getLogger("smg.sim")

Handler = Callable[[Engine, Request, HttpConnection], Process | None]


def _health(engine: Engine, req: Request, conn: HttpConnection) -> None:
    conn.send(200, b"", TEXT)


def _metrics(engine: Engine, req: Request, conn: HttpConnection) -> None:
    conn.send(200, metrics.render_metrics(engine), PROMETHEUS)


def _stats(engine: Engine, req: Request, conn: HttpConnection) -> None:
    conn.send(200, metrics.stats_json(engine))


def _reset(engine: Engine, req: Request, conn: HttpConnection) -> None:
    engine.reset()
    conn.send(200, b"{}")


def _flush_cache(engine: Engine, req: Request, conn: HttpConnection) -> None:
    engine.cache.clear()
    conn.send(200, b"")


ROUTES: dict[str, dict[str, Handler]] = {
    "/v1/chat/completions": {"POST": openai_api.chat},
    "/v1/completions": {"POST": openai_api.completions},
    "/v1/embeddings": {"POST": embeddings_api.embeddings},
    "/v1/models": {"GET": openai_api.models},
    "/generate": {"POST": sglang_api.generate},
    "/get_model_info": {"GET": sglang_api.model_info},
    "/get_server_info": {"GET": sglang_api.server_info},
    "/health": {"GET": _health},
    "/metrics": {"GET": _metrics},
    "/flush_cache": {"POST": _flush_cache},
    "/reset_prefix_cache": {"POST": _flush_cache},
    "/sim/stats": {"GET": _stats},
    "/sim/reset": {"POST": _reset},
}

# Answered even while the engine is still "starting".
_ALWAYS_UP = frozenset({"/metrics", "/sim/stats", "/sim/reset"})
# Model traffic, as opposed to probes and scrapes: counted in total_requests.
_INFERENCE = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/generate"})
# Not counted as traffic, so that observing the engine does not change what is observed.
_UNCOUNTED = frozenset({"/sim/stats", "/sim/reset"})


class App:
    """The request dispatcher of one engine (one port)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def dispatch(self, req: Request, conn: HttpConnection) -> None:
        """Answer ``req`` now, or start the process that will."""
        engine = self.engine
        path = req.path
        methods = ROUTES.get(path)
        if path not in _UNCOUNTED:
            # Unknown paths share one key, so that scanners cannot grow the table.
            key = path if methods is not None else "<unknown>"
            by_path = engine.requests_by_path
            by_path[key] = by_path.get(key, 0) + 1
            if path in _INFERENCE:
                engine.total_requests += 1
                engine.last_request_headers = req
        if methods is None:
            conn.send(404, error_body(404, f"Not found: {path}", code=404))
            return
        handler = methods.get(req.method)
        if handler is None:
            conn.send(405, error_body(405, f"Method {req.method} not allowed on {path}", code=405))
            return
        if path not in _ALWAYS_UP and engine.starting():
            engine.rejected_starting += 1
            if path == "/health":
                conn.send(503, b"", TEXT)
            else:
                conn.send(503, error_body(503, "engine is starting", code=503))
            return
        try:
            proc = handler(engine, req, conn)
        except BadRequest as exc:
            engine.bad_requests += 1
            conn.send(400, error_body(400, exc.message, param=exc.param, code=exc.code))
            return
        except Exception as exc:
            self._failed(conn, exc)
            return
        if proc is None:
            return
        # Run the process by hand up to its first wait: with zero latencies it
        # answers right here, and no Runner is ever needed.
        try:
            first = next(proc)
        except StopIteration:
            return
        except Exception as exc:
            self._failed(conn, exc)
            return
        runner = Runner(engine.loop, proc, lambda exc: self._failed(conn, exc))
        conn.runner = runner
        runner.start(first)

    def _failed(self, conn: HttpConnection, exc: BaseException) -> None:
        log.error("request process failed", exc_info=exc)
        if conn.streaming:
            conn.abort()
        else:
            conn.send(500, error_body(500, f"simulator error: {exc!r}", code=500))
