"""API dialects: how a client's request becomes the internal OpenAI-shaped one, and back.

Every request travels the gateway OpenAI-shaped (``GatewayRequest.json``), whatever API
the client spoke. A dialect is the pair of translations at the edge:

* **in**, at the listener decoder: an ingress path (``/v1/messages``) names its kind and
  dialect; the dialect's codec turns the client's body into an OpenAI one and keeps the
  original for passthrough (``GatewayRequest.native``);
* **out**, at the response writer: a response written in another dialect than the
  client's (``GatewayResponse.dialect``) is re-encoded — JSON bodies, SSE streams and
  errors — by the client's codec. Plain OpenAI traffic never reaches this module.

Codecs are registered by dialect name (``DIALECTS``); ingress paths are exact
(``INGRESS_PATHS``) or, for APIs that put the model in the path, prefixes
(``INGRESS_PREFIXES``) whose matcher decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from smg.errors import GatewayError
from smg.protocol.request import GatewayRequest, GatewayResponse
from smg.registry import Registry

OPENAI = "openai"


@dataclass(frozen=True, slots=True)
class Ingress:
    """An ingress path: the kind of request it carries, its dialect, its OpenAI path."""

    kind: str
    dialect: str
    openai_path: str


@dataclass(slots=True)
class Decoded:
    """A client request in a foreign dialect, translated: the OpenAI body and what it lost."""

    json: dict[str, Any]
    model: str | None
    stream: bool
    problem: GatewayError | None = None
    """Set when ``json`` is not a faithful translation (only a passthrough can serve it)."""


class DialectCodec(Protocol):
    """Translations between one API dialect and the internal OpenAI shape."""

    name: str

    def decode(self, ingress: Ingress, path: str, doc: dict[str, Any]) -> Decoded:
        """Validate the client's parsed body and translate it to an OpenAI request body."""
        ...

    def encode_body(self, req: GatewayRequest, status: int, body: bytes) -> bytes:
        """An OpenAI JSON answer (or error) to ``req`` in this dialect."""
        ...

    def encode_stream(
        self, req: GatewayRequest, stream: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """An OpenAI SSE stream answering ``req`` as this dialect's stream."""
        ...

    def error_payload(self, err: GatewayError) -> tuple[int, bytes, str]:
        """Status, body and content type of ``err`` in this dialect."""
        ...

    def stream_error_event(self, err: GatewayError) -> bytes:
        """The SSE bytes that end a stream with ``err`` in this dialect."""
        ...


DIALECTS: Registry[DialectCodec] = Registry("API dialect")
DIALECTS.register_lazy("anthropic", "smg.protocol.anthropic.codec:CODEC")
DIALECTS.register_lazy("gemini", "smg.protocol.gemini.codec:CODEC")

INGRESS_PATHS: dict[str, Ingress] = {
    "/v1/messages": Ingress("chat", "anthropic", "/v1/chat/completions"),
    "/v1/messages/count_tokens": Ingress("tokenize", "anthropic", "/v1/tokenize"),
}
_GEMINI_CHAT = Ingress("chat", "gemini", "/v1/chat/completions")


def _gemini_method(path: str) -> Ingress | None:
    """``…/models/{model}:generateContent`` / ``:streamGenerateContent`` (Gemini's API)."""
    _, sep, method = path.rpartition(":")
    ok = sep and method in ("generateContent", "streamGenerateContent")
    return _GEMINI_CHAT if ok else None


INGRESS_PREFIXES: list[tuple[str, Callable[[str], Ingress | None]]] = [
    ("/v1beta/models/", _gemini_method),
    ("/v1/models/", _gemini_method),
]
"""``(prefix, matcher)``: paths starting with ``prefix`` are ingress if ``matcher`` says so."""


def match_ingress(path: str) -> Ingress | None:
    """The ingress a non-OpenAI path stands for, or None."""
    found = INGRESS_PATHS.get(path)
    if found is not None:
        return found
    for prefix, matcher in INGRESS_PREFIXES:
        if path.startswith(prefix):
            return matcher(path)
    return None


def dialect_of_path(path: str) -> str:
    """The dialect errors on ``path`` are written in (OpenAI unless it is an ingress path)."""
    found = match_ingress(path)
    return found.dialect if found is not None else OPENAI


def codec(name: str) -> DialectCodec:
    """The codec of dialect ``name``."""
    return DIALECTS.get(name)


def encode_response(req: GatewayRequest, resp: GatewayResponse) -> None:
    """Rewrite ``resp`` (written in ``resp.dialect``) into the client's dialect, in place.

    Only OpenAI-written answers are translated; an answer already in the client's dialect
    (a passthrough) is left alone.
    """
    if resp.dialect == req.dialect or resp.dialect != OPENAI:
        return
    c = codec(req.dialect)
    if resp.stream is not None:
        resp.stream = c.encode_stream(req, resp.stream)
    elif resp.body is not None:
        resp.body = c.encode_body(req, resp.status, resp.body)
    resp.dialect = req.dialect
