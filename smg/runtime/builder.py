"""Builds a snapshot from a config, reusing what did not change in the previous one."""

from __future__ import annotations

from smg.clusters.cluster import Cluster
from smg.clusters.endpoint import EndpointState
from smg.clusters.pd import cluster_for
from smg.config.model import Config
from smg.filters.base import Filter
from smg.filters.chain import FilterChain
from smg.filters.registry import FILTERS
from smg.observability.tracing import tracing_for
from smg.routing.table import RouteTable
from smg.runtime.snapshot import ListenerRuntime, Snapshot


def build_snapshot(config: Config, previous: Snapshot | None) -> tuple[Snapshot, list[Cluster]]:
    """New snapshot plus the clusters it created (which need warming).

    An unchanged cluster (same name, same config hash) is reused as is; a changed one
    keeps the ``EndpointState`` of endpoints with the same URL and its policy's learned
    routing state (``Cluster.adopt``). Filters of the same name
    and type inherit the state of their predecessor (rate-limit buckets and the like).
    An unchanged ``tracing`` section keeps its tracer (and exporter).
    """
    prev_clusters = previous.clusters if previous else {}
    clusters: dict[str, Cluster] = {}
    created: list[Cluster] = []
    for cc in config.clusters:
        old = prev_clusters.get(cc.name)
        if old is not None and old.config.config_hash == cc.config_hash:
            clusters[cc.name] = old
            continue
        states: dict[str, EndpointState] = dict(old.by_url) if old is not None else {}
        cluster = cluster_for(cc, states)
        if old is not None:
            cluster.adopt(old)
        clusters[cc.name] = cluster
        created.append(cluster)

    prev_filters = previous.filters if previous else {}
    filters: dict[str, Filter] = {}
    for name, fc in config.filters.items():
        cls = FILTERS.resolve(fc.type)
        inst = cls(name, fc.config)
        old_f = prev_filters.get(name)
        if old_f is not None and type(old_f) is cls:
            inst.inherit(old_f)
        filters[name] = inst

    listeners = {
        lc.name: ListenerRuntime(
            config=lc,
            chain=FilterChain([filters[n] for n in lc.filters], lc.name),
            routes=RouteTable(lc.routes),
        )
        for lc in config.listeners
    }
    tracing = tracing_for(config.tracing, previous.tracing if previous else None)
    return Snapshot(config, listeners, clusters, filters, tracing), created


def retired_parts(old: Snapshot, new: Snapshot) -> tuple[list[Cluster], list[Filter]]:
    """What ``old`` owns that ``new`` no longer uses (to close once ``old`` drained)."""
    kept_clusters = {id(c) for c in new.clusters.values()}
    kept_filters = {id(f) for f in new.filters.values()}
    return (
        [c for c in old.clusters.values() if id(c) not in kept_clusters],
        [f for f in old.filters.values() if id(f) not in kept_filters],
    )
