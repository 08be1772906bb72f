"""Normalizing a valid document (shorthands expanded) and turning it into dataclasses."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from smg.config.model import (
    AdminConfig,
    BackoffConfig,
    ClusterConfig,
    Config,
    ConnectionPoolConfig,
    EndpointConfig,
    FilterConfig,
    HealthCheckConfig,
    LbPolicyConfig,
    ListenerConfig,
    LoggingConfig,
    ModelConfig,
    OutlierDetectionConfig,
    ProviderConfig,
    RetryBudgetConfig,
    RetryPolicyConfig,
    RouteConfig,
    RouteMatch,
    ServerConfig,
    TimeoutsConfig,
    TracingConfig,
    WeightedCluster,
)
from smg.config.paths import JsonPath
from smg.config.pd import normalize_pd, pd_config, with_pd_groups
from smg.config.semantic import ROUTER_NAME, ROUTER_TYPE
from smg.config.units import parse_duration, parse_size


def normalize(doc: dict[str, Any]) -> dict[JsonPath, JsonPath]:
    """Expand shorthands in place; return where each moved scalar went (old → new path).

    Endpoint strings become ``{url}``, a bare ``lb_policy`` string ``{type}``, a route's
    ``cluster`` a one-element ``clusters``, route names are generated, and the implicit
    ``router`` filter is declared. Defaults for the new objects are filled afterwards.
    """
    moved: dict[JsonPath, JsonPath] = {}
    doc["filters"].setdefault(ROUTER_NAME, {"type": ROUTER_TYPE})
    for ci, cluster in enumerate(doc["clusters"]):
        normalize_pd(cluster, ("clusters", ci), moved)
        for ei, endpoint in enumerate(cluster.get("endpoints", ())):
            if isinstance(endpoint, str):
                cluster["endpoints"][ei] = {"url": endpoint}
                at: JsonPath = ("clusters", ci, "endpoints", ei)
                moved[at] = (*at, "url")
        if isinstance(cluster["lb_policy"], str):
            cluster["lb_policy"] = {"type": cluster["lb_policy"]}
            at = ("clusters", ci, "lb_policy")
            moved[at] = (*at, "type")
    for li, listener in enumerate(doc["listeners"]):
        for ri, route in enumerate(listener["routes"]):
            route.setdefault("name", f"route-{ri}")
            if "cluster" in route:
                route["clusters"] = [{"name": route.pop("cluster")}]
                at = ("listeners", li, "routes", ri)
                moved[(*at, "cluster")] = (*at, "clusters", 0, "name")
    return moved


def canonical_hash(value: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``value`` (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_config(
    doc: dict[str, Any],
    *,
    source: str,
    version_hash: str,
    secret_paths: frozenset[JsonPath],
    lines: dict[JsonPath, int] | None = None,
) -> Config:
    """The typed view of a normalized, defaulted, valid document."""
    admin = doc["admin"]
    log = doc["logging"]
    server = doc["server"]
    return Config(
        source=source,
        version_hash=version_hash,
        admin=None if admin is None else AdminConfig(address=admin["address"]),
        logging=LoggingConfig(level=log["level"], json=log["json"], access_log=log["access_log"]),
        server=ServerConfig(
            workers=server["workers"],
            shutdown_grace_period=parse_duration(server["shutdown_grace_period"]),
            watch_config=server["watch_config"],
            metrics=server["metrics"],
        ),
        models=tuple(
            ModelConfig(
                name=name,
                owned_by=model["owned_by"],
                tokenizer=model["tokenizer"],
                chat_template=model["chat_template"],
                tool_parser=model["tool_parser"],
                reasoning_parser=model["reasoning_parser"],
                enable_thinking=model["enable_thinking"],
            )
            for name, model in doc["models"].items()
        ),
        listeners=tuple(_listener(listener) for listener in doc["listeners"]),
        filters={
            name: FilterConfig(name=name, type=spec["type"], config=spec["config"])
            for name, spec in doc["filters"].items()
        },
        clusters=tuple(_cluster(cluster) for cluster in doc["clusters"]),
        tracing=_tracing(doc["tracing"]),
        # a private copy: FilterConfig/LbPolicyConfig hold dicts of doc that callers may touch
        raw=copy.deepcopy(doc),
        secret_paths=secret_paths,
        lines={} if lines is None else lines,
    )


def _tracing(t: dict[str, Any]) -> TracingConfig:
    return TracingConfig(
        enabled=t["enabled"],
        exporter=t["exporter"],
        endpoint=t["endpoint"],
        sample_ratio=float(t["sample_ratio"]),
        service_name=t["service_name"],
        headers=tuple(sorted(t["headers"].items())),
    )


def _listener(listener: dict[str, Any]) -> ListenerConfig:
    return ListenerConfig(
        name=listener["name"],
        address=listener["address"],
        filters=tuple(listener["filters"]),
        routes=tuple(_route(route) for route in listener["routes"]),
        max_payload_size=parse_size(listener["max_payload_size"]),
        request_timeout=parse_duration(listener["request_timeout"]),
        route_header=listener["route_header"],
    )


def _route(route: dict[str, Any]) -> RouteConfig:
    match = route["match"]
    return RouteConfig(
        name=route["name"],
        match=RouteMatch(
            model=match.get("model"),
            path=match.get("path"),
            # header names are case-insensitive on the wire
            headers=tuple((k.lower(), v) for k, v in match.get("headers", {}).items()),
        ),
        clusters=tuple(
            WeightedCluster(name=c["name"], weight=c["weight"]) for c in route["clusters"]
        ),
        fallback=tuple(route["fallback"]),
    )


def _cluster(cluster: dict[str, Any]) -> ClusterConfig:
    cluster = with_pd_groups(cluster)
    timeouts = cluster["timeouts"]
    pool = cluster["connection_pool"]
    return ClusterConfig(
        name=cluster["name"],
        protocol=cluster["protocol"],
        endpoints=tuple(
            EndpointConfig(url=e["url"], weight=e["weight"]) for e in cluster["endpoints"]
        ),
        lb_policy=LbPolicyConfig(
            type=cluster["lb_policy"]["type"], config=cluster["lb_policy"]["config"]
        ),
        timeouts=TimeoutsConfig(
            connect=parse_duration(timeouts["connect"]),
            first_byte=parse_duration(timeouts["first_byte"]),
            idle=parse_duration(timeouts["idle"]),
            total=parse_duration(timeouts["total"]),
        ),
        connection_pool=ConnectionPoolConfig(
            max_connections=pool["max_connections"],
            idle_timeout=parse_duration(pool["idle_timeout"]),
        ),
        health_check=_health_check(cluster["health_check"]),
        outlier_detection=_outlier_detection(cluster["outlier_detection"]),
        retry_policy=_retry_policy(cluster["retry_policy"]),
        config_hash=canonical_hash(cluster),
        provider=_provider(cluster["provider"]),
        pd=pd_config(cluster),
    )


def _provider(p: dict[str, Any]) -> ProviderConfig:
    return ProviderConfig(
        api_key=p["api_key"],
        pass_client_key=p["pass_client_key"],
        api_version=p["api_version"],
        headers=tuple(sorted(p["headers"].items())),
        model_map=tuple(sorted(p["model_map"].items())),
    )


def _health_check(hc: dict[str, Any]) -> HealthCheckConfig:
    return HealthCheckConfig(
        enabled=hc["enabled"],
        path=hc["path"],
        interval=parse_duration(hc["interval"]),
        timeout=parse_duration(hc["timeout"]),
        unhealthy_threshold=hc["unhealthy_threshold"],
        healthy_threshold=hc["healthy_threshold"],
    )


def _outlier_detection(od: dict[str, Any]) -> OutlierDetectionConfig:
    return OutlierDetectionConfig(
        enabled=od["enabled"],
        consecutive_5xx=od["consecutive_5xx"],
        consecutive_local_origin_failures=od["consecutive_local_origin_failures"],
        failure_rate_threshold=float(od["failure_rate_threshold"]),
        failure_rate_min_requests=od["failure_rate_min_requests"],
        window=parse_duration(od["window"]),
        base_ejection_time=parse_duration(od["base_ejection_time"]),
        max_ejection_time=parse_duration(od["max_ejection_time"]),
        success_threshold=od["success_threshold"],
        half_open_max_requests=od["half_open_max_requests"],
        max_ejection_percent=od["max_ejection_percent"],
    )


def _retry_policy(rp: dict[str, Any]) -> RetryPolicyConfig:
    backoff = rp["backoff"]
    budget = rp["budget"]
    per_try = rp["per_try_timeout"]
    return RetryPolicyConfig(
        max_retries=rp["max_retries"],
        retry_on=frozenset(rp["retry_on"]),
        retriable_status_codes=frozenset(rp["retriable_status_codes"]),
        backoff=BackoffConfig(
            base=parse_duration(backoff["base"]),
            max=parse_duration(backoff["max"]),
            multiplier=float(backoff["multiplier"]),
            jitter=float(backoff["jitter"]),
        ),
        per_try_timeout=None if per_try is None else parse_duration(per_try),
        budget=RetryBudgetConfig(
            ratio=float(budget["ratio"]),
            min_retries_per_second=float(budget["min_retries_per_second"]),
        ),
    )
