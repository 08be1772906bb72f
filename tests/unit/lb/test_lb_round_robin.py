"""Smooth weighted round robin."""

from __future__ import annotations

from collections import Counter

import pytest

from smg.clusters.endpoint import EndpointState
from smg.clusters.lb import LB_POLICIES
from smg.clusters.lb.base import PickContext
from smg.clusters.lb.round_robin import RoundRobin, create


def hosts(rr: RoundRobin, eps: list[EndpointState], ctx: PickContext, n: int, **kw: object) -> str:
    out = []
    for _ in range(n):
        ep = rr.pick(eps, ctx, **kw)  # type: ignore[arg-type]
        assert ep is not None
        out.append(ep.endpoint.host)
    return "".join(out)


def test_smooth_sequence_5_1_1(make_eps, ctx) -> None:
    rr = create({})
    assert hosts(rr, make_eps(5, 1, 1), ctx, 14) == "aabacaa" * 2


def test_equal_weights_alternate(make_eps, ctx) -> None:
    assert hosts(create({}), make_eps(1, 1, 1), ctx, 6) == "abcabc"


def test_counts_match_weights_over_each_cycle(make_eps, ctx) -> None:
    rr = create({})
    eps = make_eps(3, 2, 7, 1)
    for _ in range(5):
        assert Counter(hosts(rr, eps, ctx, 13)) == {"a": 3, "b": 2, "c": 7, "d": 1}


def test_no_bursts(make_eps, ctx) -> None:
    # Weight 3 of 4: never more than 3 in a row, and b shows up once every 4 picks.
    seq = hosts(create({}), make_eps(3, 1), ctx, 40)
    assert "aaaa" not in seq
    assert all(seq[i : i + 4].count("b") == 1 for i in range(0, 40, 4))


def test_skips_unavailable(make_eps, ctx) -> None:
    rr = create({})
    eps = make_eps(5, 1, 1)
    eps[1].healthy = False
    seq = hosts(rr, eps, ctx, 60)
    assert "b" not in seq
    assert Counter(seq) == {"a": 50, "c": 10}


def test_skips_excluded(make_eps, ctx) -> None:
    rr = create({})
    eps = make_eps(1, 1, 1)
    seq = hosts(rr, eps, ctx, 10, exclude=frozenset({"http://a:8000"}))
    assert set(seq) == {"b", "c"}


def test_zero_weight_is_drained(make_eps, ctx) -> None:
    assert set(hosts(create({}), make_eps(1, 0, 1), ctx, 10)) == {"a", "c"}


def test_none_when_nothing_available(make_eps, ctx) -> None:
    rr = create({})
    eps = make_eps(1, 1)
    assert rr.pick([], ctx) is None
    assert rr.pick(eps, ctx, frozenset(ep.url for ep in eps)) is None
    for ep in eps:
        ep.healthy = False
    assert rr.pick(eps, ctx) is None


def test_new_list_objects_between_calls(make_eps, ctx) -> None:
    rr = create({})
    eps = make_eps(2, 1, 1, 1)
    # A fresh (and reordered) list on every call must not reset or skew the rotation.
    seq = "".join(
        rr.pick(list(reversed(eps)) if i % 2 else list(eps), ctx).endpoint.host  # type: ignore[union-attr]
        for i in range(50)
    )
    assert Counter(seq) == {"a": 20, "b": 10, "c": 10, "d": 10}


def test_reload_adds_and_removes_endpoints(make_eps, ctx) -> None:
    rr = create({})
    a, b, c, d = make_eps(1, 1, 1, 2)
    hosts(rr, [a, b, c], ctx, 7)
    after = [a, c, d]  # b left, d joined with weight 2
    assert Counter(hosts(rr, after, ctx, 40)) == {"a": 10, "c": 10, "d": 20}


def test_state_of_departed_endpoints_is_pruned(make_eps, ctx) -> None:
    rr = create({})
    for gen in range(100):
        eps = make_eps(*([1] * 8), names=[f"g{gen}n{i}" for i in range(8)])  # type: ignore[arg-type]
        hosts(rr, eps, ctx, 8)
    assert len(rr._score) <= 2 * 8 + 64 + 8


def test_reason_and_registry(ctx) -> None:
    rr = LB_POLICIES.get("round_robin")({})
    assert rr.name == "round_robin"
    assert rr.reason() == "round_robin"


def test_rejects_unknown_config_key() -> None:
    with pytest.raises(ValueError, match=r"round_robin: unknown config key 'seed'"):
        create({"seed": 1})
