"""``admission``: a concurrency limit with a bounded, prioritised FIFO queue in front of it.

A request takes one of ``max_concurrent_requests`` slots and gives it back when it is
completely done (``on_complete``: normal end, error or client disconnect alike). When every
slot is taken it waits in the queue of its priority class: the ``priority_header`` value
names a class of ``priorities`` (highest first); an absent or unknown value means
``normal``, or the middle class when ``normal`` is not one of them. A freed slot is handed
straight to the oldest waiter of the highest non-empty class (strict priority, FIFO within
a class; no thundering herd, nobody overtakes the queue).

- Queue full (``queue_size`` waiters): 429 ``queue_full`` with ``Retry-After: 1``.
- No slot within ``queue_timeout``: 503 ``queue_timeout``. 503, not 408 or 429, because the
  client did nothing wrong and is not over a quota of its own: the gateway is saturated for
  now, which is what 503 (plus ``Retry-After``) tells clients and load balancers in front.
- A waiter cancelled in the queue (disconnect, request timeout) leaves the queue; a slot
  handed to it in that same instant is passed on, so nothing leaks.

Reloads: the new instance always shares the previous instance's limiter and resizes it to
the new ``max_concurrent_requests``. Requests admitted by the old snapshot release into the
very object the new one admits from, so in-flight counts carry over and the new limit holds
from the first request: growing hands the extra slots to waiters at once, shrinking lets
releases drain the excess before anyone new is admitted. (A fresh limiter would count from
zero while old requests still run, briefly allowing old + new.)

The limiter is per process: with ``server.workers: N`` each process admits its own
``max_concurrent_requests``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

from smg.config.units import DURATION_PATTERN, parse_duration
from smg.errors import GatewayError, RateLimited
from smg.filters._defaults import with_defaults
from smg.filters.base import Filter, RequestContext, StateKey
from smg.observability import metrics
from smg.protocol.request import GatewayResponse

_Waiters = OrderedDict[asyncio.Future[None], None]


class QueueTimeout(GatewayError):
    """No concurrency slot freed up within the queue timeout."""

    status = 503
    code = "queue_timeout"
    type = "server_error"
    blame = "upstream"


class Limiter:
    """Slots in use plus the waiters of each priority class; shared across reloads."""

    __slots__ = ("_queues", "capacity", "in_use", "queued")

    def __init__(self, capacity: int, classes: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.queued = 0
        self._queues: list[_Waiters] = [OrderedDict() for _ in range(classes)]

    def try_acquire(self) -> bool:
        """Take a free slot unless someone is already waiting for one."""
        if self.in_use < self.capacity and not self.queued:
            self.in_use += 1
            return True
        return False

    def enqueue(self, cls: int) -> asyncio.Future[None]:
        """A future resolved when a slot is handed to this waiter."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[cls][fut] = None
        self.queued += 1
        return fut

    def discard(self, fut: asyncio.Future[None]) -> None:
        """Remove a waiter that gave up (absent if a release already popped it)."""
        for q in self._queues:
            if fut in q:
                del q[fut]
                self.queued -= 1
                return

    def release(self) -> None:
        """Give a slot back: straight to the next live waiter, else to the pool."""
        if self.in_use <= self.capacity and self._hand_over():
            return
        self.in_use -= 1

    def resize(self, capacity: int, classes: int) -> None:
        """New limit and class count; extra capacity goes to waiters at once."""
        self.capacity = capacity
        # Never drop a class: its waiters still get served, after every configured one.
        while len(self._queues) < classes:
            self._queues.append(OrderedDict())
        while self.in_use < self.capacity and self._hand_over():
            self.in_use += 1

    def _hand_over(self) -> bool:
        for q in self._queues:
            while q:
                fut = q.popitem(last=False)[0]
                self.queued -= 1
                # A waiter cancelled a moment ago stays queued until its task runs.
                if not fut.done():
                    fut.set_result(None)
                    return True
        return False


_HELD = StateKey[Limiter | None]("admission.held")


class AdmissionFilter(Filter):
    """Limits concurrent requests; queues the overflow by priority, FIFO within a class."""

    type_name = "admission"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["max_concurrent_requests"],
        "properties": {
            "max_concurrent_requests": {
                "type": "integer",
                "minimum": 1,
                "description": "Requests served at once (per process); the rest queue.",
            },
            "queue_size": {
                "type": "integer",
                "minimum": 0,
                "default": 100,
                "description": "Requests that may wait for a slot; more get 429 queue_full.",
            },
            "queue_timeout": {
                "type": ["string", "number"],
                "pattern": DURATION_PATTERN,  # applies to strings only
                "minimum": 0,  # applies to numbers only
                "default": "30s",
                "description": "Longest wait for a slot ('250ms', '30s' or seconds); then 503.",
            },
            "priority_header": {
                "type": "string",
                "minLength": 1,
                "default": "x-smg-priority",
                "description": "Request header naming the priority class.",
            },
            "priorities": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "uniqueItems": True,
                "default": ["high", "normal", "low"],
                "description": (
                    "Priority classes, highest first. Requests without a known class are"
                    " 'normal', or the middle class if there is no 'normal'."
                ),
            },
        },
    }

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        cfg = with_defaults(self.config_schema, config)
        self.max_concurrent = int(cfg["max_concurrent_requests"])
        self.queue_size = int(cfg["queue_size"])
        self.queue_timeout = parse_duration(cfg["queue_timeout"])
        self.priority_header = str(cfg["priority_header"]).lower()
        names = [str(p).lower() for p in cfg["priorities"]]
        self.priorities = tuple(names)
        self._class_of = {p: i for i, p in enumerate(names)}
        self.default_class = self._class_of.get("normal", len(names) // 2)
        self._limiter = Limiter(self.max_concurrent, len(names))

    @property
    def in_use(self) -> int:
        """Slots taken now (for metrics)."""
        return self._limiter.in_use

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now (for metrics)."""
        return self._limiter.queued

    def inherit(self, previous: Filter) -> None:
        """Share the previous limiter, resized, so in-flight requests stay counted."""
        if isinstance(previous, AdmissionFilter):
            limiter = previous._limiter
            limiter.resize(self.max_concurrent, len(self.priorities))
            self._limiter = limiter

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        """Take a slot, waiting in the queue if needed, or refuse."""
        limiter = self._limiter
        if limiter.try_acquire():
            ctx.put(_HELD, limiter)
            return None
        if limiter.queued >= self.queue_size:
            metrics.ADMISSION_REJECTIONS.labels(self.name, "queue_full").inc()
            raise RateLimited(
                f"Too many requests: all {limiter.capacity} slots are busy and"
                f" {limiter.queued} requests are already queued. Please retry shortly.",
                code="queue_full",
                headers={"Retry-After": "1"},
            )
        raw = ctx.request.headers.get(self.priority_header)
        cls = self._class_of.get(raw.strip().lower(), self.default_class) if raw else None
        fut = limiter.enqueue(self.default_class if cls is None else cls)
        queued_at = time.monotonic()
        try:
            wait = self.queue_timeout
            if ctx.deadline:
                wait = min(wait, ctx.deadline - time.monotonic())
            async with asyncio.timeout(max(wait, 0.0)):
                await fut
        except TimeoutError:
            if not _granted(fut):
                limiter.discard(fut)
                metrics.ADMISSION_REJECTIONS.labels(self.name, "timeout").inc()
                raise QueueTimeout(
                    f"The gateway is at its limit of {limiter.capacity} concurrent requests"
                    f" and no slot freed up within {self.queue_timeout:g}s. Please retry.",
                    headers={"Retry-After": "1"},
                ) from None
            # The slot arrived in the same instant as the deadline: keep it.
        except BaseException:
            # Cancelled (client gone, request timeout): leave the queue, or pass on a
            # slot that was handed over just before the cancellation landed.
            if _granted(fut):
                limiter.release()
            else:
                limiter.discard(fut)
            raise
        metrics.ADMISSION_WAIT.labels(self.name).observe(time.monotonic() - queued_at)
        ctx.put(_HELD, limiter)
        return None

    def on_complete(self, ctx: RequestContext) -> None:
        """Return the slot this request holds, exactly once."""
        limiter = ctx.get(_HELD, None)
        if limiter is not None:
            ctx.put(_HELD, None)
            limiter.release()


def _granted(fut: asyncio.Future[None]) -> bool:
    return fut.done() and not fut.cancelled()
