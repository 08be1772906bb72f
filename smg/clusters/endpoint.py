"""Endpoint identity (frozen) and its live state (survives config reloads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from smg.clusters.engine_metrics import EngineLoad
    from smg.clusters.outlier import Breaker

# Circuit states; EndpointState.circuit holds one so the hot path compares small ints.
CIRCUIT_CLOSED = 0
CIRCUIT_HALF_OPEN = 1
CIRCUIT_OPEN = 2


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Who a worker is: its URL. Two configs naming the same URL mean the same worker."""

    url: str
    host: str
    port: int
    scheme: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Split ``http://host:port`` (also ``grpc://``, ``https://``) into its parts."""
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "http", url
        hostport = rest.split("/", 1)[0]
        if hostport.startswith("["):
            host, _, port_s = hostport[1:].partition("]")
            port_s = port_s.lstrip(":")
        else:
            host, _, port_s = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        default = 443 if scheme == "https" else 80
        port = int(port_s) if port_s else default
        return cls(url=url.rstrip("/"), host=host, port=port, scheme=scheme)


@dataclass(slots=True, eq=False)
class EndpointState:
    """Mutable, per-process state of one endpoint: load, health, circuit, weight.

    The snapshot builder hands the same object to the next snapshot when the
    endpoint's identity is unchanged, so learned state survives reloads.

    Two independent reasons take an endpoint out of rotation: the active health check
    (``healthy`` False, see ``clusters/health.py``) and the circuit breaker (``circuit``
    not closed, see ``clusters/outlier.py``).
    """

    endpoint: Endpoint
    weight: int = 1
    in_flight: int = 0
    healthy: bool = True
    """The health check's verdict as routing reads it (True until proven unhealthy)."""
    health: str = "unknown"
    """``unknown`` (not checked, or no answer yet), ``healthy`` or ``unhealthy``."""
    health_successes: int = 0
    health_failures: int = 0
    health_owner: object | None = None
    """The health checker in charge; an older cluster's checker stops when replaced."""
    circuit: int = CIRCUIT_CLOSED
    breaker: Breaker | None = None
    total_requests: int = 0
    total_failures: int = 0
    models: tuple[str, ...] = field(default_factory=tuple)
    engine: EngineLoad | None = None
    """The worker's own load report from its ``/metrics`` (None: not scraped or stale)."""

    @property
    def url(self) -> str:
        """The endpoint's URL (its identity)."""
        return self.endpoint.url

    @property
    def available(self) -> bool:
        """May this endpoint take new requests right now."""
        if self.circuit == CIRCUIT_CLOSED:  # the common case costs one comparison
            return self.healthy
        breaker = self.breaker
        return self.healthy and (breaker is None or breaker.admits())

    def acquire(self) -> LoadGuard:
        """Count one request in flight until the returned guard is released.

        On a half-open endpoint the request also takes a probe slot (if one is free),
        which the guard gives back on release.
        """
        self.in_flight += 1
        self.total_requests += 1
        if self.circuit == CIRCUIT_CLOSED or self.breaker is None:
            return LoadGuard(self)
        return LoadGuard(self, self.breaker.take_probe())


class LoadGuard:
    """Releases an endpoint's in-flight count (and probe slot) exactly once, on every path."""

    __slots__ = ("_probe", "_released", "state")

    def __init__(self, state: EndpointState, probe: bool = False) -> None:
        self.state = state
        self._released = False
        self._probe = probe

    @property
    def probe(self) -> bool:
        """Whether this request holds one of a half-open endpoint's probe slots."""
        return self._probe

    def release(self) -> None:
        """Give the slot back; later calls do nothing."""
        if not self._released:
            self._released = True
            state = self.state
            state.in_flight -= 1
            if self._probe and state.breaker is not None:
                state.breaker.release_probe()

    def __enter__(self) -> LoadGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Guard(Protocol):
    """Gives back the load an attempt took, once (``LoadGuard``, or a PD pair's guard)."""

    def release(self) -> None:
        """Give the load back; later calls do nothing."""
        ...


class Target(Protocol):
    """Where one attempt goes: an ``EndpointState``, or a prefill/decode pair (``pd.py``).

    ``url`` and ``endpoint`` name the endpoint the attempt is attributed to (for a pair:
    its decode endpoint, or the leg that failed), and ``total_failures`` counts there.
    """

    total_failures: int

    @property
    def url(self) -> str:
        """The URL the attempt is attributed to."""
        ...

    @property
    def endpoint(self) -> Endpoint:
        """The identity of the endpoint the attempt is attributed to."""
        ...

    def acquire(self) -> Guard:
        """Count the attempt in flight until the guard is released."""
        ...
