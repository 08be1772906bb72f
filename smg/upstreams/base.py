"""The upstream adapter interface: one implementation per cluster protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from smg.clusters.endpoint import EndpointState
from smg.protocol.request import GatewayResponse

if TYPE_CHECKING:
    from smg.config.model import ClusterConfig
    from smg.filters.base import RequestContext


class Upstream(Protocol):
    """Sends requests to one cluster's endpoints in that cluster's protocol."""

    async def send(self, ctx: RequestContext, ep: EndpointState) -> GatewayResponse:
        """Send the request to ``ep``; return once the response head is in.

        Raises a ``GatewayError`` (connect failure, reset, timeout, error status)
        before any byte reached the client, so the router may retry elsewhere.
        """
        ...

    async def probe_models(self, ep: EndpointState, timeout: float) -> tuple[str, ...]:
        """The model names the endpoint serves (empty if it cannot tell)."""
        ...

    async def probe_health(self, ep: EndpointState, path: str, timeout: float) -> bool:
        """One active health check of ``ep``: True if it answered ``path`` with 2xx.

        Transport failures (refused, reset, timed out) raise; the checker counts them
        as failed checks.
        """
        ...

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """Connection pool sizes per endpoint URL."""
        ...

    def forget(self, url: str) -> None:
        """An endpoint left the cluster: close its idle connections."""
        ...

    async def close(self) -> None:
        """Close every connection (the cluster was retired and drained)."""
        ...


class UpstreamFactory(Protocol):
    """Builds the adapter of a cluster."""

    def __call__(self, config: ClusterConfig) -> Upstream: ...
