"""``protocol: openai`` / ``openai_compatible``: OpenAI's cloud API or any API shaped like it.

The body goes out as the client sent it (filters' changes included) to the endpoint's base
URL (``https://api.openai.com/v1`` and ``https://host/openai/v1`` alike; a bare host means
``/v1``), with the provider key as ``Authorization: Bearer``, ``provider.headers``, TLS,
and none of the client's credential headers. Answers and streams are relayed as they come.

Errors: a provider error body (already OpenAI-shaped) is relayed with its status, so 429
(with its ``retry-after``) and 5xx stay retryable and route fallbacks work before the
first byte. A 401/403 caused by the key the gateway holds is reworded to say so, without
the provider's message (OpenAI echoes part of the key in it).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from smg.clusters.endpoint import EndpointState
from smg.errors import NotFound, UpstreamStatus
from smg.protocol.request import GatewayResponse
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
from smg.upstreams.http_pools import HttpPoolUpstream

if TYPE_CHECKING:
    from smg.filters.base import RequestContext

_EVENT_STREAM = "text/event-stream"
_JSON = "application/json"


def _openai_error(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


def _error_field(body: bytes) -> dict[str, Any] | None:
    """The ``error`` object of an OpenAI-shaped error body, if it is one."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    err = doc.get("error") if isinstance(doc, dict) else None
    return err if isinstance(err, dict) else None


class OpenAICloudUpstream(HttpPoolUpstream):
    """Adapter for ``protocol: openai`` and ``openai_compatible``."""

    def _target(self, ep: EndpointState, path: str) -> str:
        base, query = split_base(ep.url)
        if path.startswith("/v1/"):
            path = (base or "/v1") + path[3:]
        elif base:
            raise NotFound(f"{path} is not an OpenAI API path; this cluster serves /v1/… only.")
        return with_query(path, query)

    async def send(self, ctx: RequestContext, ep: EndpointState) -> GatewayResponse:
        """Send to the provider; the head is in when this returns."""
        req = ctx.request
        req.check_translated()
        t = self.config.timeouts
        key = request_key(self.config, req)
        per_try = self.attempt_timeout(ctx)
        body = req.body_bytes()
        if self.config.provider.model_map and req.model is not None:
            theirs = self.config.provider.provider_model(req.model)
            if theirs != req.model:
                # Not set_field: a fallback cluster must still see the model asked for.
                body = orjson.dumps({**req.json, "model": theirs})
        up = await self._pool(ep).request(
            req.method,
            self._target(ep, req.relay_path()),
            provider_headers(self.config, req, key),
            body,
            connect_timeout=min(t.connect, per_try),
            first_byte_timeout=per_try,
        )
        ctype = up.content_type
        headers = relayed_provider_headers(relayed_headers(up.headers))
        if up.status >= 400:
            try:
                body = await up.read(t.idle)
            finally:
                up.release()
            raise self._error(up.status, body, ctype, headers, ctx, key)
        resp = GatewayResponse(status=up.status, content_type=ctype, headers=headers)
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

    def _error(
        self,
        status: int,
        body: bytes,
        ctype: str,
        headers: list[tuple[str, str]],
        ctx: RequestContext,
        key: str | None,
    ) -> UpstreamStatus:
        """The provider's error as an OpenAI-shaped ``UpstreamStatus`` (retryable 429/5xx)."""
        err = _error_field(body) if ctype.startswith(_JSON) or body[:1] == b"{" else None
        if status in (401, 403) and not is_clients_key(self.config, ctx.request, key):
            code = err.get("code") if err else None
            body = _openai_error(
                key_rejected_message(self.config.name, self.config.protocol, status, bool(key)),
                "authentication_error",
                "provider_auth_failed" if code is None else f"provider_{code}",
            )
        elif err is None:
            kind = "server_error" if status >= 500 else "invalid_request_error"
            body = _openai_error(f"The provider answered {status}.", kind, f"provider_{status}")
        return UpstreamStatus(status, body, _JSON, dict(headers))

    async def probe_models(self, ep: EndpointState, timeout: float) -> tuple[str, ...]:
        """``GET {base}/models`` with the configured key."""
        headers = provider_headers(self.config, None, request_key(self.config, None))
        up = await self._pool(ep).request(
            "GET", self._target(ep, "/v1/models"), headers, b"", first_byte_timeout=timeout
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
