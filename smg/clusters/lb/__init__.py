"""Load-balancing policies, by name, in one registry (builtins load on first use)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smg.clusters.lb.base import LoadBalancer, LoadBalancerFactory, PickContext
from smg.registry import Registry

LB_POLICIES: Registry[LoadBalancerFactory] = Registry(
    "lb policy", entry_point_group="smg.lb_policies"
)
LB_POLICIES.register_lazy("round_robin", "smg.clusters.lb.round_robin:create")
LB_POLICIES.register_lazy("random", "smg.clusters.lb.random:create")
LB_POLICIES.register_lazy("least_request", "smg.clusters.lb.least_request:create")
LB_POLICIES.register_lazy("consistent_hash", "smg.clusters.lb.consistent_hash:create")
LB_POLICIES.register_lazy("cache_aware", "smg.clusters.lb.cache_aware:create")
LB_POLICIES.register_lazy("power_of_two", "smg.clusters.lb.power_of_two:create")
LB_POLICIES.register_lazy("least_load", "smg.clusters.lb.least_load:create")
LB_POLICIES.register_lazy("prefix_hash", "smg.clusters.lb.prefix_hash:create")
LB_POLICIES.register_lazy("bucket", "smg.clusters.lb.bucket:create")
LB_POLICIES.register_lazy("manual", "smg.clusters.lb.manual:create")


def create_policy(name: str, config: Mapping[str, Any] | None = None) -> LoadBalancer:
    """Build policy ``name`` (or ``"module:factory"``) from its config.

    Raises ``UnknownName`` for an unknown name and ``ValueError`` for a bad config.
    """
    return LB_POLICIES.resolve(name)(config if config is not None else {})


__all__ = ["LB_POLICIES", "LoadBalancer", "LoadBalancerFactory", "PickContext", "create_policy"]
