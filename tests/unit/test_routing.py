"""Route matching: model exact and glob, path, headers, weights, first match wins."""

from __future__ import annotations

import random

from smg.config.model import RouteConfig, RouteMatch, WeightedCluster
from smg.routing.table import RouteTable


def route(
    name: str,
    model: str | None = None,
    path: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    clusters: tuple[tuple[str, int], ...] = (("c", 1),),
    fallback: tuple[str, ...] = (),
) -> RouteConfig:
    return RouteConfig(
        name=name,
        match=RouteMatch(model=model, path=path, headers=headers),
        clusters=tuple(WeightedCluster(n, w) for n, w in clusters),
        fallback=fallback,
    )


def test_exact_model_beats_nothing_and_glob_matches_family() -> None:
    t = RouteTable([route("a", model="llama-3"), route("b", model="qwen-*"), route("z", model="*")])
    assert t.match("llama-3", "/v1/chat/completions", {}).name == "a"  # type: ignore[union-attr]
    assert t.match("qwen-7b", "/v1/chat/completions", {}).name == "b"  # type: ignore[union-attr]
    assert t.match("other", "/v1/completions", {}).name == "z"  # type: ignore[union-attr]


def test_unknown_model_matches_no_route_without_catch_all() -> None:
    t = RouteTable([route("a", model="llama-3"), route("b", model="qwen-*")])
    assert t.match("gpt-4o", "/v1/chat/completions", {}) is None
    assert t.match(None, "/generate", {}) is None


def test_glob_is_anchored_and_supports_character_classes() -> None:
    t = RouteTable([route("a", model="qwen-[0-9]*")])
    assert t.match("qwen-7b", "/", {}) is not None
    assert t.match("qwen-x", "/", {}) is None
    assert t.match("my-qwen-7b", "/", {}) is None


def test_path_exact_and_prefix() -> None:
    t = RouteTable([route("emb", path="/v1/embeddings"), route("v1", path="/v1/*")])
    assert t.match("m", "/v1/embeddings", {}).name == "emb"  # type: ignore[union-attr]
    assert t.match("m", "/v1/chat/completions", {}).name == "v1"  # type: ignore[union-attr]
    assert t.match("m", "/generate", {}) is None


def test_headers_must_all_match_exactly() -> None:
    t = RouteTable([route("t", headers=(("x-tenant", "a"), ("x-tier", "gold"))), route("d")])
    assert t.match("m", "/", {"x-tenant": "a", "x-tier": "gold"}).name == "t"  # type: ignore[union-attr]
    assert t.match("m", "/", {"x-tenant": "a"}).name == "d"  # type: ignore[union-attr]


def test_weighted_clusters_split_by_weight_and_zero_weight_gets_nothing() -> None:
    t = RouteTable([route("w", clusters=(("a", 3), ("b", 1), ("c", 0)))])
    r = t.routes[0]
    rng = random.Random(1)
    picks = [r.pick_cluster(rng) for _ in range(4000)]
    assert picks.count("c") == 0
    share_a = picks.count("a") / len(picks)
    assert 0.70 < share_a < 0.80


def test_fallback_is_carried() -> None:
    t = RouteTable([route("f", fallback=("backup",))])
    assert t.routes[0].fallback == ("backup",)
