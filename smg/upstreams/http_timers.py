"""Timeouts of many upstream connections driven by one event-loop timer."""

from __future__ import annotations

import asyncio
import math
from typing import Final, Protocol

__all__ = ["TIMEOUT", "Deadlines", "expire"]

# Sentinel result a timeout puts into a waiter future: the awaiting side raises the
# error itself, so no asyncio.wait_for (and no extra task) is needed.
TIMEOUT: Final = object()

# A loop timer may fire up to a millisecond early (uvloop works in whole ms); treat a
# deadline that close as due rather than re-arming for a sub-millisecond wait.
_SLACK: Final = 0.001


def expire(fut: asyncio.Future[object]) -> None:
    """Timer callback: resolve ``fut`` with the TIMEOUT sentinel unless it already resolved."""
    if not fut.done():
        fut.set_result(TIMEOUT)


class Timed(Protocol):
    """Something with one pending wait that a deadline may cut short."""

    deadline: float

    def on_deadline(self) -> None: ...


class Deadlines:
    """Arm/disarm is a set add/discard; one loop timer wakes at the earliest deadline.

    A ``call_later`` + ``cancel`` per wait costs several µs (more on the default loop,
    whose heap fills with cancelled handles), paid per request and, while streaming,
    per chunk. Here the timer is only re-armed when a deadline earlier than the
    pending wake-up appears, and a wake-up scans the armed set, which holds at most
    one entry per busy connection.
    """

    __slots__ = ("_armed", "_loop", "_timer", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._armed: set[Timed] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._when = math.inf

    def arm(self, item: Timed, timeout: float) -> None:
        """Call ``item.on_deadline()`` in ``timeout`` seconds unless disarmed before."""
        deadline = self._loop.time() + timeout
        item.deadline = deadline
        self._armed.add(item)
        if deadline < self._when:
            self._schedule(deadline)

    def disarm(self, item: Timed) -> None:
        """Forget ``item``'s deadline (no-op if it is not armed)."""
        self._armed.discard(item)

    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._when = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._when = math.inf
        armed = self._armed
        if not armed:
            return
        now = self._loop.time() + _SLACK
        due = [item for item in armed if item.deadline <= now]
        for item in due:
            armed.discard(item)
            item.on_deadline()
        if armed:
            self._schedule(min(item.deadline for item in armed))

    def close(self) -> None:
        """Drop every deadline and the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._when = math.inf
        self._armed.clear()
