"""A custom SMG filter: tag each request with a tenant header and echo it to the client."""

from collections.abc import Mapping
from typing import Any, ClassVar

from smg.filters.base import Filter, RequestContext
from smg.protocol.request import GatewayResponse


class TenantHeader(Filter):
    """Adds ``x-tenant`` (from config) upstream and ``x-served-by`` to the response."""

    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["tenant"],
        "properties": {"tenant": {"type": "string", "minLength": 1}},
    }

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        ctx.request.upstream_headers["x-tenant"] = self.config["tenant"]
        return None

    async def on_response(self, ctx: RequestContext, resp: GatewayResponse) -> GatewayResponse:
        ctx.response_headers["x-served-by"] = f"{self.name}/{ctx.endpoint_url}"
        return resp
