"""Endpoint identity (frozen) and its live state (survives config reloads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType


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
    """Mutable, per-process state of one endpoint: load, health, weight.

    The snapshot builder hands the same object to the next snapshot when the
    endpoint's identity is unchanged, so learned state survives reloads.
    """

    endpoint: Endpoint
    weight: int = 1
    in_flight: int = 0
    healthy: bool = True
    total_requests: int = 0
    total_failures: int = 0
    models: tuple[str, ...] = field(default_factory=tuple)

    @property
    def url(self) -> str:
        """The endpoint's URL (its identity)."""
        return self.endpoint.url

    @property
    def available(self) -> bool:
        """May this endpoint take new requests right now."""
        return self.healthy

    def acquire(self) -> LoadGuard:
        """Count one request in flight until the returned guard is released."""
        self.in_flight += 1
        self.total_requests += 1
        return LoadGuard(self)


class LoadGuard:
    """Releases an endpoint's in-flight count exactly once, on every path."""

    __slots__ = ("_released", "state")

    def __init__(self, state: EndpointState) -> None:
        self.state = state
        self._released = False

    def release(self) -> None:
        """Give the slot back; later calls do nothing."""
        if not self._released:
            self._released = True
            self.state.in_flight -= 1

    def __enter__(self) -> LoadGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
