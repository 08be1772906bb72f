"""Weighted random."""

from __future__ import annotations

from collections import Counter

import pytest

from smg.clusters.lb.random import create


def test_roughly_proportional_with_seed(make_eps, ctx) -> None:
    lb = create({"seed": 7})
    eps = make_eps(1, 2, 7)
    n = 50_000
    counts = Counter(lb.pick(eps, ctx).endpoint.host for _ in range(n))  # type: ignore[union-attr]
    for host, share in (("a", 0.1), ("b", 0.2), ("c", 0.7)):
        assert counts[host] / n == pytest.approx(share, abs=0.01)


def test_same_seed_same_sequence(make_eps, ctx) -> None:
    eps = make_eps(1, 1, 1, 1)
    one, two = create({"seed": 3}), create({"seed": 3})
    assert [one.pick(eps, ctx) for _ in range(50)] == [two.pick(eps, ctx) for _ in range(50)]


def test_skips_unavailable_excluded_and_drained(make_eps, ctx) -> None:
    lb = create({"seed": 1})
    eps = make_eps(1, 1, 1, 0)
    eps[0].healthy = False
    picked = {lb.pick(eps, ctx, frozenset({"http://b:8000"})).url for _ in range(200)}  # type: ignore[union-attr]
    assert picked == {"http://c:8000"}


def test_none_when_nothing_available(make_eps, ctx) -> None:
    lb = create({})
    eps = make_eps(1, 1)
    assert lb.pick([], ctx) is None
    assert lb.pick(eps, ctx, frozenset(ep.url for ep in eps)) is None
    for ep in eps:
        ep.healthy = False
    assert lb.pick(eps, ctx) is None
    assert lb.reason() == "random"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"seed": "x"}, "random: seed must be an integer"),
        ({"seed": True}, "random: seed must be an integer"),
        ({"sed": 1}, "random: unknown config key 'sed'"),
    ],
)
def test_config_errors(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create(config)
