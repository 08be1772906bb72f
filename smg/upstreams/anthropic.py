"""``protocol: anthropic``: Anthropic's Messages API behind the OpenAI-shaped gateway.

An OpenAI chat request is translated (``smg.protocol.anthropic.request_out``) and sent to
``{base}/v1/messages`` with ``x-api-key`` (``provider_auth``), ``anthropic-version``
(``provider.api_version``, else the version an Anthropic client sent, else 2023-06-01)
and ``provider.headers``; the answer comes back as ``chat.completion`` or, streamed, as
chunks (``stream_in``). A client that spoke Anthropic (``/v1/messages``) is served by
**passthrough**: its own body goes out (the model replaced if a filter or route changed
it, or ``provider.model_map`` renames it) and the native answer is relayed untranslated.
``count_tokens`` is passthrough only.

``send`` returns once the first stream event is in, so an HTTP error (401, 429 with its
``retry-after``, 529 overloaded, 5xx) and an ``error`` event in place of
``message_start`` are raised before any byte reached the client: 429 and 5xx are
retryable, so retries and route fallbacks (to another provider too) happen there.
Errors carry the Anthropic body and are re-rendered for OpenAI clients; a rejected
gateway key is reworded, never echoed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import orjson

from smg.clusters.endpoint import EndpointState
from smg.errors import (
    BadRequest,
    GatewayError,
    UpstreamError,
    UpstreamReset,
    UpstreamStatus,
    UpstreamTimeout,
)
from smg.protocol.anthropic import errors
from smg.protocol.anthropic.request_out import openai_to_messages
from smg.protocol.anthropic.response import message_to_openai
from smg.protocol.anthropic.shapes import API_VERSION, COUNT_TOKENS_PATH, MESSAGES_PATH
from smg.protocol.anthropic.stream_in import MessagesToChunks, raise_stream_error
from smg.protocol.request import GatewayRequest, GatewayResponse
from smg.protocol.sse import SseDecoder, SseEvent
from smg.upstreams.cloud_http import (
    is_clients_key,
    key_rejected_message,
    relayed_provider_headers,
    request_key,
    split_base,
    with_query,
)
from smg.upstreams.headers import relayed_headers, upstream_headers
from smg.upstreams.http_client import UpstreamResponse
from smg.upstreams.http_pools import HttpPoolUpstream
from smg.upstreams.provider_auth import CLIENT_CREDENTIAL_HEADERS, auth_headers

if TYPE_CHECKING:
    from smg.filters.base import RequestContext

_EVENT_STREAM = "text/event-stream"
_JSON = "application/json"
_ANTHROPIC = errors.ANTHROPIC


def _stream_options(doc: dict[str, Any]) -> bool:
    so = doc.get("stream_options")
    return isinstance(so, dict) and bool(so.get("include_usage"))


class AnthropicUpstream(HttpPoolUpstream):
    """Adapter for ``protocol: anthropic``."""

    def _path(self, ep: EndpointState, path: str) -> str:
        base, query = split_base(ep.url)
        if base.endswith("/v1"):
            base = base[:-3]  # both https://api.anthropic.com and …/v1 are base URLs
        return with_query(base + path, query)

    def _headers(
        self, req: GatewayRequest | None, key: str | None, passthrough: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """Ours (version, key, ``provider.headers``); on passthrough the client's pass too.

        The client's credential headers never go out; only the key ``provider_auth`` chose.
        """
        cfg = self.config.provider
        version = cfg.api_version
        if version is None and req is not None and req.dialect == _ANTHROPIC:
            version = req.headers.get("anthropic-version")
        extra: dict[str, str] = {
            "accept-encoding": "identity",
            "content-type": _JSON,
            "anthropic-version": version or API_VERSION,
        }
        if req is not None:
            extra.update(req.upstream_headers)
        extra.update(cfg.headers)
        extra.update(auth_headers("anthropic", key))
        if req is None or not passthrough:
            return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        dropped = CLIENT_CREDENTIAL_HEADERS.union(req.dropped_headers)
        return upstream_headers(req.raw_headers, extra, dropped)

    def _body(self, req: GatewayRequest) -> tuple[str, bytes, bool]:
        """``(path, body, passthrough)`` of the provider request."""
        model = req.json.get("model")
        if isinstance(model, str):
            model = self.config.provider.provider_model(model)
        if req.dialect == _ANTHROPIC and req.native is not None:
            path = COUNT_TOKENS_PATH if req.kind == "tokenize" else MESSAGES_PATH
            if model == req.native.get("model"):
                return path, req.native_body, True
            native = dict(req.native)
            native["model"] = model
            return path, orjson.dumps(native), True
        if req.kind != "chat":
            raise BadRequest(
                f"Cluster '{self.config.name}' speaks the Anthropic Messages API and serves "
                f"chat requests only, not {req.path}.",
                status=404,
                code="unsupported_path",
            )
        req.check_translated()
        out = openai_to_messages(req.json)
        out["model"] = model
        return MESSAGES_PATH, orjson.dumps(out), False

    async def send(self, ctx: RequestContext, ep: EndpointState) -> GatewayResponse:
        """Send to Anthropic; returns once the answer's head (and first event) is in."""
        req = ctx.request
        path, body, passthrough = self._body(req)
        t = self.config.timeouts
        key = request_key(self.config, req)
        per_try = self.attempt_timeout(ctx)
        started = time.monotonic()
        up = await self._pool(ep).request(
            "POST",
            self._path(ep, path),
            self._headers(req, key, passthrough),
            body,
            connect_timeout=min(t.connect, per_try),
            first_byte_timeout=per_try,
        )
        headers = relayed_provider_headers(relayed_headers(up.headers))
        if up.status >= 400:
            try:
                data = await up.read(t.idle)
            finally:
                up.release()
            raise self._error(up.status, data, up.content_type, headers, req, key)
        resp = GatewayResponse(
            status=up.status,
            content_type=up.content_type,
            headers=headers,
            dialect=_ANTHROPIC if passthrough else "openai",
        )
        if up.content_type.startswith(_EVENT_STREAM):
            left = max(per_try - (time.monotonic() - started), 0.001)
            resp.stream = await self._stream(req, up, passthrough, left)
            resp.on_close(lambda _exc: up.release())
            return resp
        left = ctx.deadline - time.monotonic() if ctx.deadline else t.idle
        try:
            data = await up.read(min(t.idle, max(left, 0.001)))
        finally:
            up.release()
        if passthrough:
            resp.body = data
        else:
            try:
                msg = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise UpstreamError("Anthropic answered with a body that is not JSON.") from None
            resp.body = orjson.dumps(message_to_openai(msg))
            resp.content_type = _JSON
        return resp

    async def _stream(
        self, req: GatewayRequest, up: UpstreamResponse, passthrough: bool, timeout: float
    ) -> AsyncIterator[bytes]:
        """Wait for the first event (an ``error`` there is raised: nothing was sent yet)."""
        # iter_chunks is an async generator: closing it abandons an unfinished connection.
        chunks = cast(AsyncGenerator[bytes, None], up.iter_chunks(self.config.timeouts.idle))
        decoder = SseDecoder()
        head: list[bytes] = []
        events: list[SseEvent] = []
        try:
            async with asyncio.timeout(timeout):
                while not events:
                    data = await anext(chunks, None)
                    if data is None:
                        raise UpstreamReset("Anthropic ended the stream before its first event.")
                    head.append(data)
                    events = decoder.feed(data)
            first = _json(events[0].data)
            if isinstance(first, dict) and first.get("type") == "error":
                raise_stream_error(events[0].data, first)
        except TimeoutError:
            await chunks.aclose()
            raise UpstreamTimeout(f"No event from Anthropic within {timeout:g}s.") from None
        except BaseException:
            await chunks.aclose()
            raise
        if passthrough:
            return _relay(head, chunks)
        tr = MessagesToChunks(_stream_options(req.json), req.model)
        return _translate(tr, decoder, events, chunks)

    def _error(
        self,
        status: int,
        body: bytes,
        ctype: str,
        headers: list[tuple[str, str]],
        req: GatewayRequest,
        key: str | None,
    ) -> UpstreamStatus:
        """The provider's error, in Anthropic's shape, retryable for 429 and 5xx."""
        if status in (401, 403) and not is_clients_key(self.config, req, key):
            msg = key_rejected_message(self.config.name, "anthropic", status, bool(key))
            body = errors.render(status, msg)
        elif not (ctype.startswith(_JSON) and _is_anthropic_error(body)):
            body = errors.render(status, f"Anthropic answered {status}.")
        return UpstreamStatus(status, body, _JSON, dict(headers), dialect=_ANTHROPIC)

    async def probe_models(self, ep: EndpointState, timeout: float) -> tuple[str, ...]:
        """``GET {base}/v1/models`` with the configured key."""
        headers = self._headers(None, request_key(self.config, None))
        up = await self._pool(ep).request(
            "GET",
            self._path(ep, "/v1/models?limit=1000"),
            headers,
            b"",
            first_byte_timeout=timeout,
        )
        try:
            body = await up.read(timeout)
        finally:
            up.release()
        if up.status != 200:
            return ()
        doc = orjson.loads(body)
        data = doc.get("data", ()) if isinstance(doc, dict) else ()
        return tuple(str(m["id"]) for m in data if isinstance(m, dict) and "id" in m)


def _json(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _is_anthropic_error(body: bytes) -> bool:
    doc = _json(body)
    return isinstance(doc, dict) and isinstance(doc.get("error"), dict)


async def _relay(head: list[bytes], rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """The native stream, untouched: what was read ahead, then the rest as it comes."""
    try:
        yield b"".join(head)
        async for data in rest:
            yield data
    finally:
        await rest.aclose()


async def _translate(
    tr: MessagesToChunks,
    decoder: SseDecoder,
    first: list[SseEvent],
    rest: AsyncGenerator[bytes, None],
) -> AsyncIterator[bytes]:
    """Anthropic events → OpenAI chunks, one output piece per input piece.

    What an input piece translated to before an ``error`` event in it is still sent, then
    the error ends the stream.
    """
    try:
        events = first
        while True:
            out: list[bytes] = []
            failure: GatewayError | None = None
            try:
                for ev in events:
                    out.append(tr.feed(ev.data))
            except GatewayError as exc:
                failure = exc
            joined = b"".join(out)
            if joined:
                yield joined
            if failure is not None:
                raise failure
            data = await anext(rest, None)
            if data is None:
                break
            events = decoder.feed(data)
        if not tr.done:
            raise UpstreamReset("The Anthropic stream ended before message_stop.")
    finally:
        await rest.aclose()
