"""Chaos: real gateway, real simulated workers, faults injected while hundreds of requests run.

What must hold whatever the workers do: every request ends, in time, either with a full
answer or with an OpenAI-shaped error (a JSON error body, or an SSE error event once a
stream is under way); the gateway never answers 500, and once the storm is over its
in-flight counters, tasks and file descriptors are back where they started.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.fleet import Worker, in_flight, quiet, runtime, settle, workers
from tests.chaos.load import ACCEPTABLE, Outcome, Request, send, session, summary
from tests.support.procs import (
    Gateway,
    free_port,
    gateway,
    gateway_config,
    http_get,
    wait_until,
)

pytestmark = pytest.mark.chaos

REQUEST_TIMEOUT = 5.0
# Client-side limit: a bit above the gateway's deadline, so a gateway that ignores its own
# deadline shows up as "hung" rather than as a slow success.
CLIENT_TIMEOUT = REQUEST_TIMEOUT + 2.0
# Allowed lateness past the gateway deadline: a loaded 2-core box delays timers and the
# error write by a few hundred ms, never by seconds.
SLACK = 1.0
# After the run the pool may legitimately keep a few keep-alive connections: the health
# checker parks one per reachable endpoint (3 left of 4, and which of them are parked at
# the instant of measurement varies), and the healthy worker's traffic may leave one more
# that the 1 s idle sweep has not reached yet. Anything beyond that is a leak.
FD_MARGIN = 5
# Tasks: health-check loops are steady; allow for a sweep/timer task caught mid-flight.
TASK_MARGIN = 2


def chaos_config(urls: list[str]) -> dict[str, Any]:
    doc = gateway_config(urls, free_port(), free_port())
    doc["listeners"][0]["request_timeout"] = f"{REQUEST_TIMEOUT:g}s"
    doc["logging"] = {"access_log": False}
    doc["clusters"][0].update(
        {
            "retry_policy": {
                "per_try_timeout": "500ms",
                "retry_on": ["connect_failure", "reset", "timeout", "5xx"],
            },
            "health_check": {
                "interval": "200ms",
                "timeout": "300ms",
                "unhealthy_threshold": 2,
                "healthy_threshold": 2,
            },
            # A short idle timeout lets the pool shrink back within the test, so that the
            # fd count after the storm can be compared with the one before it.
            "connection_pool": {"idle_timeout": "1s"},
            # Short ejections: circuits go open → half-open → open again during the storm,
            # so half-open probe slots are taken and given back under concurrency too.
            "outlier_detection": {"base_ejection_time": "300ms"},
        }
    )
    return doc


def check_outcomes(outcomes: list[Outcome], deadline: float) -> None:
    bad = [o for o in outcomes if o.kind not in ACCEPTABLE]
    assert not bad, f"{summary(outcomes)}; first bad: {bad[:5]}"
    assert not [o for o in outcomes if o.status == 500 or o.code == "internal_error"]
    late = [o for o in outcomes if o.elapsed > deadline + SLACK]
    assert not late, f"{len(late)} requests past the deadline, e.g. {late[:3]}"


def test_mixed_faults_under_load_end_cleanly(tmp_path: Path) -> None:
    healthy_flags = ("--itl-ms", "40", "--ttft-base-ms", "10")
    with workers(
        tmp_path,
        ("--fail-rate", "1.0"),
        ("--hang-rate", "1.0"),
        healthy_flags,  # the victim: serves normally until SIGKILLed mid-stream
        healthy_flags,
    ) as ws:
        failing, hanging, victim, healthy = ws
        with gateway(tmp_path, chaos_config([w.url for w in ws])) as g:
            # Let every endpoint get its first health check (and pooled connection).
            quiet(0.6)
            before = runtime(g)
            outcomes, killed_at = asyncio.run(_storm(g, victim))
            assert killed_at is not None, "the victim never had requests in flight"
            check_outcomes(outcomes, REQUEST_TIMEOUT)
            counts = summary(outcomes)
            assert counts.get("completed", 0) >= len(outcomes) * 0.6, counts
            # Streams running on the victim when it died end with an error event.
            assert counts.get("stream_error", 0) >= 1, counts

            assert settle(g, before, FD_MARGIN, TASK_MARGIN), (
                f"before {before}, after {runtime(g)}, in flight {in_flight(g)}"
            )
            eps = g.cluster_endpoints("pool")
            assert eps[victim.url]["health"] == "unhealthy", eps[victim.url]
            assert eps[healthy.url]["circuit"] == "closed"
            assert eps[healthy.url]["health"] == "healthy"
            assert eps[healthy.url]["total_failures"] == 0
            # The breaker learned which workers are broken (at most 2 of 4 may be out at once,
            # see max_ejection_percent, so not necessarily both of them).
            assert eps[failing.url]["ejections"] + eps[hanging.url]["ejections"] >= 1, eps
            assert all(ep["probes_in_flight"] == 0 for ep in eps.values()), eps
            assert victim.proc.popen.returncode == -signal.SIGKILL


async def _storm(g: Gateway, victim: Worker) -> tuple[list[Outcome], float | None]:
    """240 requests over ~1 s (half streamed, chat and completions); kill ``victim`` mid-way."""
    # Seeded coin flips rather than i % 2: round robin over 4 endpoints would otherwise send
    # only streams (or none) to the victim.
    rng = random.Random(3)
    reqs = []
    for i in range(240):
        stream = rng.random() < 0.5
        reqs.append(
            Request(
                index=i,
                stream=stream,
                chat=rng.random() < 0.5,
                # Non-streamed answers arrive in one piece after the whole decode, so they
                # must fit the 500 ms per-try timeout; streams run ~0.8 s so the kill
                # catches some of them.
                max_tokens=20 if stream else 5,
                delay=i * 0.004,
            )
        )
    assert 100 < sum(r.stream for r in reqs) < 140
    t0 = time.monotonic()
    async with session() as s:
        tasks = [asyncio.create_task(send(s, g.url, r, timeout=CLIENT_TIMEOUT)) for r in reqs]
        killed_at = await _kill_when_busy(g, victim, t0)
        outcomes = list(await asyncio.gather(*tasks))
    return outcomes, killed_at


async def _kill_when_busy(g: Gateway, victim: Worker, t0: float) -> float | None:
    """SIGKILL the victim once several streams are under way on it."""
    for _ in range(150):
        running = await asyncio.to_thread(lambda: int(victim.stats()["running"]))
        if running >= 4:
            # Streams last ~4x longer than non-streamed answers, so most of what runs is
            # streams; the pause makes sure their heads (ttft 10 ms) reached the client
            # even on a loaded machine, so the kill cuts streams rather than requests that
            # could still be retried.
            await asyncio.sleep(0.2)
            victim.kill()
            return time.monotonic() - t0
        await asyncio.sleep(0.02)
    return None


def test_streams_cut_by_the_worker_end_with_an_error_event_quickly(tmp_path: Path) -> None:
    with workers(tmp_path, ("--drop-after-chunks", "3", "--itl-ms", "20")) as (w,):
        doc = gateway_config([w.url], free_port(), free_port())
        with gateway(tmp_path, doc) as g:
            reqs = [Request(i, stream=True, chat=i % 2 == 0, max_tokens=50) for i in range(30)]

            async def run() -> list[Outcome]:
                async with session() as s:
                    return list(await asyncio.gather(*(send(s, g.url, r, timeout=5) for r in reqs)))

            outcomes = asyncio.run(run())
            assert [o.kind for o in outcomes] == ["stream_error"] * len(reqs), summary(outcomes)
            assert all(o.elapsed < 1.0 for o in outcomes), [round(o.elapsed, 3) for o in outcomes]
            assert all(o.chunks >= 2 for o in outcomes)  # real data came before the cut
            assert {o.code for o in outcomes} == {"upstream_reset"}
            # The head had gone out, so none of them may have been retried.
            assert w.stats()["total_requests"] == len(reqs)
            assert wait_until(lambda: not any(in_flight(g).values()), 3), in_flight(g)


def test_sigterm_lets_running_streams_finish_and_exits_zero(tmp_path: Path) -> None:
    n = 20
    with workers(tmp_path, ("--itl-ms", "100")) as (w,):
        doc = gateway_config([w.url], free_port(), free_port())
        with gateway(tmp_path, doc) as g:
            reqs = [Request(i, stream=True, chat=i % 2 == 0, max_tokens=25) for i in range(n)]

            async def run() -> tuple[list[Outcome], bool, str]:
                started: set[int] = set()
                all_started = asyncio.Event()

                def first_chunk(i: int) -> None:
                    started.add(i)
                    if len(started) == n:
                        all_started.set()

                async with session() as s:
                    tasks = [
                        asyncio.create_task(
                            send(s, g.url, r, timeout=15, on_first_chunk=first_chunk)
                        )
                        for r in reqs
                    ]
                    await asyncio.wait_for(all_started.wait(), 5)
                    g.proc.signal(signal.SIGTERM)
                    # While draining: not ready, and no new connections accepted.
                    ready = await asyncio.to_thread(
                        wait_until, lambda: http_get(g.admin + "/ready", 1)[0] == 503, 2
                    )
                    # A fresh session: a reused keep-alive connection would be served.
                    async with session() as fresh:
                        late = await send(fresh, g.url, Request(n, True, True, 2), timeout=3)
                    return list(await asyncio.gather(*tasks)), ready, late.kind

            outcomes, ready_went_503, late_kind = asyncio.run(run())
            assert [o.kind for o in outcomes] == ["completed"] * n, summary(outcomes)
            assert all(o.chunks >= 25 for o in outcomes)
            assert ready_went_503
            assert late_kind == "transport"  # connection refused: the listener is closed
            assert g.proc.popen.wait(10) == 0


def test_clients_giving_up_leave_nothing_behind(tmp_path: Path) -> None:
    """Clients that time out on hung or long answers: the gateway lets go of the worker too."""
    with workers(tmp_path, ("--hang-rate", "1.0"), ("--itl-ms", "50")) as (hung, slow):
        doc = gateway_config([hung.url, slow.url], free_port(), free_port())
        doc["clusters"][0]["connection_pool"] = {"idle_timeout": "1s"}
        doc["logging"] = {"access_log": False}
        with gateway(tmp_path, doc) as g:
            quiet(0.3)
            before = runtime(g)
            reqs = [Request(i, i % 2 == 0, i % 3 == 0, max_tokens=40) for i in range(120)]

            async def run() -> list[Outcome]:
                async with session() as s:
                    return list(
                        await asyncio.gather(*(send(s, g.url, r, timeout=0.5) for r in reqs))
                    )

            outcomes = asyncio.run(run())
            # 40 tokens at 50 ms cannot finish in 0.5 s: every client gives up mid-way.
            assert {o.kind for o in outcomes} == {"hung"}, summary(outcomes)
            assert settle(g, before, FD_MARGIN, TASK_MARGIN), (
                f"before {before}, after {runtime(g)}, in flight {in_flight(g)}"
            )
            # The gateway closed its upstream side of every abandoned request.
            assert wait_until(lambda: hung.stats()["hanging"] == 0, 3), hung.stats()
            assert wait_until(lambda: slow.stats()["running"] == 0, 3), slow.stats()


async def _sigterm_during(
    g: Gateway, reqs: list[Request], started: int
) -> tuple[list[Outcome], float]:
    """Send ``reqs``, SIGTERM once ``started`` of them are under way; (outcomes, drain time)."""
    async with session() as s:
        tasks = [asyncio.create_task(send(s, g.url, r, timeout=15)) for r in reqs]
        busy = lambda: sum(in_flight(g).values()) >= started  # noqa: E731
        assert await asyncio.to_thread(wait_until, busy, 5)
        await asyncio.sleep(0.3)  # let the streams' heads and first chunks reach the client
        t0 = time.monotonic()
        g.proc.signal(signal.SIGTERM)
        outcomes = list(await asyncio.gather(*tasks))
        return outcomes, time.monotonic() - t0


GRACE = 1.0


def _grace_gateway_doc(urls: list[str]) -> dict[str, Any]:
    doc = gateway_config(urls, free_port(), free_port())
    doc["server"] = {"shutdown_grace_period": f"{GRACE:g}s"}
    doc["clusters"][0]["retry_policy"] = {"max_retries": 0}
    return doc


def test_shutdown_grace_period_bounds_the_drain(tmp_path: Path) -> None:
    # 40 tokens at 200 ms: the streams outlive the grace period by far.
    with (
        workers(tmp_path, ("--itl-ms", "200")) as ws,
        gateway(tmp_path, _grace_gateway_doc([w.url for w in ws])) as g,
    ):
        reqs = [Request(i, True, True, max_tokens=40) for i in range(4)]
        _, took = asyncio.run(_sigterm_during(g, reqs, 4))
        assert g.proc.popen.wait(10) == 0
        assert took < GRACE + 0.5, f"streams were cut {took:.2f}s after SIGTERM"


def test_requests_cut_by_the_end_of_the_grace_period_get_an_openai_error(
    tmp_path: Path,
) -> None:
    # Streams on the slow worker, non-streamed requests on the hanging one: round robin
    # alternates, so the requests are staggered to reach the gateway in index order.
    with (
        workers(tmp_path, ("--itl-ms", "200"), ("--hang-rate", "1.0")) as ws,
        gateway(tmp_path, _grace_gateway_doc([w.url for w in ws])) as g,
    ):
        reqs = [Request(i, i % 2 == 0, True, max_tokens=40, delay=0.05 * i) for i in range(4)]
        outcomes, _ = asyncio.run(_sigterm_during(g, reqs, 4))
        assert g.proc.popen.wait(10) == 0
        assert [o.kind for o in outcomes] == ["stream_error", "error"] * 2, outcomes
