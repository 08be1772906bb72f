"""The load-balancing policy interface shared by every policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smg.clusters.endpoint import EndpointState


@dataclass(slots=True)
class PickContext:
    """What a policy may look at to choose an endpoint for one request."""

    headers: Mapping[str, str]
    body: Mapping[str, Any] | None
    model: str | None
    text: str | None = None
    """The prompt text as the engine will see it (for prefix-aware policies)."""


class LoadBalancer(Protocol):
    """Chooses one endpoint of a cluster for a request."""

    name: str

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """Return an available endpoint whose URL is not in ``exclude``, or None."""
        ...

    def reason(self) -> str:
        """Why the last pick went where it went (for x-smg-route / logs)."""
        ...


class LoadBalancerFactory(Protocol):
    """Builds a policy instance from its validated config."""

    def __call__(self, config: Mapping[str, Any]) -> LoadBalancer: ...
