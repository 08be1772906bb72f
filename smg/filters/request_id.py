"""``request_id``: keep the client's ``x-request-id`` or mint one; echo it back."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from smg.filters.base import Filter, RequestContext
from smg.protocol.request import GatewayResponse

# A random per-process prefix plus a counter: unique without a syscall per request.
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def _new_process_prefix() -> None:
    # Forked gateway workers must not mint each other's ids.
    global _PREFIX, _COUNTER
    _PREFIX = os.urandom(8).hex()
    _COUNTER = itertools.count(1)


os.register_at_fork(after_in_child=_new_process_prefix)


class RequestIdFilter(Filter):
    """Propagates a request id to the worker and the client."""

    type_name = "request_id"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "header": {
                "type": "string",
                "default": "x-request-id",
                "description": "Header carrying the id, both directions.",
            },
            "trust_client": {
                "type": "boolean",
                "default": True,
                "description": "Keep an id the client sent instead of minting one.",
            },
        },
    }

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self.header = str(config.get("header", "x-request-id")).lower()
        self.trust_client = bool(config.get("trust_client", True))

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        """Pick the id and pass it upstream."""
        rid = ctx.request.headers.get(self.header) if self.trust_client else None
        if not rid or len(rid) > 200:
            rid = f"{_PREFIX}{next(_COUNTER):08x}"
        ctx.request_id = rid
        ctx.request.upstream_headers[self.header] = rid
        ctx.response_headers[self.header] = rid
        return None
