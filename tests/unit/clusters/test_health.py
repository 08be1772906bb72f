"""Active health checks: thresholds, results, schedule, ownership across reloads."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from cluster_helpers import cluster_config, endpoint, make_cluster, sample

from smg.clusters.endpoint import EndpointState
from smg.clusters.health import JITTER, HealthChecker
from smg.config.model import HealthCheckConfig
from smg.errors import UpstreamConnectError, UpstreamTimeout
from smg.runtime.tasks import TaskSet


def hc_config(**over: Any) -> HealthCheckConfig:
    hc = {"interval": "10s", "timeout": "1s", "unhealthy_threshold": 3, "healthy_threshold": 2}
    return cluster_config(1, health_check={**hc, **over}).health_check


class Script:
    """A probe that answers from a list: True, False or an exception to raise."""

    def __init__(self, *answers: bool | BaseException) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, float]] = []

    async def __call__(self, ep: EndpointState, path: str, timeout: float) -> bool:
        self.calls.append((ep.url, path, timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def checker(
    *answers: bool | BaseException, eps: list[EndpointState] | None = None, **over: Any
) -> tuple[HealthChecker, EndpointState, Script]:
    probe = Script(*answers)
    eps = eps or [endpoint()]
    return HealthChecker("hc", hc_config(**over), eps, probe, rand=lambda: 0.5), eps[0], probe


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


# ---- thresholds ----------------------------------------------------------------------


def test_first_success_makes_an_unknown_endpoint_healthy() -> None:
    hc, ep, _ = checker()
    assert (ep.health, ep.healthy, ep.available) == ("unknown", True, True)
    hc.observe(ep, True)
    assert (ep.health, ep.healthy) == ("healthy", True)


def test_unhealthy_threshold_takes_it_out_and_healthy_threshold_brings_it_back() -> None:
    hc, ep, _ = checker(unhealthy_threshold=3, healthy_threshold=2)
    hc.observe(ep, True)
    hc.observe(ep, False)
    hc.observe(ep, False)
    assert ep.available and ep.health == "healthy"
    hc.observe(ep, False)
    assert (ep.health, ep.healthy, ep.available) == ("unhealthy", False, False)
    hc.observe(ep, True)
    assert not ep.available
    hc.observe(ep, True)
    assert (ep.health, ep.available) == ("healthy", True)


def test_an_interrupted_streak_starts_over() -> None:
    hc, ep, _ = checker(unhealthy_threshold=2, healthy_threshold=2)
    for ok in (False, True, False, True, False):
        hc.observe(ep, ok)
    assert ep.health == "healthy" and ep.available
    hc.observe(ep, False)
    assert ep.health == "unhealthy"
    for ok in (True, False, True):
        hc.observe(ep, ok)
    assert ep.health == "unhealthy"
    hc.observe(ep, True)
    assert ep.health == "healthy"


def test_an_unknown_endpoint_fails_into_unhealthy() -> None:
    hc, ep, _ = checker(unhealthy_threshold=1)
    hc.observe(ep, False)
    assert ep.health == "unhealthy" and not ep.available


def test_transitions_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    hc, ep, _ = checker(unhealthy_threshold=2, healthy_threshold=1)
    caplog.set_level("INFO", logger="smg.health")
    for ok in (True, True, False, False, False, False, True, True):
        hc.observe(ep, ok)
    lines = [r.getMessage() for r in caplog.records if r.name == "smg.health"]
    assert len(lines) == 3, lines
    assert "healthy" in lines[0]
    assert "unhealthy after 2 failed checks" in lines[1]
    assert "back in rotation" in lines[2]


# ---- one check -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "result"),
    [
        (True, "success"),
        (False, "failure"),
        (UpstreamConnectError("refused"), "failure"),
        (ConnectionResetError(), "failure"),
        (UpstreamTimeout("slow"), "timeout"),
        (TimeoutError(), "timeout"),
    ],
)
def test_check_once_counts_the_result(answer: bool | BaseException, result: str) -> None:
    hc, ep, probe = checker(answer, unhealthy_threshold=1)
    before = sample("smg_health_checks_total", cluster="hc", endpoint=ep.url, result=result)
    ok = run(hc.check_once(ep))
    assert ok is (result == "success")
    assert ep.available is ok
    assert probe.calls == [(ep.url, "/health", 1.0)]
    after = sample("smg_health_checks_total", cluster="hc", endpoint=ep.url, result=result)
    assert after - before == 1


def test_check_uses_the_configured_path_and_timeout() -> None:
    hc, ep, probe = checker(True, path="/ready", timeout="250ms")
    run(hc.check_once(ep))
    assert probe.calls == [(ep.url, "/ready", 0.25)]


def test_a_hung_probe_is_a_timeout() -> None:
    async def hang(ep: EndpointState, path: str, timeout: float) -> bool:
        await asyncio.get_running_loop().create_future()  # never resolves
        return True

    ep = endpoint()
    cfg = hc_config(timeout="1ms", unhealthy_threshold=1)
    hc = HealthChecker("hc", cfg, [ep], hang)
    assert run(hc.check_once(ep)) is False
    assert ep.health == "unhealthy"


# ---- schedule --------------------------------------------------------------------------


def test_schedule_is_jittered_around_the_interval() -> None:
    cfg = hc_config(interval="10s")
    ep = endpoint()
    lo = HealthChecker("hc", cfg, [ep], Script(), rand=lambda: 0.0)
    hi = HealthChecker("hc", cfg, [ep], Script(), rand=lambda: 0.999999)
    assert lo.next_delay(first=True) == 0.0
    assert hi.next_delay(first=True) == pytest.approx(10.0)
    assert lo.next_delay(first=False) == pytest.approx(10.0 * (1 - JITTER))
    assert hi.next_delay(first=False) == pytest.approx(10.0 * (1 + JITTER))


def test_loop_checks_until_another_checker_owns_the_endpoint() -> None:
    delays: list[float] = []
    ep = endpoint()
    probe = Script(True, False, True)

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 3:
            ep.health_owner = object()  # a reload handed the endpoint to a new cluster

    hc = HealthChecker(
        "hc", hc_config(interval="2s"), [ep], probe, rand=lambda: 0.5, sleep=fake_sleep
    )
    ep.health_owner = hc

    async def main() -> None:
        await hc._run(ep)

    run(main())
    assert delays == [1.0, 2.0, 2.0]
    assert len(probe.calls) == 2


def test_start_and_stop_tasks() -> None:
    eps = [endpoint("http://10.0.0.1:1"), endpoint("http://10.0.0.2:1")]

    async def never(seconds: float) -> None:
        await asyncio.get_running_loop().create_future()

    hc = HealthChecker("hc", hc_config(), eps, Script(), sleep=never)

    async def main() -> None:
        tasks = TaskSet()
        hc.start(tasks)
        assert len(tasks) == 2
        assert all(ep.health_owner is hc for ep in eps)
        await asyncio.sleep(0)
        await hc.stop()
        assert len(tasks) == 0

    run(main())


# ---- clusters --------------------------------------------------------------------------


def test_cluster_with_checks_off_forgets_old_health_on_start() -> None:
    old = make_cluster(1, health_check={"enabled": True})
    ep = old.endpoints[0]
    assert old.health is not None
    old.health.observe(ep, False)
    old.health.observe(ep, False)
    old.health.observe(ep, False)
    assert not ep.available
    new = make_cluster(1, previous=old, health_check={"enabled": False})
    assert new.health is None and not ep.available  # building changes nothing live
    new.start(TaskSet())
    assert ep.available and ep.health == "unknown" and ep.health_owner is new


def test_cluster_health_state_survives_a_reload() -> None:
    old = make_cluster(1, health_check={"unhealthy_threshold": 1, "healthy_threshold": 3})
    ep = old.endpoints[0]
    assert old.health is not None
    old.health.observe(ep, False)
    old.health.observe(ep, True)
    new = make_cluster(
        1, previous=old, health_check={"unhealthy_threshold": 1, "healthy_threshold": 2}
    )
    assert new.health is not None
    new.health.observe(ep, True)  # kept streak (1) + 1 meets the new threshold (2)
    assert ep.health == "healthy"


def test_cluster_start_claims_endpoints_and_close_stops_checks() -> None:
    async def main() -> None:
        tasks = TaskSet()
        cluster = make_cluster(2, health_check={"interval": "1h"})
        cluster.start(tasks)
        cluster.start(tasks)  # idempotent
        assert len(tasks) == 2
        assert all(ep.health_owner is cluster.health for ep in cluster.endpoints)
        await cluster.close()
        await asyncio.sleep(0)
        assert len(tasks) == 0

    run(main())
