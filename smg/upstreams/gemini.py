"""``protocol: gemini``: OpenAI chat requests served by Google's Gemini API.

``POST {base}/{version}/models/{model}:generateContent`` (or
``:streamGenerateContent?alt=sse`` for a stream), ``version`` = ``provider.api_version``
or ``v1beta``, the key as ``x-goog-api-key``. The body is translated by
``smg.protocol.gemini.request``, the answer back by ``response`` / ``stream``, errors by
``errors`` (429 and 5xx stay retryable, so route fallbacks work).

``send`` returns once the first translated bytes are ready, so a provider that accepts
the connection and then says nothing is a timeout the router can fall back from.
Gemini 3 thought signatures of tool calls are kept per cluster (bounded, by tool-call
id) and replayed when the client sends the call back in its history.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Final, cast
from urllib.parse import quote

import orjson

from smg.clusters.endpoint import EndpointState
from smg.errors import GatewayError, NotFound, UpstreamError, UpstreamStatus, UpstreamTimeout
from smg.protocol.gemini.errors import read_error
from smg.protocol.gemini.request import to_gemini
from smg.protocol.gemini.response import to_chat_completion
from smg.protocol.gemini.stream import GeminiStreamTranslator
from smg.protocol.request import GatewayResponse
from smg.protocol.sse import SseDecoder
from smg.upstreams.cloud_http import (
    is_clients_key,
    key_rejected_message,
    provider_headers,
    relayed_provider_headers,
    request_key,
    split_base,
    with_query,
)
from smg.upstreams.headers import relayed_headers
from smg.upstreams.http_client import UpstreamResponse
from smg.upstreams.http_pools import HttpPoolUpstream

if TYPE_CHECKING:
    from smg.config.model import ClusterConfig
    from smg.filters.base import RequestContext

DEFAULT_VERSION: Final = "v1beta"
_JSON: Final = "application/json"
_EVENT_STREAM: Final = "text/event-stream"
_MAX_SIGNATURES: Final = 10_000


class _Signatures:
    """Tool-call id → Gemini thoughtSignature, least recently stored dropped first."""

    def __init__(self, limit: int = _MAX_SIGNATURES) -> None:
        self._map: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def put(self, call_id: str, signature: str) -> None:
        self._map[call_id] = signature
        self._map.move_to_end(call_id)
        while len(self._map) > self._limit:
            self._map.popitem(last=False)

    def get(self, call_id: str) -> str | None:
        return self._map.get(call_id)


async def _translated(
    up: UpstreamResponse, tr: GeminiStreamTranslator, idle: float
) -> AsyncGenerator[bytes, None]:
    """Gemini SSE body → OpenAI SSE bytes, one piece per upstream read that completes events."""
    chunks = cast(AsyncGenerator[bytes, None], up.iter_chunks(idle))
    decoder = SseDecoder()
    try:
        async for chunk in chunks:
            out = b"".join([tr.feed(ev.data) for ev in decoder.feed(chunk)])
            if out:
                yield out
        yield tr.end()
    finally:
        await chunks.aclose()
        up.release()


async def _prepend(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for piece in rest:
            yield piece
    finally:
        await rest.aclose()


class GeminiUpstream(HttpPoolUpstream):
    """Adapter for ``protocol: gemini``."""

    def __init__(self, config: ClusterConfig) -> None:
        super().__init__(config)
        self.version = config.provider.api_version or DEFAULT_VERSION
        self._signatures = _Signatures()

    def _path(self, ep: EndpointState, tail: str) -> str:
        base, query = split_base(ep.url)
        return with_query(f"{base}/{self.version}/{tail}", query)

    async def send(self, ctx: RequestContext, ep: EndpointState) -> GatewayResponse:
        """Translate, send, and return once the first translated bytes are in."""
        req = ctx.request
        req.check_translated()
        if req.kind != "chat":
            raise NotFound(f"{req.path} is not served by Gemini clusters (chat completions only).")
        model = self.config.provider.provider_model(req.model or "").removeprefix("models/")
        body = orjson.dumps(to_gemini(req.json, self._signatures.get))
        stream = req.stream
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path = self._path(ep, f"models/{quote(model, safe='-._~')}:{method}")
        key = request_key(self.config, req)
        t = self.config.timeouts
        per_try = self.attempt_timeout(ctx)
        started = time.monotonic()
        up = await self._pool(ep).request(
            "POST",
            path,
            provider_headers(self.config, req, key, forward_client=False),
            body,
            connect_timeout=min(t.connect, per_try),
            first_byte_timeout=per_try,
        )
        headers = relayed_provider_headers(relayed_headers(up.headers))
        if up.status >= 400:
            try:
                raw = await up.read(t.idle)
            finally:
                up.release()
            raise self._error(up.status, raw, headers, ctx, key)
        if not stream:
            left = ctx.deadline - time.monotonic() if ctx.deadline else t.idle
            try:
                raw = await up.read(min(t.idle, max(left, 0.001)))
            finally:
                up.release()
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise UpstreamError("Gemini sent an unreadable answer.") from None
            if not isinstance(doc, dict):
                raise UpstreamError("Gemini sent an unreadable answer.")
            out = to_chat_completion(doc, model, self._signatures.put)
            return GatewayResponse(
                status=200, content_type=_JSON, headers=headers, body=orjson.dumps(out)
            )
        so = req.json.get("stream_options")
        include_usage = isinstance(so, dict) and bool(so.get("include_usage"))
        tr = GeminiStreamTranslator(model, include_usage, self._signatures.put)
        pieces = _translated(up, tr, t.idle)
        wait = max(per_try - (time.monotonic() - started), 0.001)
        try:
            async with asyncio.timeout(wait):
                first = await anext(pieces)
        except TimeoutError:
            await pieces.aclose()
            raise UpstreamTimeout(f"No stream event from Gemini within {per_try:g}s.") from None
        except BaseException:
            await pieces.aclose()
            raise
        resp = GatewayResponse(status=200, content_type=_EVENT_STREAM, headers=headers)
        resp.stream = _prepend(first, pieces)
        return resp

    def _error(
        self,
        status: int,
        raw: bytes,
        headers: list[tuple[str, str]],
        ctx: RequestContext,
        key: str | None,
    ) -> GatewayError:
        ge = read_error(status, raw)
        message = None
        if (ge.key_invalid or ge.status in (401, 403)) and not is_clients_key(
            self.config, ctx.request, key
        ):
            message = key_rejected_message(self.config.name, "gemini", status, bool(key))
        out_headers = {**dict(headers), **ge.headers}
        return UpstreamStatus(ge.status, ge.openai_body(message), _JSON, out_headers)

    async def probe_models(self, ep: EndpointState, timeout: float) -> tuple[str, ...]:
        """``GET {base}/{version}/models``: the models that can ``generateContent``."""
        headers = provider_headers(self.config, None, request_key(self.config, None))
        up = await self._pool(ep).request(
            "GET", self._path(ep, "models?pageSize=1000"), headers, b"", first_byte_timeout=timeout
        )
        try:
            raw = await up.read(timeout)
        finally:
            up.release()
        if up.status != 200:
            return ()
        doc = orjson.loads(raw)
        names: list[str] = []
        for m in doc.get("models", ()) if isinstance(doc, dict) else ():
            if not isinstance(m, dict) or not isinstance(m.get("name"), str):
                continue
            methods = m.get("supportedGenerationMethods")
            if isinstance(methods, list) and "generateContent" not in methods:
                continue
            names.append(m["name"].removeprefix("models/"))
        return tuple(names)
