"""Consistent hashing (weighted rendezvous)."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter

import pytest

from smg.clusters.endpoint import EndpointState
from smg.clusters.lb.base import PickContext
from smg.clusters.lb.consistent_hash import ConsistentHash, create, stable_hash64

KEYS = [f"session-{i}" for i in range(3000)]


def by_header(key: str) -> PickContext:
    return PickContext(headers={"x-smg-routing-key": key}, body=None, model=None)


def mapping(lb: ConsistentHash, eps: list[EndpointState], **kw: object) -> dict[str, str]:
    out = {}
    for k in KEYS:
        ep = lb.pick(eps, by_header(k), **kw)  # type: ignore[arg-type]
        assert ep is not None
        out[k] = ep.url
    return out


def test_same_key_same_endpoint(make_eps) -> None:
    eps = make_eps(1, 1, 1, 1, 1)
    lb = create({})
    first = mapping(lb, eps)
    assert mapping(lb, eps) == first
    assert mapping(create({}), list(reversed(eps))) == first  # order and instance do not matter
    assert lb.reason() == "consistent_hash; key=header"
    # Keys actually spread over the endpoints.
    assert len(set(first.values())) == 5


def test_hash_is_stable_across_processes(make_eps) -> None:
    code = (
        "from smg.clusters.lb.consistent_hash import stable_hash64;"
        "print(stable_hash64(b'session-1'))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert outs == {str(stable_hash64(b"session-1"))}


def test_removing_one_of_five_moves_only_its_keys(make_eps) -> None:
    eps = make_eps(1, 1, 1, 1, 1)
    lb = create({})
    before = mapping(lb, eps)
    gone = eps[2].url
    after = mapping(lb, [ep for ep in eps if ep.url != gone])
    others = [k for k in KEYS if before[k] != gone]
    stayed = sum(after[k] == before[k] for k in others)
    assert stayed / len(others) >= 0.9
    assert stayed == len(others)  # rendezvous hashing: exactly none of them moves
    moved = Counter(after[k] for k in KEYS if before[k] == gone)
    assert len(moved) == 4  # the departed endpoint's keys spread over all the others


def test_unavailable_or_excluded_takes_next_best_and_comes_back(make_eps) -> None:
    eps = make_eps(1, 1, 1, 1, 1)
    lb = create({})
    before = mapping(lb, eps)
    eps[0].healthy = False
    during = mapping(lb, eps)
    assert all(during[k] == before[k] for k in KEYS if before[k] != eps[0].url)
    assert eps[0].url not in during.values()
    # Removal and unavailability agree: the next best score is the same endpoint.
    assert during == mapping(lb, eps[1:])
    eps[0].healthy = True
    assert mapping(lb, eps) == before
    excluded = mapping(lb, eps, exclude=frozenset({eps[0].url}))
    assert excluded == during


def test_weights_skew_share(make_eps) -> None:
    eps = make_eps(1, 1, 1, 1, 4)
    share = Counter(mapping(create({}), eps).values())
    assert share["http://e:8000"] / len(KEYS) == pytest.approx(0.5, abs=0.04)
    for url in ("http://a:8000", "http://b:8000", "http://c:8000", "http://d:8000"):
        assert share[url] / len(KEYS) == pytest.approx(0.125, abs=0.03)


def test_weight_change_in_place_takes_effect(make_eps) -> None:
    eps = make_eps(1, 1)
    lb = create({})
    even = Counter(mapping(lb, eps).values())
    assert even["http://a:8000"] / len(KEYS) == pytest.approx(0.5, abs=0.04)
    eps[0].weight = 3  # a reload updates the shared EndpointState in place
    skewed = Counter(mapping(lb, eps).values())
    assert skewed["http://a:8000"] / len(KEYS) == pytest.approx(0.75, abs=0.04)


def test_equal_weights_above_one_match_unit_weights(make_eps) -> None:
    assert mapping(create({}), make_eps(3, 3, 3)) == mapping(create({}), make_eps(1, 1, 1))


def test_body_field(make_eps) -> None:
    eps = make_eps(1, 1, 1, 1, 1)
    lb = create({"body_field": "metadata.session_id"})
    by_head = mapping(create({}), eps)
    for k in KEYS[:200]:
        body = {"metadata": {"session_id": k}, "model": "m"}
        ep = lb.pick(eps, PickContext(headers={}, body=body, model="m"))
        # The key means the same thing whether it came in a header or the body.
        assert ep is not None and ep.url == by_head[k]
    assert lb.reason() == "consistent_hash; key=body"
    user = create({"body_field": "user"})
    ctx = PickContext(headers={}, body={"user": 42}, model=None)
    assert user.pick(eps, ctx) is user.pick(eps, ctx)
    assert user.reason() == "consistent_hash; key=body"


def test_header_wins_over_body_and_any_case(make_eps) -> None:
    eps = make_eps(1, 1, 1, 1, 1)
    lb = create({"header": "X-Session", "body_field": "user"})
    expected = mapping(create({}), eps)
    k = next(k for k in KEYS if expected[k] != expected["session-0"])
    for headers in ({"x-session": k}, {"X-Session": k}):
        ctx = PickContext(headers=headers, body={"user": "session-0"}, model=None)
        ep = lb.pick(eps, ctx)
        assert ep is not None and ep.url == expected[k]
        assert lb.reason() == "consistent_hash; key=header"


@pytest.mark.parametrize(
    "ctx",
    [
        PickContext(headers={}, body=None, model=None),
        PickContext(headers={"x-smg-routing-key": ""}, body={"user": ""}, model=None),
        PickContext(headers={}, body={"user": {"nested": 1}}, model=None),
        PickContext(headers={}, body={"user": True}, model=None),
        PickContext(headers={}, body={"other": "x"}, model=None),
    ],
)
def test_no_key_falls_back_to_least_in_flight(make_eps, ctx: PickContext) -> None:
    lb = create({"body_field": "user"})
    eps = make_eps(1, 1, 1)
    eps[0].in_flight, eps[1].in_flight, eps[2].in_flight = 4, 1, 2
    assert lb.pick(eps, ctx) is eps[1]
    assert lb.reason() == "consistent_hash; no_key->least_request"


def test_none_when_nothing_available(make_eps) -> None:
    lb = create({})
    eps = make_eps(1, 2)
    assert lb.pick([], by_header("k")) is None
    assert lb.pick(eps, by_header("k"), frozenset(ep.url for ep in eps)) is None
    for ep in eps:
        ep.healthy = False
    assert lb.pick(eps, by_header("k")) is None
    assert lb.pick(eps, PickContext(headers={}, body=None, model=None)) is None


def test_url_memo_is_bounded(make_eps) -> None:
    lb = create({})
    rng = random.Random(0)
    for gen in range(50):
        eps = make_eps(1, 1, 1, 1, names=[f"g{gen}-{i}" for i in range(4)])  # type: ignore[arg-type]
        lb.pick(eps, by_header(str(rng.random())))
    assert len(lb._ep_hash) <= 4 + 256 + 4


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"header": ""}, "consistent_hash: header must be a non-empty string"),
        ({"header": 5}, "consistent_hash: header must be a non-empty string"),
        ({"body_field": "a..b"}, "consistent_hash: body_field must be a dotted path"),
        ({"body_field": ["user"]}, "consistent_hash: body_field must be a non-empty string"),
        ({"key": "user"}, "consistent_hash: unknown config key 'key'"),
    ],
)
def test_config_errors(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create(config)
