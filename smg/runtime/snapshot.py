"""An immutable snapshot: everything one config built, used by a request for its whole life."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from smg.clusters.cluster import Cluster
from smg.config.model import Config, ListenerConfig
from smg.filters.base import Filter
from smg.filters.chain import FilterChain
from smg.observability.tracing import Tracing
from smg.routing.table import RouteTable


@dataclass(slots=True, eq=False)
class ListenerRuntime:
    """A listener's chain and routes in one snapshot."""

    config: ListenerConfig
    chain: FilterChain
    routes: RouteTable

    def served_models(self, clusters: dict[str, Cluster], declared: tuple[str, ...]) -> list[str]:
        """Model ids for ``GET /v1/models``: declared, named by routes, or reported by workers."""
        seen: dict[str, None] = dict.fromkeys(declared)
        for r in self.routes.routes:
            if r.model_exact is not None:
                seen.setdefault(r.model_exact, None)
            for cname in (*r.clusters, *r.fallback):
                for m in clusters[cname].served_models:
                    if r.matches_any_model or (
                        r.model_pattern is not None and r.model_pattern.fullmatch(m)
                    ):
                        seen.setdefault(m, None)
        return list(seen)


@dataclass(slots=True, eq=False)
class Snapshot:
    """What a config built. Requests count themselves in ``active`` while they run on it."""

    config: Config
    listeners: dict[str, ListenerRuntime]
    clusters: dict[str, Cluster]
    filters: dict[str, Filter]
    tracing: Tracing | None = None
    """The tracer of this config's ``tracing`` section (None: tracing off)."""
    created: float = field(default_factory=time.time)
    active: int = 0
    retired: bool = False

    @property
    def version(self) -> str:
        """The config's content hash."""
        return self.config.version_hash
