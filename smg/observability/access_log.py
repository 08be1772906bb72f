"""The access log: one line per request, written without the logging module's per-record cost.

A ``logging`` call with a JSON formatter costs ~40 µs per line (record object, handler
lock, attribute walk, a write and a flush per line) — over a tenth of the gateway's CPU
per proxied request. Access lines are the one high-volume log, so they bypass it: the
line is built with orjson (or one f-string in text mode) in the shape the configured
formatter would give, buffered, and written to stderr as whole lines at most 100 ms
later (or at 64 KiB, and at shutdown). Other logs keep going through ``logging``; only
the relative order of an access line and an unrelated log line within those 100 ms
may differ from the order of events.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import time
from typing import Any, Final

import orjson

FLUSH_AFTER: Final = 0.1
FLUSH_SIZE: Final = 65536


class AccessLog:
    """Buffered access lines for one process, written to a file descriptor."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.json = False
        self._lines: list[bytes] = []
        self._size = 0
        self._scheduled = False
        self._second = -1
        self._stamp = ""

    def configure(self, json: bool, fd: int = 2) -> None:
        """Use JSON lines (else the text layout of the other logs), written to ``fd``."""
        self.flush()
        self.json = json
        self.fd = fd

    def _time(self) -> tuple[str, int]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            fmt = "%Y-%m-%dT%H:%M:%S" if self.json else "%Y-%m-%d %H:%M:%S"
            self._stamp = time.strftime(fmt, time.gmtime(now) if self.json else time.localtime(now))
        return self._stamp, int((now - second) * 1000)

    def write(self, doc: dict[str, Any]) -> None:
        """Queue one access line: ``doc`` starts with ``ts``, ``level``, ``logger``, ``msg``
        (``ts`` is filled in here), then the request's fields."""
        stamp, ms = self._time()
        if self.json:
            doc["ts"] = f"{stamp}.{ms:03d}Z"
            line = orjson.dumps(doc, default=str) + b"\n"
        else:
            line = f"{stamp},{ms:03d} INFO smg.access: {doc['msg']}\n".encode()
        self._lines.append(line)
        self._size += len(line)
        if self._size >= FLUSH_SIZE:
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
        if not self._lines:
            return
        data = memoryview(b"".join(self._lines))
        self._lines.clear()
        self._size = 0
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except OSError:  # stderr closed or full: an access line is not worth a crash
            pass


ACCESS_LOG: Final = AccessLog()
atexit.register(ACCESS_LOG.flush)
