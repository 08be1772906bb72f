"""The load-balancing policy interface shared by every policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smg.clusters.endpoint import EndpointState
from smg.clusters.prefix.text import routed_text


@dataclass(slots=True)
class PickContext:
    """What a policy may look at to choose an endpoint for one request."""

    headers: Mapping[str, str]
    body: Mapping[str, Any] | None
    model: str | None
    text: str | None = None
    """The prompt text as the engine will see it; ``routed_text()`` fills it on first use."""
    kind: str | None = None
    """The request kind (``chat``, ``completions``, ``generate``, ``embeddings``)."""
    note: Any = None
    """What the last pick predicted for this request (read back by ``observe``)."""
    token_ids: Sequence[int] | None = None
    """gRPC mode: the prompt as the engine will see it, in token ids (the tokenize filter's)."""

    def routed_key(self) -> str | tuple[int, ...]:
        """What prefix-aware policies match on: the token ids when the gateway has them
        (gRPC mode: exactly the engine's prefix), else the routed text. Computed once, and
        only if a policy asks (the ids become a tuple here, not for every request)."""
        ids = self.token_ids
        if not ids:
            return self.routed_text()
        if not isinstance(ids, tuple):
            ids = self.token_ids = tuple(ids)
        return ids

    def routed_text(self) -> str:
        """The conversation text to route on, computed once and only if a policy asks."""
        text = self.text
        if text is None:
            text = self.text = routed_text(self.kind, self.body)
        return text


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
