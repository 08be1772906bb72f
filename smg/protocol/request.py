"""The internal request and response shapes every filter and adapter works on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from smg.errors import GatewayError

# Paths the gateway understands, and what kind of request each is.
KIND_BY_PATH: dict[str, str] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
    "/generate": "generate",
    "/v1/tokenize": "tokenize",
    "/v1/detokenize": "detokenize",
}


@dataclass(slots=True, eq=False)
class GatewayRequest:
    """One decoded client request; the body is parsed once and re-encoded only if changed."""

    method: str
    path: str
    kind: str
    headers: Mapping[str, str]
    body: bytes
    json: dict[str, Any]
    model: str | None
    stream: bool
    body_changed: bool = False
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()
    """The client's headers as received (forwarded without re-encoding)."""
    upstream_headers: dict[str, str] = field(default_factory=dict)
    """Headers filters add (or override) on the way to the worker."""
    dropped_headers: set[str] = field(default_factory=set)
    """Lower-case header names filters removed from what the worker sees."""
    dialect: str = "openai"
    """The API the client spoke (``anthropic`` for ``/v1/messages``); ``json`` is OpenAI-shaped."""
    openai_path: str = ""
    """For another dialect: the OpenAI path the translated request stands for."""
    native: dict[str, Any] | None = None
    """For another dialect: the client's own body, parsed (sent as is on passthrough)."""
    native_body: bytes = b""
    """For another dialect: the client's own body bytes."""
    translation_error: GatewayError | None = None
    """Why ``json`` is not a faithful translation (raised by adapters that need it)."""

    def relay_path(self) -> str:
        """The OpenAI API path to relay ``json`` to (the client's path for OpenAI clients)."""
        return self.openai_path or self.path

    def check_translated(self) -> None:
        """Raise if the client's request could not be fully translated to OpenAI's shape."""
        if self.translation_error is not None:
            raise self.translation_error

    def set_field(self, key: str, value: Any) -> None:
        """Change one top-level body field; the body is re-encoded before sending."""
        self.json[key] = value
        self.body_changed = True

    def body_bytes(self) -> bytes:
        """The bytes to send upstream: the original ones unless a filter changed the body."""
        if self.body_changed:
            self.body = orjson.dumps(self.json)
            self.body_changed = False
        return self.body


CloseHook = Callable[[BaseException | None], None]


@dataclass(slots=True, eq=False)
class GatewayResponse:
    """An answer on its way to the client: a whole body, or a stream of byte chunks."""

    status: int
    content_type: str
    headers: list[tuple[str, str]]
    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    json: dict[str, Any] | None = None
    close_hooks: list[CloseHook] = field(default_factory=list)
    aclose_stream: Callable[[], Awaitable[None]] | None = None
    dialect: str = "openai"
    """The API dialect the body or stream is written in (the writer translates if it differs)."""
    _closed: bool = False

    def on_close(self, hook: CloseHook) -> None:
        """Run ``hook`` once when the response is finished, failed or abandoned."""
        self.close_hooks.append(hook)

    def close(self, exc: BaseException | None = None) -> None:
        """Finish the response: release load guards, record outcomes (runs hooks once)."""
        if self._closed:
            return
        self._closed = True
        for hook in self.close_hooks:
            hook(exc)
