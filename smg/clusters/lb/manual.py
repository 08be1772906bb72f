"""Manual (sticky) routing: each routing key stays on the endpoint it was first given."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from smg.clusters.endpoint import EndpointState
from smg.clusters.lb._config import check_keys, get_int, get_str
from smg.clusters.lb.base import PickContext
from smg.clusters.lb.least_request import least_loaded

DEFAULT_HEADER = "x-smg-routing-key"


class Manual:
    """Sticky sessions by header: the first request of a key goes to the least loaded
    endpoint, and the key is remembered there.

    Unlike ``consistent_hash`` an assignment follows load, not a hash, and does not
    move when endpoints are added. It moves only when its endpoint is unavailable or
    excluded (a retry); the key is then reassigned. At most ``max_keys`` keys are
    remembered, the least recently used forgotten first. Requests without the header
    go to the least loaded endpoint.
    """

    name: str = "manual"

    def __init__(self, header: str = DEFAULT_HEADER, max_keys: int = 100_000) -> None:
        self.header = header.lower()
        self.max_keys = max_keys
        self._keys: OrderedDict[str, str] = OrderedDict()
        self._random = random.Random().random
        self._eps: Sequence[EndpointState] = ()
        self._by_url: dict[str, EndpointState] = {}
        self._reason = self.name

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """The key's endpoint if it can take the request, else a newly assigned one."""
        key = ctx.headers.get(self.header)
        if not key:
            self._reason = "manual; no_key"
            return least_loaded(endpoints, exclude, self._random)
        keys = self._keys
        url = keys.get(key)
        if url is not None:
            ep = self._lookup(endpoints, url)
            if (
                ep is not None
                and ep.weight > 0
                and ep.available
                and not (exclude and url in exclude)
            ):
                keys.move_to_end(key)
                self._reason = "manual; sticky"
                return ep
        chosen = least_loaded(endpoints, exclude, self._random)
        if chosen is None:
            self._reason = "manual; no_endpoint"
            return None
        keys[key] = chosen.endpoint.url
        keys.move_to_end(key)
        if len(keys) > self.max_keys:
            keys.popitem(last=False)
        self._reason = "manual; reassigned" if url is not None else "manual; assigned"
        return chosen

    def _lookup(self, endpoints: Sequence[EndpointState], url: str) -> EndpointState | None:
        # The cluster hands over the same immutable tuple every time; rebuild on change.
        if endpoints is not self._eps or len(endpoints) != len(self._by_url):
            self._eps = endpoints
            self._by_url = {ep.endpoint.url: ep for ep in endpoints}
        return self._by_url.get(url)

    def reason(self) -> str:
        """``manual; sticky``, ``manual; assigned``, ``manual; reassigned``, ``manual; no_key``."""
        return self._reason


def create(config: Mapping[str, Any]) -> Manual:
    """Build from ``header`` (default ``x-smg-routing-key``) and ``max_keys`` (100000)."""
    check_keys("manual", config, ("header", "max_keys"))
    return Manual(
        header=get_str("manual", config, "header", None) or DEFAULT_HEADER,
        max_keys=get_int("manual", config, "max_keys", 100_000, minimum=1),
    )
