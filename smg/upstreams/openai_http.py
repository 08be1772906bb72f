"""HTTP mode: relay OpenAI-compatible requests to vLLM / SGLang / TRT-LLM HTTP servers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson

from smg.clusters.endpoint import EndpointState
from smg.errors import UpstreamStatus, UpstreamTimeout
from smg.protocol.request import GatewayResponse
from smg.upstreams.headers import relayed_headers, upstream_headers
from smg.upstreams.http_pools import HttpPoolUpstream

if TYPE_CHECKING:
    from smg.filters.base import RequestContext

_EVENT_STREAM = "text/event-stream"


class OpenAIHttpUpstream(HttpPoolUpstream):
    """Adapter for ``protocol: openai_http``: bytes in, bytes out, streams relayed as they come."""

    async def send(
        self, ctx: RequestContext, ep: EndpointState, *, first_byte: float | None = None
    ) -> GatewayResponse:
        """Forward the request; the head is in when this returns.

        ``first_byte`` replaces the per-try wait for the head (a PD decode leg also waits
        for its prefill, ``pd_http.py``).
        """
        req = ctx.request
        if req.translation_error is not None:  # inlined check_translated(): the hot path
            raise req.translation_error
        t = self.config.timeouts
        headers = upstream_headers(req.raw_headers, req.upstream_headers, req.dropped_headers)
        per_try = first_byte or self.config.retry_policy.per_try_timeout or t.first_byte
        if ctx.deadline:
            left = ctx.deadline - time.monotonic()
            if left <= 0:
                raise UpstreamTimeout("The request deadline passed before it could be sent.")
            per_try = min(per_try, left)
        up = await self._pool(ep).request(
            req.method,
            req.openai_path or req.path,
            headers,
            req.body_bytes(),
            connect_timeout=min(t.connect, per_try),
            first_byte_timeout=per_try,
        )
        ctype = up.content_type
        if up.status >= 400:
            try:
                body = await up.read()
            finally:
                up.release()
            raise UpstreamStatus(up.status, body, ctype, dict(relayed_headers(up.headers)))
        resp = GatewayResponse(
            status=up.status, content_type=ctype, headers=relayed_headers(up.headers)
        )
        if ctype.startswith(_EVENT_STREAM):
            resp.stream = up.iter_chunks(t.idle)
            resp.on_close(lambda _exc: up.release())
            return resp
        left = ctx.deadline - time.monotonic() if ctx.deadline else t.idle
        try:
            resp.body = await up.read(min(t.idle, max(left, 0.001)))
        finally:
            up.release()
        return resp

    async def probe_models(self, ep: EndpointState, timeout: float) -> tuple[str, ...]:
        """Ask the worker's ``GET /v1/models``."""
        up = await self._pool(ep).request("GET", "/v1/models", [], b"", first_byte_timeout=timeout)
        try:
            body = await up.read()
        finally:
            up.release()
        if up.status != 200:
            return ()
        doc = orjson.loads(body)
        return tuple(str(m["id"]) for m in doc.get("data", ()) if isinstance(m, dict) and "id" in m)
