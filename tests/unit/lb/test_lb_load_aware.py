"""power_of_two, least_load, prefix_hash, bucket and manual."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from smg.clusters.endpoint import EndpointState
from smg.clusters.engine_metrics import EngineLoad
from smg.clusters.lb import create_policy
from smg.clusters.lb.base import PickContext

MakeEndpoints = Callable[..., list[EndpointState]]


def text_ctx(text: str, **headers: str) -> PickContext:
    return PickContext(headers=headers, body=None, model=None, text=text)


def counts(policy: str, eps: list[EndpointState], n: int = 400, **config: object) -> Counter[str]:
    lb = create_policy(policy, {"seed": 3, **config})
    out: Counter[str] = Counter()
    for _ in range(n):
        ep = lb.pick(eps, PickContext({}, None, None))
        assert ep is not None
        out[ep.url] += 1
    return out


@pytest.mark.parametrize("policy", ["power_of_two", "least_load"])
def test_engine_reported_load_steers_traffic(policy: str, make_eps: MakeEndpoints) -> None:
    a, b, c = eps = make_eps(1, 1, 1)
    a.engine = EngineLoad(running=40, waiting=10)
    b.engine = EngineLoad(running=2, waiting=0)
    # c reports nothing: its own in-flight count (0) stands in for it.
    got = counts(policy, eps)
    assert got[a.url] == 0
    assert got[b.url] + got[c.url] == 400
    if policy == "least_load":
        assert got[c.url] == 400


@pytest.mark.parametrize("policy", ["power_of_two", "least_load"])
def test_in_flight_counts_when_larger_than_the_report(policy: str, make_eps: MakeEndpoints) -> None:
    a, b = eps = make_eps(1, 1)
    a.engine = EngineLoad(running=0, waiting=0)  # stale report; we know better
    a.in_flight = 9
    assert counts(policy, eps, 50)[b.url] == 50


@pytest.mark.parametrize("policy", ["power_of_two", "least_load"])
def test_unavailable_excluded_and_drained_are_skipped(policy: str, make_eps: MakeEndpoints) -> None:
    a, b, c, d = eps = make_eps(1, 1, 1, 0)
    a.healthy = False
    lb = create_policy(policy, {"seed": 1})
    for _ in range(50):
        ep = lb.pick(eps, PickContext({}, None, None), frozenset({b.url}))
        assert ep is c
    assert lb.pick(eps, PickContext({}, None, None), frozenset({b.url, c.url})) is None
    assert lb.reason().startswith(policy)
    assert d.weight == 0


def test_power_of_two_spreads_an_idle_pool(make_eps: MakeEndpoints) -> None:
    eps = make_eps(*([1] * 8))
    got = counts("power_of_two", eps, 1600)
    assert len(got) == 8 and min(got.values()) > 100


def test_prefix_hash_keeps_a_shared_head_on_one_endpoint(make_eps: MakeEndpoints) -> None:
    eps = make_eps(1, 1, 1, 1)
    lb = create_policy("prefix_hash", {"prefix_chars": 32})
    head = "<|system|>\nshared document number 1 " + "lorem " * 20
    homes = {lb.pick(eps, text_ctx(head + f"question {i}")) for i in range(20)}
    assert len(homes) == 1 and lb.reason() == "prefix_hash"
    spread = {lb.pick(eps, text_ctx(f"document {i} " + "x" * 40)) for i in range(40)}
    assert len(spread) == 4


def test_prefix_hash_walks_on_when_the_owner_is_over_its_bound(make_eps: MakeEndpoints) -> None:
    eps = make_eps(1, 1, 1, 1)
    lb = create_policy("prefix_hash", {"load_factor": 1.25})
    ctx = text_ctx("the same head")
    home = lb.pick(eps, ctx)
    assert home is not None
    home.in_flight = 6  # total 6 over 4 endpoints: bound ceil(1.25 * 7 / 4) = 3
    other = lb.pick(eps, ctx)
    assert other is not None and other is not home
    assert lb.reason() == "prefix_hash; bounded_load walked=1"
    # The walk follows the key's own order: the same runner-up every time.
    assert all(lb.pick(eps, ctx) is other for _ in range(5))
    assert lb.pick(eps, ctx, frozenset({other.url})) not in (home, other)


def test_prefix_hash_without_text_is_least_loaded(make_eps: MakeEndpoints) -> None:
    a, b = eps = make_eps(1, 1)
    a.in_flight = 2
    lb = create_policy("prefix_hash", {})
    assert lb.pick(eps, PickContext({}, {}, None)) is b
    assert lb.reason() == "prefix_hash; no_text->least_request"


def test_bucket_routes_by_prompt_length(make_eps: MakeEndpoints) -> None:
    a, b, c = eps = make_eps(1, 1, 1)
    lb = create_policy(
        "bucket",
        {
            "buckets": [
                {"max_prompt_tokens": 10, "endpoints": [a.url]},
                {"max_prompt_tokens": 100, "endpoints": [b.url]},
                {"endpoints": [c.url + "/"]},
            ]
        },
    )
    assert lb.pick(eps, text_ctx("x" * 40)) is a and lb.reason() == "bucket; 0"
    assert lb.pick(eps, text_ctx("x" * 41)) is b
    assert lb.pick(eps, text_ctx("x" * 4000)) is c and lb.reason() == "bucket; 2"
    a.healthy = False
    assert lb.pick(eps, text_ctx("short")) in (b, c) and lb.reason() == "bucket; spill"


def test_bucket_without_catch_all_spills_long_prompts(make_eps: MakeEndpoints) -> None:
    a, b = eps = make_eps(1, 1)
    lb = create_policy("bucket", {"buckets": [{"max_prompt_tokens": 1, "endpoints": [a.url]}]})
    b.in_flight = 0
    a.in_flight = 5
    assert lb.pick(eps, text_ctx("y" * 100)) is b and lb.reason() == "bucket; spill"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "buckets must be a non-empty list"),
        ({"buckets": [{"endpoints": ["u"]}, {"endpoints": ["v"]}]}, "only the last bucket"),
        (
            {"buckets": [{"max_prompt_tokens": 5, "endpoints": ["u"]}, {"max_prompt_tokens": 5}]},
            "above the previous",
        ),
        ({"buckets": [{"endpoints": []}]}, "non-empty list of URLs"),
        ({"buckets": [{"endpoints": ["u"], "size": 1}]}, "unknown config key 'size'"),
    ],
)
def test_bucket_bad_config(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_policy("bucket", config)


def test_manual_sticks_reassigns_and_forgets(make_eps: MakeEndpoints) -> None:
    a, b, c = eps = make_eps(1, 1, 1)
    lb = create_policy("manual", {"max_keys": 2})

    def key(k: str, exclude: frozenset[str] = frozenset()) -> EndpointState | None:
        return lb.pick(eps, PickContext({"x-smg-routing-key": k}, None, None), exclude)

    first = key("alice")
    assert first is not None and lb.reason() == "manual; assigned"
    first.in_flight = 10  # load does not move a sticky key
    assert key("alice") is first and lb.reason() == "manual; sticky"
    first.healthy = False
    moved = key("alice")
    assert moved is not None and moved is not first and lb.reason() == "manual; reassigned"
    first.healthy = True
    assert key("alice") is moved
    assert key("alice", frozenset({moved.url})) not in (moved, None)
    # Bounded: the least recently used key is forgotten.
    key("bob")
    key("carol")
    key("alice")
    assert lb.reason() == "manual; assigned"
    assert lb.pick(eps, PickContext({}, None, None)) is not None
    assert lb.reason() == "manual; no_key"
    assert c.url and b.url and a.url
