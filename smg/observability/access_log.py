"""The access log: one line per request, written without the logging module's per-record cost.

A ``logging`` call with a JSON formatter costs ~40 µs per line (record object, handler
lock, attribute walk, a write and a flush per line) — over a tenth of the gateway's CPU
per proxied request. Access lines are the one high-volume log, so they bypass it: a
request leaves one tuple of its figures (``Entry``, a fraction of a microsecond), and the
queued tuples become lines in the shape the configured formatter would give (JSON from a
bytes template, the text layout otherwise) when they are written to stderr, at most 100 ms later
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
    """The figures of one access line (the hot path builds a plain tuple in this order)."""

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
    tokens: tuple[int, int, int, int] | None
    """prompt, completion, cached and reasoning tokens, when the answer reported usage."""


_MS: Final = tuple(b".%03d" % ms for ms in range(1000))
_MS_TEXT: Final = tuple(f"{ms:03d}" for ms in range(1000))
_BOOL: Final = (b"false", b"true")

# One access line, the values in as JSON (strings and null pre-encoded, numbers by the
# format): a bytes template costs half of building a dict and serialising it. The seven
# values that repeat from request to request come as one pre-encoded piece (``_names_text``).
_JSON_LINE: Final = (
    b'{"ts":"%sZ","level":"info","logger":"smg.access","request_id":%s,%s"lb_reason":%s,'
    b'"status":%d,"latency_ms":%.3f,"ttft_ms":%s,"attempts":%d,"retries":%d,'
    b'"stream":%s,"error_kind":%s,"client_disconnected":%s%s}'
)
_NAMES: Final = (b"listener", b"route", b"cluster", b"endpoint", b"model", b"method", b"path")
_TOKENS: Final = (
    b',"prompt_tokens":%d,"completion_tokens":%d,"cached_tokens":%d,"reasoning_tokens":%d'
)
_MAX_KEPT = 4096


class _Kept(dict[Any, bytes]):
    """JSON text of values that repeat across lines, made by ``encode`` once and kept;
    bounded (models are the client's choice, LB reasons carry figures): when full it
    starts afresh."""

    def __init__(self, encode: Callable[[Any], bytes]) -> None:
        super().__init__()
        self.encode = encode

    def __missing__(self, value: Any) -> bytes:
        if len(self) >= _MAX_KEPT:
            self.clear()
        text = self[value] = self.encode(value)
        return text


def _names_text(values: tuple[Any, ...]) -> bytes:
    """``"listener":…,"route":…,"cluster":…,"endpoint":…,"model":…,"method":…,"path":…,``
    (kept by those seven values: a line pays one lookup for all seven)."""
    return b"".join(b'"%s":%s,' % (n, _json(v)) for n, v in zip(_NAMES, values, strict=True))


def _json(value: Any) -> bytes:
    """``value`` as JSON; a value JSON does not know becomes its ``str()``, never no line."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return orjson.dumps(str(value))


def json_lines(entries: list[tuple[Any, ...]], known: _Kept, names: _Kept) -> bytes:
    """The JSON lines of ``entries`` (``Entry`` fields in order); ``known`` and ``names``
    keep the encoded text of repeating values. Times are ISO UTC with milliseconds.

    One loop over plain tuples with everything local: this is most of what an access
    line costs, paid once per request.
    """
    line = _JSON_LINE
    dumps = orjson.dumps  # request ids are strings (ours, or a header's)
    boolean = _BOOL
    millis = _MS
    out: list[bytes] = []
    second, stamp = -1, b""
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
        if int(wall) != second:
            second = int(wall)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)).encode()
        out.append(
            line
            % (
                stamp + millis[int((wall - second) * 1000)],
                dumps(request_id),
                names[listener, route, cluster, endpoint, model, method, path],
                known[lb_reason],
                status,
                seconds * 1000.0,
                b"null" if ttft is None else b"%.3f" % (ttft * 1000.0),
                attempts,
                attempts - 1 if attempts else 0,
                boolean[bool(stream)],
                known[error_kind],
                boolean[bool(client_disconnected)],
                b"" if tokens is None else _TOKENS % tokens,
            )
        )
    out.append(b"")
    return b"\n".join(out)


def text_lines(entries: list[tuple[Any, ...]]) -> bytes:
    """The text lines of ``entries``, as the text formatter lays out other logs (local
    time, ``,`` before the milliseconds)."""
    millis = _MS_TEXT
    out: list[str] = []
    second, stamp = -1, ""
    for wall, _, _, _, _, endpoint, _, model, method, path, status, seconds, *_ in entries:
        if int(wall) != second:
            second = int(wall)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S,", time.localtime(wall))
        out.append(
            f"{stamp}{millis[int((wall - second) * 1000)]} INFO smg.access: {method} {path} "
            f"{model} -> {endpoint} {status} {seconds * 1000.0:.1f}ms\n"
        )
    return "".join(out).encode()


class AccessLog:
    """Queued access lines for one process, written to a file descriptor."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.json = False
        self._queue: list[tuple[Any, ...]] = []
        self._scheduled = False
        self._known = _Kept(_json)
        """LB reasons and error kinds."""
        self._names = _Kept(_names_text)

    def configure(self, json: bool, fd: int = 2) -> None:
        """Use JSON lines (else the text layout of the other logs), written to ``fd``."""
        self.flush()
        self.json = json
        self.fd = fd

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
        text = json_lines(entries, self._known, self._names) if self.json else text_lines(entries)
        data = memoryview(text)
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except OSError:  # stderr closed or full: an access line is not worth a crash
            pass


ACCESS_LOG: Final = AccessLog()
atexit.register(ACCESS_LOG.flush)
