"""cache_aware: affinity, balance thresholds, retries, availability, prediction checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from smg.clusters.endpoint import EndpointState
from smg.clusters.engine_metrics import EngineLoad
from smg.clusters.lb import create_policy
from smg.clusters.lb.base import PickContext
from smg.clusters.lb.cache_aware import CacheAware, Prediction
from smg.clusters.prefix.validation import cached_tokens_in

MakeEndpoints = Callable[..., list[EndpointState]]

SYSTEM = "<|system|>\nYou are a careful assistant for user {u}. " + "Rules. " * 40 + "\n"


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def convo(user: int, turns: int) -> str:
    text = SYSTEM.format(u=user)
    for t in range(turns):
        text += f"<|user|>\nquestion {t} from {user}\n<|assistant|>\nanswer {t}\n"
    return text


def ask(lb: CacheAware, eps: list[EndpointState], text: str, **kw: frozenset[str]) -> str:
    ep = lb.pick(eps, PickContext(headers={}, body=None, model=None, text=text), **kw)
    assert ep is not None
    return ep.url


def policy(**config: object) -> CacheAware:
    lb = create_policy("cache_aware", {"seed": 1, **config})
    assert isinstance(lb, CacheAware)
    return lb


def test_a_growing_conversation_stays_on_one_endpoint(make_eps: MakeEndpoints) -> None:
    eps = make_eps(1, 1, 1, 1)
    lb = policy()
    homes = {u: ask(lb, eps, convo(u, 1)) for u in range(4)}
    # Idle pool: new conversations go to the endpoint with the smallest share of the tree.
    assert len(set(homes.values())) == 4
    for turns in range(2, 6):
        for u in range(4):
            assert ask(lb, eps, convo(u, turns)) == homes[u]
            assert lb.reason().startswith("cache_aware; hit=")


def test_a_weak_match_goes_to_the_least_loaded(make_eps: MakeEndpoints) -> None:
    eps = make_eps(1, 1)
    lb = policy(cache_threshold=0.9)
    home = ask(lb, eps, convo(1, 1))
    other = next(ep for ep in eps if ep.url != home)
    # Shares only the system prompt's first words: far below 90%.
    assert ask(lb, eps, "<|system|>\nYou are a careful assistant for user 2. and so on") == (
        other.url
    )
    assert lb.reason() == "cache_aware; miss"


def test_a_busier_endpoint_keeps_affinity_while_balanced(make_eps: MakeEndpoints) -> None:
    eps = make_eps(1, 1, 1)
    lb = policy(balance_abs_threshold=8, balance_rel_threshold=1.5)
    home = ask(lb, eps, convo(7, 1))
    next(ep for ep in eps if ep.url == home).in_flight = 8  # max - min == abs: balanced
    assert ask(lb, eps, convo(7, 2)) == home
    assert lb.reason().startswith("cache_aware; hit=")


def test_imbalance_keeps_affinity_among_endpoints_not_overloaded(
    make_eps: MakeEndpoints,
) -> None:
    a, b, c, d = eps = make_eps(1, 1, 1, 1)
    lb = policy(balance_abs_threshold=4, balance_rel_threshold=1.5)
    lb.tree.insert(convo(3, 4), a.url)  # a holds the whole conversation
    lb.tree.insert(convo(3, 3), b.url)  # b holds all but the last turn
    a.in_flight, b.in_flight, c.in_flight, d.in_flight = 20, 3, 0, 0
    # a is overloaded (20 > 0 + 4 and 20 > 1.5 * 0); b is within 4 of the least loaded.
    assert ask(lb, eps, convo(3, 5)) == b.url
    assert lb.reason().startswith("cache_aware; hit=") and "imbalanced" in lb.reason()


def test_imbalance_without_a_usable_match_goes_to_the_least_loaded(
    make_eps: MakeEndpoints,
) -> None:
    a, b, c = eps = make_eps(1, 1, 1)
    lb = policy(balance_abs_threshold=2, balance_rel_threshold=1.5)
    lb.tree.insert(convo(4, 3), a.url)
    a.in_flight, b.in_flight, c.in_flight = 10, 1, 0
    assert ask(lb, eps, convo(4, 4)) == c.url
    assert lb.reason() == "cache_aware; load_fallback"


def test_retry_excludes_the_failed_endpoint(make_eps: MakeEndpoints) -> None:
    a, b, c = eps = make_eps(1, 1, 1)
    lb = policy()
    lb.tree.insert(convo(5, 3), a.url)
    lb.tree.insert(convo(5, 2), b.url)
    first = ask(lb, eps, convo(5, 4))
    assert first == a.url
    again = ask(lb, eps, convo(5, 4), exclude=frozenset({a.url}))
    assert again == b.url and lb.reason().endswith("retry 1")
    last = ask(lb, eps, convo(5, 4), exclude=frozenset({a.url, b.url}))
    assert last == c.url and lb.reason().endswith("retry 2")
    assert lb.pick(
        eps, PickContext({}, None, None, text="x"), frozenset({a.url, b.url, c.url})
    ) is (None)


def test_unavailable_and_drained_endpoints_are_never_chosen(make_eps: MakeEndpoints) -> None:
    a, b, c = eps = make_eps(1, 1, 1)
    lb = policy()
    lb.tree.insert(convo(6, 2), a.url)
    lb.tree.insert(convo(6, 1), b.url)
    a.healthy = False
    b.weight = 0
    for turns in (3, 4):
        assert ask(lb, eps, convo(6, turns)) == c.url


def test_requests_without_text_go_to_the_least_loaded(make_eps: MakeEndpoints) -> None:
    a, b = eps = make_eps(1, 1)
    a.in_flight = 3
    lb = policy()
    assert lb.pick(eps, PickContext(headers={}, body={"model": "m"}, model="m")) is b
    assert lb.reason() == "cache_aware; no_text"


def test_engine_reported_load_counts_when_enabled(make_eps: MakeEndpoints) -> None:
    a, b = eps = make_eps(1, 1)
    lb = policy(engine_load=True, balance_abs_threshold=4, metrics_interval="2s")
    assert lb.engine_metrics_interval == 2.0
    lb.tree.insert(convo(8, 3), a.url)
    a.engine = EngineLoad(running=30.0, waiting=5.0)  # busy with other gateways' requests
    assert ask(lb, eps, convo(8, 4)) == b.url
    a.engine = None  # no report: the in-flight count (0) is all there is
    assert ask(lb, eps, convo(9, 1)) in (a.url, b.url)
    assert policy().engine_metrics_interval == 0.0


def test_routed_text_is_the_whole_conversation_in_order() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "look"}, {"type": "text", "text": "!"}],
            },
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
            {"role": "tool", "content": "42"},
        ],
        "tools": [{"type": "function"}],
    }
    ctx = PickContext(headers={}, body=body, model="m", kind="chat")
    text = ctx.routed_text()
    assert text == (
        '<|tools|>\n[{"type":"function"}]\n<|system|>\nsys\n<|user|>\nlook!\n'
        '<|assistant|>\n[{"id":"1"}]\n<|tool|>\n42\n'
    )
    body["messages"].append({"role": "user", "content": "later"})
    assert ctx.routed_text() is text  # computed once per request
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]}
    one = PickContext({}, {"messages": [image]}, None).routed_text()
    assert one.startswith("<|user|>\n<image_url:") and "data:x" not in one
    assert PickContext({}, {"prompt": "p"}, None, kind="completions").routed_text() == "p"
    assert PickContext({}, {"prompt": ["a", "b"]}, None).routed_text() == "a"
    assert PickContext({}, {"prompt": [1, 2]}, None).routed_text() == ""
    assert PickContext({}, {"text": "g"}, None, kind="generate").routed_text() == "g"
    assert PickContext({}, None, None).routed_text() == ""


def test_prediction_is_checked_against_reported_cached_tokens(
    make_eps: MakeEndpoints, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = eps = make_eps(1, 1)
    lb = policy()
    lb.bind("validated", eps)
    text = convo(1, 8)
    lb.tree.insert(text, a.url)
    ctx = PickContext(headers={}, body=None, model=None, text=text + "<|user|>\nmore\n")
    assert lb.pick(eps, ctx) is a
    assert isinstance(ctx.note, Prediction) and ctx.note.tokens == len(text) // 4
    body = b'{"usage":{"prompt_tokens":900,"prompt_tokens_details":{"cached_tokens":%d}}}'
    lb.observe(a, ctx, body % ctx.note.tokens)
    labels = {"cluster": "validated", "endpoint": a.url}
    assert sample("smg_cache_predicted_tokens_total", **labels) == ctx.note.tokens
    assert sample("smg_cache_reported_tokens_total", **labels) == ctx.note.tokens
    assert sample("smg_cache_prediction_ratio", **labels) == 1.0
    assert sample("smg_lb_decisions_total", cluster="validated", policy="cache_aware", reason="hit")
    # The engine keeps reporting nothing cached: the ratio falls and a warning says so.
    with caplog.at_level(logging.WARNING, logger="smg.lb"):
        for _ in range(40):
            lb.observe(a, ctx, body % 0)
    assert (lb.validator.ratio(a.url) or 1.0) < 0.5
    warnings = [r for r in caplog.records if "recent answers" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited
    lb.observe(a, ctx, b'{"usage":{"prompt_tokens":9}}')
    assert sample("smg_cache_unreported_total", **labels) == 1


def test_cached_tokens_are_found_in_bodies_and_stream_events() -> None:
    assert cached_tokens_in(b'{"prompt_tokens_details": {"cached_tokens": 48}}') == 48
    assert cached_tokens_in(b'data: {"usage":{"prompt_tokens_details":{"cached_tokens":0}}}') == 0
    assert cached_tokens_in(b'{"meta_info":{"cached_tokens":12,"x":1}}') == 12
    assert cached_tokens_in(b'{"cached_tokens":null}') is None
    assert cached_tokens_in(b'{"usage":{}}') is None
    assert cached_tokens_in(None) is None


def test_reload_keeps_the_tree_and_forgets_removed_endpoints(make_eps: MakeEndpoints) -> None:
    a, b, c = make_eps(1, 1, 1)
    old = policy()
    old.bind("p", [a, b, c])
    old.tree.insert(convo(1, 3), a.url)
    old.tree.insert(convo(2, 3), c.url)
    new = policy()
    new.bind("p", [a, b])
    new.inherit(old)
    assert new.tree is old.tree
    assert ask(new, [a, b], convo(1, 4)) == a.url
    assert new.tree.owned(c.url) == 0


def test_background_trim_keeps_the_tree_below_the_bound(make_eps: MakeEndpoints) -> None:
    (a,) = make_eps(1)
    lb = policy(max_tree_size=5000)
    for u in range(40):
        lb.tree.insert(convo(u, 2), a.url)
    assert 4500 < lb.tree.size <= 5000
    asyncio.run(lb.trim())
    assert lb.tree.size <= 4500


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"cache_threshold": 1.5}, "cache_threshold must be a number within [0, 1]"),
        ({"balance_abs_threshold": -1}, "balance_abs_threshold must be an integer >= 0"),
        ({"balance_rel_threshold": 0.5}, "balance_rel_threshold must be a number >= 1"),
        ({"max_tree_size": 0}, "max_tree_size must be an integer >= 1"),
        ({"eviction_interval": "soon"}, "eviction_interval must be a duration"),
        ({"engine_load": "yes"}, "engine_load must be true or false"),
        ({"cache_treshold": 0.5}, "unknown config key 'cache_treshold'"),
    ],
)
def test_bad_config_is_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        create_policy("cache_aware", config)


def test_grpc_mode_routes_on_token_ids_and_predicts_exact_tokens(
    make_eps: MakeEndpoints,
) -> None:
    eps = make_eps(1, 1, 1)
    lb = policy()
    system = tuple(range(1000, 1300))  # a long shared system prompt, in token ids
    first = PickContext({}, None, None, text="ignored text", token_ids=(*system, 7, 8))
    home = lb.pick(eps, first)
    assert home is not None
    # The next turn shares 302 ids; the text differs entirely, and does not matter.
    turn = PickContext({}, None, None, text="other", token_ids=(*system, 7, 8, 9, 10))
    assert lb.pick(eps, turn) is home
    assert lb.reason().startswith("cache_aware; hit=")
    note = turn.note
    assert isinstance(note, Prediction) and note.tokens == 302  # ids, not characters / 4
