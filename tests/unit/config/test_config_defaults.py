"""Defaults come from the schema alone and land in the typed config and the raw document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from config_helpers import MINIMAL, Loader
from jsonschema import Draft202012Validator

from smg.config.loader import config_from_dict, load_config
from smg.config.schema import apply_defaults, load_schema, resolve
from smg.config.units import parse_duration, parse_size

ROOT = Path(__file__).resolve().parents[3]


def _default(*path: str) -> Any:
    """The ``default`` the schema declares at a dotted property path."""
    root = load_schema()
    schema = root
    for key in path:
        schema = resolve(schema, root)
        if "properties" in schema and key in schema["properties"]:
            schema = schema["properties"][key]
        elif key == "[]":
            schema = schema["items"]
        elif key == "{}":
            schema = schema["additionalProperties"]
        else:  # the object branch of an anyOf
            branch = next(b for b in schema["anyOf"] if "properties" in resolve(b, root))
            schema = resolve(branch, root)["properties"][key]
    resolved = resolve(schema, root)
    return schema.get("default", resolved.get("default"))


def test_defaults_are_applied_from_the_schema(load: Loader) -> None:
    config = load(MINIMAL + "models:\n  m: {}\n")
    assert config.admin is not None
    assert config.admin.address == _default("admin", "address")
    assert config.logging.level == _default("logging", "level")
    assert config.logging.json is _default("logging", "json")
    assert config.logging.access_log is _default("logging", "access_log")
    assert config.server.workers == _default("server", "workers")
    assert config.server.watch_config is _default("server", "watch_config")
    assert config.server.shutdown_grace_period == parse_duration(
        _default("server", "shutdown_grace_period")
    )
    assert config.models[0].owned_by == _default("models", "{}", "owned_by")
    listener = config.listeners[0]
    assert list(listener.filters) == _default("listeners", "[]", "filters")
    assert listener.max_payload_size == parse_size(_default("listeners", "[]", "max_payload_size"))
    assert listener.request_timeout == parse_duration(
        _default("listeners", "[]", "request_timeout")
    )
    route = listener.routes[0]
    assert route.name == "route-0"
    assert route.clusters[0].weight == _default(
        "listeners", "[]", "routes", "[]", "clusters", "[]", "weight"
    )
    assert list(route.fallback) == _default("listeners", "[]", "routes", "[]", "fallback")
    assert (route.match.model, route.match.path, route.match.headers) == (None, None, ())
    cluster = config.clusters[0]
    assert cluster.protocol == _default("clusters", "[]", "protocol")
    assert cluster.endpoints[0].weight == _default("clusters", "[]", "endpoints", "[]", "weight")
    assert cluster.lb_policy.type == _default("clusters", "[]", "lb_policy", "type")
    assert cluster.lb_policy.config == {}
    for name in ("connect", "first_byte", "idle", "total"):
        expected = parse_duration(_default("clusters", "[]", "timeouts", name))
        assert getattr(cluster.timeouts, name) == expected
    pool = cluster.connection_pool
    assert pool.max_connections == _default("clusters", "[]", "connection_pool", "max_connections")
    assert pool.idle_timeout == parse_duration(
        _default("clusters", "[]", "connection_pool", "idle_timeout")
    )
    assert config.filters["router"].type == "router"


def test_documented_default_values() -> None:
    # the values the product promises; the schema is where they live
    assert _default("listeners", "[]", "max_payload_size") == 256 * 1024 * 1024
    assert _default("admin", "address") == "127.0.0.1:9901"
    assert _default("clusters", "[]", "lb_policy", "type") == "round_robin"


def test_given_values_override_defaults(load: Loader) -> None:
    text = MINIMAL.replace(
        "    routes:", "    max_payload_size: 4MiB\n    request_timeout: 90s\n    routes:"
    )
    text += "    lb_policy: {type: cache_aware, config: {cache_threshold: 0.5}}\n"
    text += "    timeouts: {connect: 250ms}\nlogging: {level: debug}\n"
    config = load(text)
    assert config.listeners[0].max_payload_size == 4 * 1024 * 1024
    assert config.listeners[0].request_timeout == 90.0
    cluster = config.clusters[0]
    assert cluster.lb_policy.type == "cache_aware"
    assert cluster.lb_policy.config == {"cache_threshold": 0.5}
    assert cluster.timeouts.connect == 0.25
    assert cluster.timeouts.total == parse_duration(_default("clusters", "[]", "timeouts", "total"))
    assert config.logging.level == "debug"


def test_admin_null_disables_the_admin_listener(load: Loader) -> None:
    assert load(MINIMAL + "admin: null\n").admin is None


def test_shorthands_are_normalized(load: Loader) -> None:
    text = MINIMAL + "    lb_policy: least_request\n"
    config = load(text)
    assert config.clusters[0].lb_policy.type == "least_request"
    raw_cluster = config.raw["clusters"][0]
    assert raw_cluster["endpoints"] == [{"url": "http://127.0.0.1:31001", "weight": 1}]
    assert raw_cluster["lb_policy"] == {"type": "least_request", "config": {}}
    assert config.raw["listeners"][0]["routes"][0]["clusters"] == [{"name": "sim", "weight": 1}]


def test_raw_document_is_valid_against_the_schema(load: Loader) -> None:
    config = load(MINIMAL + "    lb_policy: random\n")
    Draft202012Validator(load_schema()).validate(config.raw)


def test_weighted_clusters_and_match(load: Loader) -> None:
    text = MINIMAL.replace(
        "      - cluster: sim\n",
        "      - name: split\n"
        "        match: {model: 'qwen-*', path: /v1/*, headers: {X-Tenant: a}}\n"
        "        clusters: [{name: sim, weight: 3}, {name: sim}]\n"
        "        fallback: [sim]\n",
    )
    route = load(text).listeners[0].routes[0]
    assert route.name == "split"
    assert route.match.model == "qwen-*"
    assert route.match.path == "/v1/*"
    assert route.match.headers == (("x-tenant", "a"),)
    assert [(c.name, c.weight) for c in route.clusters] == [("sim", 3), ("sim", 1)]
    assert route.fallback == ("sim",)


def test_default_filler_does_not_touch_its_input() -> None:
    doc: dict[str, Any] = {"listeners": [], "clusters": []}
    filled = apply_defaults(doc)
    assert doc == {"listeners": [], "clusters": []}
    assert filled["version"] == 1


def test_every_property_has_a_description() -> None:
    root = load_schema()
    missing: list[str] = []

    def walk(schema: Any, where: str) -> None:
        if isinstance(schema, dict):
            for key, prop in schema.get("properties", {}).items():
                if "description" not in prop:
                    missing.append(f"{where}.{key}")
            for key, value in schema.items():
                walk(value, f"{where}.{key}")
        elif isinstance(schema, list):
            for i, item in enumerate(schema):
                walk(item, f"{where}[{i}]")

    walk(root, "#")
    assert missing == []


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(load_schema())


@pytest.mark.parametrize("name", ["quickstart.yaml"])
def test_example_configs_validate(name: str) -> None:
    config = load_config(ROOT / "examples" / "configs" / name, env={})
    assert config.listeners[0].filters == ("request_id", "router")


def test_quickstart_matches_what_the_docs_promise() -> None:
    config = load_config(ROOT / "examples" / "configs" / "quickstart.yaml", env={})
    assert config.admin is not None and config.admin.address == "127.0.0.1:9901"
    (listener,) = config.listeners
    assert (listener.name, listener.address) == ("public", "127.0.0.1:30000")
    assert listener.routes[0].match.model == "*"
    assert listener.routes[0].clusters[0].name == "sim"
    (cluster,) = config.clusters
    assert cluster.protocol == "openai_http"
    assert [e.url for e in cluster.endpoints] == [
        "http://127.0.0.1:31001",
        "http://127.0.0.1:31002",
    ]
    assert cluster.lb_policy.type == "least_request"
    assert [m.name for m in config.models] == ["sim-model"]


def test_config_from_dict_builds_a_config() -> None:
    doc: dict[str, Any] = {
        "listeners": [{"name": "l", "address": "127.0.0.1:0", "routes": [{"cluster": "c"}]}],
        "clusters": [{"name": "c", "endpoints": ["http://127.0.0.1:1"]}],
    }
    config = config_from_dict(doc, "launch", env={})
    assert config.source == "launch"
    assert config.clusters[0].endpoints[0].url == "http://127.0.0.1:1"
    assert doc["clusters"][0]["endpoints"] == ["http://127.0.0.1:1"]  # input untouched
    assert config_from_dict(doc, "launch", env={}).version_hash == config.version_hash


def test_health_outlier_and_retry_defaults_come_from_the_schema(load: Loader) -> None:
    cluster = load(MINIMAL).clusters[0]

    def d(*path: str) -> Any:
        return _default("clusters", "[]", *path)

    hc = cluster.health_check
    assert hc.enabled is d("health_check", "enabled")
    assert hc.path == d("health_check", "path")
    assert hc.interval == parse_duration(d("health_check", "interval"))
    assert hc.timeout == parse_duration(d("health_check", "timeout"))
    assert hc.unhealthy_threshold == d("health_check", "unhealthy_threshold")
    assert hc.healthy_threshold == d("health_check", "healthy_threshold")
    od = cluster.outlier_detection
    for name in (
        "enabled",
        "consecutive_5xx",
        "consecutive_local_origin_failures",
        "failure_rate_threshold",
        "failure_rate_min_requests",
        "success_threshold",
        "half_open_max_requests",
        "max_ejection_percent",
    ):
        assert getattr(od, name) == d("outlier_detection", name), name
    for name in ("window", "base_ejection_time", "max_ejection_time"):
        assert getattr(od, name) == parse_duration(d("outlier_detection", name)), name
    rp = cluster.retry_policy
    assert rp.max_retries == d("retry_policy", "max_retries")
    assert rp.retry_on == frozenset(d("retry_policy", "retry_on"))
    assert rp.retriable_status_codes == frozenset(d("retry_policy", "retriable_status_codes"))
    assert rp.per_try_timeout is None and d("retry_policy", "per_try_timeout") is None
    assert rp.backoff.base == parse_duration(d("retry_policy", "backoff", "base"))
    assert rp.backoff.max == parse_duration(d("retry_policy", "backoff", "max"))
    assert rp.backoff.multiplier == d("retry_policy", "backoff", "multiplier")
    assert rp.backoff.jitter == d("retry_policy", "backoff", "jitter")
    assert rp.budget.ratio == d("retry_policy", "budget", "ratio")
    assert rp.budget.min_retries_per_second == d("retry_policy", "budget", "min_retries_per_second")


def test_documented_resilience_defaults() -> None:
    # the values the product promises; the schema is where they live
    assert _default("clusters", "[]", "health_check", "interval") == "10s"
    assert _default("clusters", "[]", "outlier_detection", "consecutive_5xx") == 5
    assert _default("clusters", "[]", "outlier_detection", "max_ejection_percent") == 50
    assert _default("clusters", "[]", "retry_policy", "retry_on") == [
        "connect_failure",
        "reset",
        "5xx",
    ]
