"""Drives a request, written as a generator of waits, on the event loop.

A request process is a plain generator that yields how long to wait (seconds),
a future to wait for, or PASS to let other callbacks run first. Driving it with
timer callbacks instead of one asyncio Task per request keeps the per-request
overhead low, and when every latency is zero the whole request completes
synchronously inside ``data_received``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from typing import Any

Wait = float | asyncio.Future[Any]
Process = Generator[Wait, None, None]

# Yielded to let the event loop serve others before carrying on (a long burst of
# tokens must not starve other connections).
PASS: Wait = -1.0

log = logging.getLogger("smg.sim")


class Runner:
    """Steps one request process; ``cancel`` closes it (its ``finally`` blocks run)."""

    __slots__ = ("_active", "_cancelled", "_fut", "_gen", "_loop", "_on_error", "_timer", "done")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        gen: Process,
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._loop = loop
        self._gen = gen
        self._on_error = on_error
        self._timer: asyncio.Handle | None = None
        self._fut: asyncio.Future[Any] | None = None
        self._active = False
        self._cancelled = False
        self.done = False

    def start(self, first: Wait) -> None:
        """Take over a process that was advanced by hand up to its first wait."""
        if not self._wait_on(first):
            self.step()

    def step(self, _arg: object = None) -> None:
        """Advance the process until it must wait, or until it ends."""
        self._timer = None
        self._fut = None
        if self.done:
            return
        gen = self._gen
        self._active = True
        try:
            while True:
                wait = next(gen)
                if self._cancelled:
                    # cancel() arrived while the generator was running; close it now.
                    self._close()
                    return
                if self._wait_on(wait):
                    return
        except StopIteration:
            self.done = True
        except Exception as exc:
            self.done = True
            self._on_error(exc)
        finally:
            self._active = False

    def _wait_on(self, wait: Wait) -> bool:
        if isinstance(wait, asyncio.Future):
            if wait.done():
                return False
            self._fut = wait
            wait.add_done_callback(self.step)
            return True
        if wait > 0:
            self._timer = self._loop.call_later(wait, self.step)
            return True
        if wait < 0:
            self._timer = self._loop.call_soon(self.step)
            return True
        return False

    def cancel(self) -> None:
        """Stop the process where it waits (the client went away)."""
        if self.done:
            return
        if self._active:
            self._cancelled = True
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fut is not None:
            self._fut.remove_done_callback(self.step)
            self._fut = None
        self._close()

    def _close(self) -> None:
        self.done = True
        try:
            self._gen.close()
        except Exception:
            log.exception("request process failed while closing")
