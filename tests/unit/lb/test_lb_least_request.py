"""Least request (power of N choices)."""

from __future__ import annotations

from collections import Counter

import pytest

from smg.clusters.lb.least_request import create


def test_two_endpoints_prefers_lower_in_flight(make_eps, ctx) -> None:
    lb = create({})
    a, b = make_eps(1, 1)
    a.in_flight, b.in_flight = 3, 1
    assert all(lb.pick([a, b], ctx) is b for _ in range(100))
    assert lb.reason() == "least_request; in_flight=1"


def test_weights_scale_load(make_eps, ctx) -> None:
    lb = create({})
    a, b = make_eps(4, 1)
    # (5 + 1) / 4 = 1.5 beats (1 + 1) / 1 = 2 although a has more in flight.
    a.in_flight, b.in_flight = 5, 1
    assert all(lb.pick([a, b], ctx) is a for _ in range(50))
    # While idle the heavier endpoint wins: 1/4 < 1/1.
    a.in_flight = b.in_flight = 0
    assert lb.pick([a, b], ctx) is a


def test_tie_is_random(make_eps, ctx) -> None:
    lb = create({"seed": 5})
    eps = make_eps(1, 1)
    counts = Counter(lb.pick(eps, ctx).endpoint.host for _ in range(2000))  # type: ignore[union-attr]
    assert 850 < counts["a"] < 1150


def test_most_loaded_never_chosen(make_eps, ctx) -> None:
    lb = create({"seed": 11})
    eps = make_eps(*([1] * 10))
    for i, ep in enumerate(eps):
        ep.in_flight = i
    counts = Counter(lb.pick(eps, ctx).endpoint.host for _ in range(5000))  # type: ignore[union-attr]
    assert counts["j"] == 0
    # Two distinct candidates: the least loaded one wins whenever it is sampled (2/10).
    assert counts["a"] / 5000 == pytest.approx(0.2, abs=0.03)
    # Every endpoint but the busiest gets some traffic (no herding on one worker).
    assert set(counts) == set("abcdefghi")


def test_choice_count_covers_small_clusters(make_eps, ctx) -> None:
    lb = create({"choice_count": 3})
    eps = make_eps(1, 1, 1)
    eps[0].in_flight, eps[1].in_flight, eps[2].in_flight = 2, 1, 4
    assert all(lb.pick(eps, ctx) is eps[1] for _ in range(50))


def test_skips_unavailable_and_excluded(make_eps, ctx) -> None:
    lb = create({"seed": 2})
    eps = make_eps(1, 1, 1, 1)
    eps[0].healthy = False
    eps[3].in_flight = 50
    exclude = frozenset({"http://b:8000"})
    picked = Counter(lb.pick(eps, ctx, exclude).endpoint.host for _ in range(300))  # type: ignore[union-attr]
    assert set(picked) == {"c"}  # c always beats d; a and b never eligible


def test_mostly_unavailable_falls_back_to_exact_sampling(make_eps, ctx) -> None:
    lb = create({"seed": 4})
    eps = make_eps(*([1] * 200))
    for ep in eps:
        ep.healthy = False
    eps[123].healthy = True
    assert all(lb.pick(eps, ctx) is eps[123] for _ in range(50))
    eps[7].healthy = True
    eps[7].in_flight = 1
    assert all(lb.pick(eps, ctx) is eps[123] for _ in range(50))


def test_none_when_nothing_available(make_eps, ctx) -> None:
    lb = create({})
    eps = make_eps(1, 1, 1, 1)
    assert lb.pick([], ctx) is None
    assert lb.pick(eps, ctx, frozenset(ep.url for ep in eps)) is None
    for ep in eps:
        ep.healthy = False
    assert lb.pick(eps, ctx) is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"choice_count": 1}, "least_request: choice_count must be an integer >= 2"),
        ({"choice_count": "2"}, "choice_count must be an integer >= 2"),
        ({"choice_count": 2.0}, "choice_count must be an integer >= 2"),
        ({"choice_count": True}, "choice_count must be an integer >= 2"),
        ({"choices": 2}, "least_request: unknown config key 'choices'"),
    ],
)
def test_config_errors(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create(config)
