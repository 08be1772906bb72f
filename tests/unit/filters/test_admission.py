"""admission: slots, FIFO and priority queueing, 429/503, cancellation, errors, reloads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import pytest

from smg.errors import BadRequest, GatewayError, RateLimited
from smg.filters.admission import AdmissionFilter, QueueTimeout
from smg.filters.base import Filter, RequestContext
from smg.filters.chain import FilterChain
from smg.protocol.request import GatewayRequest, GatewayResponse


def make_ctx(priority: str | None = None, header: str = "x-smg-priority") -> RequestContext:
    headers = {header: priority} if priority is not None else {}
    req = GatewayRequest("POST", "/v1/chat/completions", "chat", headers, b"{}", {}, "m", False)
    return RequestContext(req, None, None)  # type: ignore[arg-type]


def adm(max_concurrent: int = 1, **config: Any) -> AdmissionFilter:
    return AdmissionFilter("adm", {"max_concurrent_requests": max_concurrent, **config})


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def settle() -> None:
    """Let every ready task run until it blocks again."""
    for _ in range(5):
        await asyncio.sleep(0)


async def hold(f: AdmissionFilter, n: int) -> list[RequestContext]:
    ctxs = [make_ctx() for _ in range(n)]
    for c in ctxs:
        assert await f.on_request(c) is None
    return ctxs


def test_slots_are_taken_and_returned() -> None:
    async def go() -> None:
        f = adm(2)
        a, b = await hold(f, 2)
        assert (f.in_use, f.queued) == (2, 0)
        f.on_complete(a)
        f.on_complete(a)  # a second call releases nothing
        assert f.in_use == 1
        f.on_complete(b)
        assert f.in_use == 0
        f.on_complete(make_ctx())  # never admitted (an earlier filter refused it)
        assert f.in_use == 0

    run(go())


async def queue_up(
    f: AdmissionFilter, priorities: list[str | None], order: list[str]
) -> list[asyncio.Task[None]]:
    async def one(label: str, prio: str | None) -> None:
        ctx = make_ctx(prio)
        await f.on_request(ctx)
        order.append(label)
        await asyncio.sleep(0)
        f.on_complete(ctx)

    tasks = []
    for i, p in enumerate(priorities):
        tasks.append(asyncio.create_task(one(f"{i}:{p}", p)))
        await settle()  # each is queued before the next arrives
    return tasks


def test_fifo_within_a_class_and_slot_handed_to_the_next() -> None:
    async def go() -> None:
        f = adm(1)
        (holder,) = await hold(f, 1)
        order: list[str] = []
        tasks = await queue_up(f, [None, None, None], order)
        assert f.queued == 3
        f.on_complete(holder)
        # handed over, not returned to the pool: no newcomer can slip in between
        assert (f.in_use, f.queued) == (1, 2)
        await asyncio.gather(*tasks)
        assert order == ["0:None", "1:None", "2:None"]
        assert (f.in_use, f.queued) == (0, 0)

    run(go())


def test_higher_priorities_go_first() -> None:
    async def go() -> None:
        f = adm(1)
        (holder,) = await hold(f, 1)
        order: list[str] = []
        tasks = await queue_up(f, ["low", "normal", None, "HIGH", "bogus", "high"], order)
        f.on_complete(holder)
        await asyncio.gather(*tasks)
        assert order == ["3:HIGH", "5:high", "1:normal", "2:None", "4:bogus", "0:low"]
        assert (f.in_use, f.queued) == (0, 0)

    run(go())


def test_newcomers_do_not_overtake_the_queue() -> None:
    async def go() -> None:
        f = adm(1)
        (holder,) = await hold(f, 1)
        order: list[str] = []
        tasks = await queue_up(f, [None], order)
        f.on_complete(holder)  # the slot now belongs to the waiter
        late = asyncio.create_task(f.on_request(make_ctx()))
        await asyncio.gather(*tasks)
        assert order == ["0:None"]
        await late  # admitted only after the waiter finished
        assert f.in_use == 1

    run(go())


def test_default_class_is_the_middle_one_without_normal() -> None:
    f = adm(1, priorities=["gold", "silver", "bronze", "tin"], priority_header="X-Tier")
    assert f.default_class == 2
    assert f.priority_header == "x-tier"
    assert adm(1).default_class == 1


def test_full_queue_is_429_queue_full() -> None:
    async def go() -> None:
        f = adm(1, queue_size=1)
        await hold(f, 1)
        waiter = asyncio.create_task(f.on_request(make_ctx()))
        await settle()
        with pytest.raises(RateLimited) as ei:
            await f.on_request(make_ctx())
        err = ei.value
        assert err.status == 429 and err.code == "queue_full"
        assert err.headers == {"Retry-After": "1"}
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)

    run(go())


def test_no_queue_at_all() -> None:
    async def go() -> None:
        f = adm(1, queue_size=0)
        await hold(f, 1)
        with pytest.raises(RateLimited):
            await f.on_request(make_ctx())

    run(go())


def test_queue_timeout_is_503_and_leaves_the_queue() -> None:
    async def go() -> None:
        f = adm(1, queue_timeout="20ms")
        (holder,) = await hold(f, 1)
        with pytest.raises(QueueTimeout) as ei:
            await f.on_request(make_ctx())
        err = ei.value
        assert isinstance(err, GatewayError)
        assert err.status == 503 and err.code == "queue_timeout" and err.type == "server_error"
        assert err.headers["Retry-After"] == "1"
        assert (f.in_use, f.queued) == (1, 0)
        f.on_complete(holder)
        assert f.in_use == 0

    run(go())


def test_cancelled_while_queued_leaks_nothing() -> None:
    async def go() -> None:
        f = adm(1)
        (holder,) = await hold(f, 1)
        ctx = make_ctx()
        waiter = asyncio.create_task(f.on_request(ctx))
        await settle()
        assert f.queued == 1
        waiter.cancel()  # the client went away
        await asyncio.gather(waiter, return_exceptions=True)
        f.on_complete(ctx)
        assert (f.in_use, f.queued) == (1, 0)
        f.on_complete(holder)
        assert (f.in_use, f.queued) == (0, 0)

    run(go())


def test_cancelled_in_the_instant_a_slot_was_handed_over_passes_it_on() -> None:
    async def go() -> None:
        f = adm(1)
        (holder,) = await hold(f, 1)
        doomed = make_ctx()
        waiter = asyncio.create_task(f.on_request(doomed))
        order: list[str] = []
        tasks = await queue_up(f, [None], order)
        f.on_complete(holder)  # hands the slot to `waiter` ...
        waiter.cancel()  # ... which is cancelled before it could run
        await asyncio.gather(waiter, return_exceptions=True)
        f.on_complete(doomed)
        await asyncio.gather(*tasks)
        assert order == ["0:None"]  # the next waiter got the slot instead
        assert (f.in_use, f.queued) == (0, 0)

    run(go())


def test_cancelled_waiter_seen_by_a_release_is_skipped() -> None:
    async def go() -> None:
        f = adm(1)
        (holder,) = await hold(f, 1)
        waiter = asyncio.create_task(f.on_request(make_ctx()))
        await settle()
        waiter.cancel()  # its future is cancelled, its task has not run yet
        f.on_complete(holder)
        await asyncio.gather(waiter, return_exceptions=True)
        assert (f.in_use, f.queued) == (0, 0)

    run(go())


class Boom(Filter):
    terminal = True

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        await asyncio.sleep(0)
        raise BadRequest("nope")


class Hang(Filter):
    terminal = True

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


def test_slots_return_to_zero_after_errors_and_cancellation() -> None:
    async def go() -> None:
        f = adm(2)
        for terminal in (Boom("router", {}), Hang("router", {})):
            chain = FilterChain([f, terminal])
            ctxs = [make_ctx() for _ in range(4)]
            tasks = [asyncio.create_task(chain.run(c)) for c in ctxs]
            await settle()
            if isinstance(terminal, Hang):
                assert (f.in_use, f.queued) == (2, 2)
                for t in tasks:
                    t.cancel()
            for t, c in zip(tasks, ctxs, strict=True):
                with contextlib.suppress(BadRequest, asyncio.CancelledError):
                    await t
                chain.finish(c)  # the listener always runs on_complete
            assert (f.in_use, f.queued) == (0, 0)

    run(go())


def test_inherit_with_the_same_limit_shares_in_flight_counts() -> None:
    async def go() -> None:
        old = adm(2)
        a, b = await hold(old, 2)
        new = adm(2)
        new.inherit(old)
        assert new.in_use == 2
        late = make_ctx()
        task = asyncio.create_task(new.on_request(late))
        await settle()
        assert new.queued == 1
        old.on_complete(a)  # an old-snapshot request ends: its slot goes to the new waiter
        await task
        old.on_complete(b)
        new.on_complete(late)
        assert (new.in_use, new.queued) == (0, 0)

    run(go())


def test_inherit_shrinking_drains_the_excess_first() -> None:
    async def go() -> None:
        old = adm(3)
        a, b, c = await hold(old, 3)
        new = adm(1)
        new.inherit(old)
        late = make_ctx()
        task = asyncio.create_task(new.on_request(late))
        await settle()
        old.on_complete(a)
        old.on_complete(b)
        await settle()
        assert not task.done() and new.in_use == 1  # still over the new limit
        old.on_complete(c)
        await task
        assert (new.in_use, new.queued) == (1, 0)
        new.on_complete(late)
        assert new.in_use == 0

    run(go())


def test_inherit_growing_admits_waiters_at_once() -> None:
    async def go() -> None:
        old = adm(1)
        (a,) = await hold(old, 1)
        waiting = make_ctx("low")
        task = asyncio.create_task(old.on_request(waiting))
        await settle()
        new = adm(2, priorities=["urgent", "high", "normal", "low", "idle"])
        new.inherit(old)
        await task
        assert (new.in_use, new.queued) == (2, 0)
        old.on_complete(a)
        old.on_complete(waiting)
        assert new.in_use == 0

    run(go())


def test_config_defaults_and_durations() -> None:
    f = adm(3)
    assert (f.queue_size, f.queue_timeout, f.priority_header) == (100, 30.0, "x-smg-priority")
    assert f.priorities == ("high", "normal", "low")
    assert adm(1, queue_timeout="250ms").queue_timeout == 0.25
    assert adm(1, queue_timeout=2).queue_timeout == 2.0
