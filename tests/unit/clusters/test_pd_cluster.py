"""A PD cluster picks pairs, accounts load on both legs and blames the leg that failed."""

from __future__ import annotations

from typing import Any

from cluster_helpers import FakeClock

from smg.clusters.lb.base import PickContext
from smg.clusters.pd import PdCluster, PdPair, cluster_for
from smg.config.loader import config_from_dict
from smg.config.model import ClusterConfig
from smg.errors import UpstreamStatus

P1, P2, D1, D2 = (
    "http://10.0.0.1:8000",
    "http://10.0.0.2:8000",
    "http://10.0.1.1:8000",
    "http://10.0.1.2:8000",
)
E503 = UpstreamStatus(503, b"{}", "application/json")


def pd_config(**sections: Any) -> ClusterConfig:
    doc: dict[str, Any] = {
        "listeners": [{"name": "l", "address": "127.0.0.1:1", "routes": [{"cluster": "pd"}]}],
        "clusters": [
            {
                "name": "pd",
                "pd": {
                    "prefill": {
                        "endpoints": [{"url": P1, "bootstrap_port": 9001}, P2],
                        "lb_policy": "round_robin",
                    },
                    "decode": {"endpoints": [D1, D2], "lb_policy": "round_robin"},
                },
                "health_check": {"enabled": False},
                **sections,
            }
        ],
    }
    return config_from_dict(doc, "test", env={}).clusters[0]


def make(**sections: Any) -> PdCluster:
    cluster = PdCluster(pd_config(**sections), None, FakeClock())
    cluster.start(_NoTasks())
    return cluster


class _NoTasks:
    def spawn(self, name: str, coro: Any) -> Any:
        coro.close()
        return None


CTX = PickContext(headers={}, body={"prompt": "x"}, model=None, kind="completions")


def pick(c: PdCluster, exclude: frozenset[str] = frozenset()) -> PdPair:
    pair = c.pick(CTX, exclude)
    assert isinstance(pair, PdPair)
    return pair


def test_a_config_with_pd_builds_a_pd_cluster_with_both_groups() -> None:
    c = cluster_for(pd_config())
    assert isinstance(c, PdCluster)
    assert [e.url for e in c.prefill_endpoints] == [P1, P2]
    assert [e.url for e in c.decode_endpoints] == [D1, D2]
    assert c.bootstrap_ports == {P1: 9001, P2: None}
    assert c.endpoint_status(c.by_url[P1])["role"] == "prefill"
    assert c.endpoint_status(c.by_url[P1])["bootstrap_port"] == 9001
    assert c.endpoint_status(c.by_url[D2])["role"] == "decode"


def test_pairs_take_one_endpoint_of_each_group_and_the_prefills_port() -> None:
    c = make()
    pairs = [pick(c) for _ in range(4)]
    assert {p.prefill.url for p in pairs} == {P1, P2}
    assert {p.decode.url for p in pairs} == {D1, D2}
    for p in pairs:
        assert p.bootstrap_port == (9001 if p.prefill.url == P1 else None)
        assert p.url == p.decode.url  # an attempt is attributed to its decode endpoint
    assert c.last_reason.startswith("pd sglang; prefill=")


def test_exclusion_applies_to_the_right_group() -> None:
    c = make()
    for _ in range(4):
        p = pick(c, frozenset({P1, D2}))
        assert (p.prefill.url, p.decode.url) == (P2, D1)
    assert c.pick(CTX, frozenset({P1, P2})) is None
    assert c.pick(CTX, frozenset({D1, D2})) is None


def test_exhausted_when_every_endpoint_of_either_group_failed() -> None:
    c = make()
    assert not c.exhausted(frozenset({P1, D1}))
    assert c.exhausted(frozenset({P1, P2}))
    assert c.exhausted(frozenset({D1, D2, P1}))


def test_load_counts_on_both_legs_from_pick_to_release() -> None:
    c = make()
    pair = pick(c)
    guard = pair.acquire()
    assert (pair.prefill.in_flight, pair.decode.in_flight) == (1, 1)
    pair.end_prefill()  # the prefill leg finished before the answer did
    assert (pair.prefill.in_flight, pair.decode.in_flight) == (0, 1)
    guard.release()
    guard.release()
    pair.end_prefill()
    assert (pair.prefill.in_flight, pair.decode.in_flight) == (0, 0)


def test_a_failure_is_the_failed_legs_and_a_success_both_legs() -> None:
    c = make(outlier_detection={"consecutive_5xx": 1, "max_ejection_percent": 100})
    pair = pick(c)
    pair.blame(pair.prefill)
    pair.blame(pair.decode)  # the first failure wins
    assert pair.url == pair.prefill.url and pair.leg_name() == "prefill"
    pair.total_failures += 1  # what the router does
    c.record(pair, E503)
    assert pair.prefill.total_failures == 1 and pair.decode.total_failures == 0
    assert not pair.prefill.available and pair.decode.available  # its breaker opened
    ok = pick(c)
    assert ok.prefill is not pair.prefill  # the ejected prefill is not picked
    assert ok.prefill.breaker is not None and ok.decode.breaker is not None
    c.record(ok, None)
    assert ok.prefill.breaker.describe()["window_requests"] == 1
    assert ok.decode.breaker.describe()["window_requests"] == 1


def test_ejection_cap_is_per_group() -> None:
    # 50%: with two endpoints per group one of each may be ejected, never a whole group.
    c = make(outlier_detection={"consecutive_5xx": 1, "max_ejection_percent": 50})
    for url in (P1, P2):
        c.record(PdPair(c.by_url[url], c.by_url[D1]), None)
        pair = PdPair(c.by_url[url], c.by_url[D1])
        pair.blame(pair.prefill)
        c.record(pair, E503)
    assert [c.by_url[u].available for u in (P1, P2)] == [False, True]
    pair = PdPair(c.by_url[P2], c.by_url[D1])
    pair.blame(pair.decode)
    c.record(pair, E503)
    assert not c.by_url[D1].available and c.by_url[D2].available  # the decode group's own cap


def test_prefill_bucket_policy_sorts_by_prompt_length() -> None:
    bucket = {
        "type": "bucket",
        "config": {
            "buckets": [
                {"max_prompt_tokens": 64, "endpoints": [P1]},
                {"endpoints": [P2]},
            ]
        },
    }
    doc_pd = {
        "prefill": {"endpoints": [{"url": P1, "bootstrap_port": 9001}, P2], "lb_policy": bucket},
        "decode": {"endpoints": [D1, D2], "lb_policy": "least_request"},
    }
    cfg = _with_pd(doc_pd)
    c = PdCluster(cfg, None, FakeClock())
    short = PickContext(headers={}, body={"prompt": "x" * 40}, model=None, kind="completions")
    long = PickContext(headers={}, body={"prompt": "x" * 4000}, model=None, kind="completions")
    for _ in range(3):
        assert pick_with(c, short).prefill.url == P1
        assert pick_with(c, long).prefill.url == P2
    assert "bucket" in c.last_reason and "least_request" in c.last_reason


def test_cache_aware_prefill_keeps_a_prefix_on_one_prefill_endpoint() -> None:
    c = PdCluster(
        _with_pd(
            {
                "prefill": {"endpoints": [P1, P2], "lb_policy": "cache_aware"},
                "decode": {"endpoints": [D1, D2]},
            }
        ),
        None,
        FakeClock(),
    )
    system = "You are a helpful assistant who knows everything about prefill. " * 8
    first = pick_with(c, _chat(system + "question one")).prefill.url
    for i in range(5):
        pair = pick_with(c, _chat(system + f"question {i + 2}"))
        assert pair.prefill.url == first  # prefix affinity on the prefill group


def _chat(text: str) -> PickContext:
    return PickContext(
        headers={}, body={"messages": [{"role": "user", "content": text}]}, model=None, kind="chat"
    )


def pick_with(c: PdCluster, ctx: PickContext) -> PdPair:
    pair = c.pick(ctx)
    assert isinstance(pair, PdPair)
    return pair


def _with_pd(pd: dict[str, Any]) -> ClusterConfig:
    doc: dict[str, Any] = {
        "listeners": [{"name": "l", "address": "127.0.0.1:1", "routes": [{"cluster": "pd"}]}],
        "clusters": [{"name": "pd", "pd": pd, "health_check": {"enabled": False}}],
    }
    return config_from_dict(doc, "test", env={}).clusters[0]
