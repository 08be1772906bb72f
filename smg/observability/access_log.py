"""The access log: one line per request, written without the logging module's per-record cost.

A ``logging`` call with a JSON formatter costs ~40 µs per line (record object, handler
lock, attribute walk, a write and a flush per line) — over a tenth of the gateway's CPU
per proxied request. Access lines are the one high-volume log, so they bypass it: a
request leaves one tuple of its figures (``Entry``, a fraction of a microsecond), and the
queued tuples become lines in the shape the configured formatter would give (orjson for
JSON, the text layout otherwise) when they are written to stderr, at most 100 ms later
(or after 256 lines, and at shutdown). Other logs keep going through ``logging``; only
the relative order of an access line and an unrelated log line within those 100 ms may
differ from the order of events.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import time
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import orjson

FLUSH_AFTER: Final = 0.1
FLUSH_LINES: Final = 256


class Entry(NamedTuple):
    """The figures of one access line, in line order (a plain tuple is built on the hot path)."""

    wall: float
    request_id: str
    listener: str
    route: str
    cluster: str
    endpoint: str
    lb_reason: str
    model: str | None
    method: str
    path: str
    status: int
    seconds: float
    ttft: float | None
    attempts: int
    stream: bool
    error_kind: str | None
    client_disconnected: bool
    tokens: tuple[int, int, int] | None
    """prompt, completion and cached tokens, when the answer reported usage."""


_MS: Final = tuple(f".{ms:03d}" for ms in range(1000))


def json_lines(entries: list[tuple[Any, ...]], stamp_of: Callable[[float], str]) -> bytes:
    """The JSON lines of ``entries`` (``Entry`` fields in order); ``stamp_of`` gives ``ts``.

    One loop over plain tuples with everything local: this is most of what an access
    line costs, paid once per request.
    """
    dumps = orjson.dumps
    out: list[bytes] = []
    for (
        wall,
        request_id,
        listener,
        route,
        cluster,
        endpoint,
        lb_reason,
        model,
        method,
        path,
        status,
        seconds,
        ttft,
        attempts,
        stream,
        error_kind,
        client_disconnected,
        tokens,
    ) in entries:
        doc: dict[str, Any] = {
            "ts": stamp_of(wall) + "Z",
            "level": "info",
            "logger": "smg.access",
            "request_id": request_id,
            "listener": listener,
            "route": route,
            "cluster": cluster,
            "endpoint": endpoint,
            "lb_reason": lb_reason,
            "model": model,
            "method": method,
            "path": path,
            "status": status,
            "latency_ms": round(seconds * 1000.0, 3),
            "ttft_ms": None if ttft is None else round(ttft * 1000.0, 3),
            "attempts": attempts,
            "retries": attempts - 1 if attempts else 0,
            "stream": stream,
            "error_kind": error_kind,
            "client_disconnected": client_disconnected,
        }
        if tokens is not None:
            doc["prompt_tokens"], doc["completion_tokens"], doc["cached_tokens"] = tokens
        try:
            out.append(dumps(doc))
        except TypeError:  # a value orjson does not know: its str() rather than no line
            out.append(dumps(doc, default=str))
    out.append(b"")
    return b"\n".join(out)


def text_lines(entries: list[tuple[Any, ...]], stamp_of: Callable[[float], str]) -> bytes:
    """The text lines of ``entries``, as the text formatter lays out other logs."""
    out: list[str] = []
    for t in entries:
        e = Entry._make(t)
        out.append(
            f"{stamp_of(e.wall)} INFO smg.access: {e.method} {e.path} {e.model} -> "
            f"{e.endpoint} {e.status} {e.seconds * 1000.0:.1f}ms\n"
        )
    return "".join(out).encode()


class AccessLog:
    """Queued access lines for one process, written to a file descriptor."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.json = False
        self._queue: list[tuple[Any, ...]] = []
        self._scheduled = False
        self._second = -1
        self._stamp = ""

    def configure(self, json: bool, fd: int = 2) -> None:
        """Use JSON lines (else the text layout of the other logs), written to ``fd``."""
        self.flush()
        self.json = json
        self.fd = fd
        self._second = -1  # the time layout changes with the mode

    def _stamp_of(self, wall: float) -> str:
        """``wall`` as the formatter writes times: ISO UTC (JSON) or local with a comma."""
        second = int(wall)
        if second != self._second:
            self._second = second
            if self.json:
                self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall))
            else:
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S,", time.localtime(wall))
        ms = _MS[int((wall - second) * 1000)]
        return self._stamp + ms if self.json else self._stamp + ms[1:]

    def write(self, entry: tuple[Any, ...]) -> None:
        """Queue one request's line: ``entry`` holds the fields of ``Entry`` in order."""
        queue = self._queue
        queue.append(entry)
        if len(queue) >= FLUSH_LINES:
            self.flush()
        elif not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True
            loop.call_later(FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        """Write every queued line now."""
        self._scheduled = False
        if not self._queue:
            return
        entries = self._queue
        self._queue = []
        lines = json_lines if self.json else text_lines
        data = memoryview(lines(entries, self._stamp_of))
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except OSError:  # stderr closed or full: an access line is not worth a crash
            pass


ACCESS_LOG: Final = AccessLog()
atexit.register(ACCESS_LOG.flush)
