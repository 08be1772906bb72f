"""The filter interface: named phases with no-op defaults, and the per-request context.

Phases (Envoy order): ``on_request`` runs in configured order and may answer early by
returning a response; the terminal ``router`` filter always answers. ``on_response``,
``on_chunk`` and ``on_stream_end`` run in reverse order over the filters that ran;
``on_complete`` always runs, errors included. A filter implements only the phases it
needs; the chain works out once which filter implements which phase.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from smg.errors import GatewayError
from smg.protocol.request import GatewayRequest, GatewayResponse

if TYPE_CHECKING:
    from smg.observability.access import StreamStats
    from smg.observability.tracing import RequestTrace
    from smg.runtime.snapshot import ListenerRuntime, Snapshot

T = TypeVar("T")


class StateKey(Generic[T]):
    """A typed key for per-request state shared between filters."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"


@dataclass(slots=True, eq=False)
class RequestContext:
    """Everything one request carries through the chain; lives as long as the request."""

    request: GatewayRequest
    snapshot: Snapshot
    listener: ListenerRuntime
    client_addr: str | None = None
    request_id: str = ""
    started: float = field(default_factory=time.monotonic)
    deadline: float = 0.0
    """Monotonic time by which the whole request must be answered (0: none)."""
    response_headers: dict[str, str] = field(default_factory=dict)
    route_name: str | None = None
    cluster_name: str | None = None
    endpoint_url: str | None = None
    attempts: int = 0
    route_reason: str | None = None
    """Why the last attempt went to ``endpoint_url`` (the LB policy's ``reason()``)."""
    status: int = 0
    error: GatewayError | None = None
    first_byte_at: float | None = None
    client_disconnected: bool = False
    shutdown: bool = False
    """Set when the gateway's drain deadline, not the client, ends this request."""
    stream_stats: StreamStats | None = None
    """Chunk timing of a streamed answer (set by the writer)."""
    response_body: bytes | None = None
    """The whole answer body (not for streams), before any dialect re-encoding."""
    response_dialect: str = "openai"
    """The dialect ``response_body`` is written in."""
    trace: RequestTrace | None = None
    """This request's spans (None when tracing is off)."""
    state: dict[StateKey[Any], Any] = field(default_factory=dict)

    def get(self, key: StateKey[T], default: T) -> T:
        """Typed read of per-request state."""
        value: T = self.state.get(key, default)
        return value

    def put(self, key: StateKey[T], value: T) -> None:
        """Typed write of per-request state."""
        self.state[key] = value


class Filter:
    """Base class of every filter; override only the phases you need."""

    type_name: ClassVar[str] = ""
    """The name this filter type is registered under."""
    config_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "additionalProperties": False}
    """JSON Schema of this filter type's ``config``; validated before construction."""
    terminal: ClassVar[bool] = False

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        self.name = name
        self.config = config

    def inherit(self, previous: Filter) -> None:
        """Take over state from the same-named instance of the previous snapshot."""

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        """Inspect or change the request; return a response to answer without going on."""
        return None

    async def on_response(self, ctx: RequestContext, resp: GatewayResponse) -> GatewayResponse:
        """Inspect or change a response (for a stream: its head, before the first chunk)."""
        return resp

    def on_chunk(self, ctx: RequestContext, chunk: bytes) -> bytes:
        """Inspect or change one streamed chunk of bytes on its way to the client."""
        return chunk

    async def on_stream_end(self, ctx: RequestContext) -> bytes | None:
        """A stream ended normally; may return bytes to append before it closes."""
        return None

    def on_complete(self, ctx: RequestContext) -> None:
        """Always runs last, errors and disconnects included: accounting and logs."""

    async def close(self) -> None:
        """The snapshot holding this instance was retired and drained."""


def implements(f: Filter, phase: str) -> bool:
    """Does ``f`` override ``phase`` (so the chain calls it)."""
    return getattr(type(f), phase) is not getattr(Filter, phase)
