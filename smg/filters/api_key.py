"""``api_key``: Bearer-token authentication against keys from the config or the environment."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from smg.errors import Unauthorized
from smg.filters.base import Filter, RequestContext
from smg.protocol.request import GatewayResponse


class ApiKeyFilter(Filter):
    """Rejects requests without a known key with a 401 in OpenAI form."""

    type_name = "api_key"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "keys": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "default": [],
                "description": "Accepted keys (use ${VAR} to keep them out of the file).",
            },
            "keys_env": {
                "type": "string",
                "description": "Environment variable holding comma-separated keys.",
            },
            "header": {
                "type": "string",
                "default": "authorization",
                "description": "Header carrying the key; 'authorization' expects 'Bearer KEY'.",
            },
            "strip": {
                "type": "boolean",
                "default": True,
                "description": "Remove the key header before forwarding to workers.",
            },
        },
    }

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        keys = [str(k) for k in config.get("keys", ())]
        env = config.get("keys_env")
        if env:
            keys.extend(k.strip() for k in os.environ.get(str(env), "").split(",") if k.strip())
        self._keys = tuple(k.encode() for k in keys)
        self.header = str(config.get("header", "authorization")).lower()
        self.strip = bool(config.get("strip", True))

    def _presented(self, ctx: RequestContext) -> str | None:
        raw = ctx.request.headers.get(self.header)
        if raw is None and self.header == "authorization":
            raw = ctx.request.headers.get("x-api-key")
            return raw
        if raw is not None and self.header == "authorization":
            scheme, _, token = raw.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
        return raw

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        """Check the key in constant time against every accepted key."""
        key = self._presented(ctx)
        if key is None:
            raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
        given = key.encode()
        ok = False
        for k in self._keys:
            ok |= hmac.compare_digest(given, k)
        if not ok:
            raise Unauthorized("Incorrect API key provided.")
        if self.strip:
            ctx.request.dropped_headers.add(self.header)
            ctx.request.dropped_headers.add("x-api-key")
        return None
