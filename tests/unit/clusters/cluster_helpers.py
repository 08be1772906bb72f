"""Shared helpers for the cluster tests (a unique module name, unlike conftest)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from smg.clusters.cluster import Cluster
from smg.clusters.endpoint import Endpoint, EndpointState
from smg.config.loader import config_from_dict
from smg.config.model import ClusterConfig


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def cluster_config(n: int = 2, name: str = "pool", **sections: Any) -> ClusterConfig:
    """A validated cluster of ``n`` endpoints with ``sections`` (health_check=..., ...)."""
    doc: dict[str, Any] = {
        "listeners": [{"name": "l", "address": "127.0.0.1:1", "routes": [{"cluster": name}]}],
        "clusters": [
            {
                "name": name,
                "endpoints": [f"http://10.0.0.{i + 1}:8000" for i in range(n)],
                **sections,
            }
        ],
    }
    return config_from_dict(doc, "test", env={}).clusters[0]


def make_cluster(
    n: int = 2,
    clock: FakeClock | None = None,
    previous: Cluster | None = None,
    **sections: Any,
) -> Cluster:
    """A cluster (not started) on a fake clock, keeping ``previous``'s endpoint state.

    Health checks are off unless ``health_check`` is given.
    """
    sections.setdefault("health_check", {"enabled": False})
    states = dict(previous.by_url) if previous is not None else None
    return Cluster(cluster_config(n, **sections), states, clock or FakeClock())


def endpoint(url: str = "http://10.0.0.9:8000") -> EndpointState:
    """A lone endpoint state."""
    return EndpointState(Endpoint.parse(url))


def sample(name: str, **labels: str) -> float:
    """Current value of a metric sample (0 when it does not exist yet)."""
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value
