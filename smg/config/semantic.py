"""Checks the schema cannot express: references resolve, names and addresses are unique."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from smg.config.errors import IssueCollector
from smg.config.paths import JsonPath, format_path
from smg.config.pd import pd_endpoints, pd_issues
from smg.config.units import parse_duration

ROUTER_TYPE = "router"
ROUTER_NAME = "router"
GRPC_PROTOCOLS = frozenset({"vllm_grpc", "sglang_grpc", "trtllm_grpc"})
_WILDCARD_HOSTS = frozenset({"", "*", "0.0.0.0", "::", "[::]"})

KnownTypes = Callable[[], Collection[str]]


def semantic_issues(
    doc: dict[str, Any], collector: IssueCollector, known_filter_types: KnownTypes | None
) -> None:
    """Add an issue for every cross-reference or uniqueness problem of a schema-valid doc."""
    filter_types = {name: spec["type"] for name, spec in doc["filters"].items()}
    filter_types.setdefault(ROUTER_NAME, ROUTER_TYPE)
    if known_filter_types is not None:
        _check_filter_types(doc["filters"], set(known_filter_types()), collector)
    cluster_names = _check_clusters(doc["clusters"], collector)
    _check_addresses(doc, collector)
    seen_listeners: dict[str, int] = {}
    for index, listener in enumerate(doc["listeners"]):
        path: JsonPath = ("listeners", index)
        name = listener["name"]
        if name in seen_listeners:
            collector.add(
                (*path, "name"),
                f"duplicate listener name '{name}' (also listeners[{seen_listeners[name]}])",
            )
        else:
            seen_listeners[name] = index
        _check_chain(listener["filters"], filter_types, (*path, "filters"), collector)
        _check_routes(listener["routes"], cluster_names, (*path, "routes"), collector)


def _check_filter_types(
    filters: dict[str, Any], known: set[str], collector: IssueCollector
) -> None:
    known.add(ROUTER_TYPE)
    for name, spec in filters.items():
        if spec["type"] not in known:
            collector.add(
                ("filters", name, "type"),
                f"unknown filter type '{spec['type']}'; known types: {', '.join(sorted(known))}",
            )


def _check_chain(
    chain: list[str], filter_types: dict[str, str], path: JsonPath, collector: IssueCollector
) -> None:
    declared = ", ".join(sorted(filter_types))
    seen: set[str] = set()
    routers = 0
    for index, name in enumerate(chain):
        if name not in filter_types:
            collector.add((*path, index), f"unknown filter '{name}'; declared filters: {declared}")
            continue
        if name in seen:
            collector.add((*path, index), f"filter '{name}' appears twice in the chain")
        seen.add(name)
        if filter_types[name] != ROUTER_TYPE:
            continue
        routers += 1
        if index != len(chain) - 1:
            collector.add(
                (*path, index),
                f"filter '{name}' is of type 'router', which must be the last filter",
            )
    last = chain[-1]
    if routers == 0 or filter_types.get(last, ROUTER_TYPE) != ROUTER_TYPE:
        collector.add(
            (*path, len(chain) - 1),
            f"the last filter must be of type 'router' (add '{ROUTER_NAME}' at the end)",
        )


def _check_routes(
    routes: list[dict[str, Any]],
    cluster_names: set[str],
    path: JsonPath,
    collector: IssueCollector,
) -> None:
    names: dict[str, int] = {}
    for index, route in enumerate(routes):
        rpath: JsonPath = (*path, index)
        name = route.get("name", f"route-{index}")
        if name in names:
            where = (*rpath, "name") if "name" in route else rpath
            other = format_path((*path, names[name]))
            collector.add(where, f"duplicate route name '{name}' (also {other})")
        names.setdefault(name, index)
        refs: list[tuple[JsonPath, str]] = []
        if "cluster" in route:
            refs.append(((*rpath, "cluster"), route["cluster"]))
        else:
            weighted = route["clusters"]
            refs.extend(
                ((*rpath, "clusters", i, "name"), c["name"]) for i, c in enumerate(weighted)
            )
            if not any(c["weight"] > 0 for c in weighted):
                collector.add((*rpath, "clusters"), "at least one cluster needs a weight above 0")
        refs.extend(((*rpath, "fallback", i), n) for i, n in enumerate(route["fallback"]))
        for ref_path, ref in refs:
            if ref not in cluster_names:
                known = ", ".join(sorted(cluster_names))
                collector.add(ref_path, f"unknown cluster '{ref}'; clusters: {known}")


def _check_clusters(clusters: list[dict[str, Any]], collector: IssueCollector) -> set[str]:
    seen: dict[str, int] = {}
    for index, cluster in enumerate(clusters):
        path: JsonPath = ("clusters", index)
        name = cluster["name"]
        if name in seen:
            collector.add(
                (*path, "name"), f"duplicate cluster name '{name}' (also clusters[{seen[name]}])"
            )
        else:
            seen[name] = index
        urls: set[str] = set()
        for epath, url in _endpoint_urls(cluster, path):
            problem = endpoint_url_problem(url, cluster["protocol"])
            if problem is not None:
                collector.add(epath, problem)
            elif url in urls:
                collector.add(epath, f"duplicate endpoint '{url}'")
            urls.add(url)
        pd_issues(cluster, path, collector)
        _check_ordered(
            cluster,
            path,
            ("outlier_detection",),
            "base_ejection_time",
            "max_ejection_time",
            collector,
        )
        _check_ordered(cluster, path, ("retry_policy", "backoff"), "base", "max", collector)
    return set(seen)


def _endpoint_urls(cluster: dict[str, Any], path: JsonPath) -> list[tuple[JsonPath, str]]:
    """(path of the URL, URL) of the cluster's endpoints, both groups' for a PD cluster."""
    if "pd" in cluster:
        return [((*path, *at), url) for at, url, _ in pd_endpoints(cluster)]
    out: list[tuple[JsonPath, str]] = []
    for i, endpoint in enumerate(cluster["endpoints"]):
        if isinstance(endpoint, str):
            out.append(((*path, "endpoints", i), endpoint))
        else:
            out.append(((*path, "endpoints", i, "url"), endpoint["url"]))
    return out


def _check_ordered(
    cluster: dict[str, Any],
    path: JsonPath,
    where: tuple[str, ...],
    low: str,
    high: str,
    collector: IssueCollector,
) -> None:
    """Add an issue when duration ``low`` exceeds duration ``high`` in the block at ``where``."""
    block: Any = cluster
    for key in where:
        block = block.get(key) if isinstance(block, dict) else None
    if not isinstance(block, dict) or low not in block or high not in block:
        return
    if parse_duration(block[low]) > parse_duration(block[high]):
        collector.add(
            (*path, *where, high), f"{high} ({block[high]}) is shorter than {low} ({block[low]})"
        )


def endpoint_url_problem(url: str, protocol: str) -> str | None:
    """Why ``url`` cannot be an endpoint of a ``protocol`` cluster, or None if it can."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"invalid endpoint URL {url!r}: {exc}"
    if protocol in GRPC_PROTOCOLS:
        if parts.scheme != "grpc":
            return f"endpoint URL {url!r} of a {protocol} cluster must start with grpc://"
    elif parts.scheme not in ("http", "https"):
        return f"endpoint URL {url!r} of a {protocol} cluster must start with http:// or https://"
    if not parts.hostname:
        return f"endpoint URL {url!r} has no host"
    if port is None and parts.scheme == "grpc":
        return f"endpoint URL {url!r} needs a port"
    return None


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.lower(), int(port)


def _check_addresses(doc: dict[str, Any], collector: IssueCollector) -> None:
    bound: list[tuple[str, int, JsonPath]] = []
    places: list[tuple[JsonPath, str]] = []
    if doc.get("admin") is not None:
        places.append((("admin", "address"), doc["admin"]["address"]))
    places.extend(
        (("listeners", i, "address"), listener["address"])
        for i, listener in enumerate(doc["listeners"])
    )
    for path, address in places:
        host, port = _split_address(address)
        if port > 65535:
            collector.add(path, f"port {port} of '{address}' is above 65535")
            continue
        # port 0 asks the OS for a free port, so it never collides
        clash = next(
            (
                other
                for other_host, other_port, other in bound
                if port != 0
                and other_port == port
                and (host == other_host or {host, other_host} & _WILDCARD_HOSTS)
            ),
            None,
        )
        if clash is not None:
            collector.add(path, f"address '{address}' is also used by {format_path(clash)}")
        bound.append((host, port, path))
