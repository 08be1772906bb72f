"""Bucket: requests sorted by prompt length into ranges, each served by its own endpoints."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from smg.clusters.endpoint import Endpoint, EndpointState
from smg.clusters.lb._config import check_keys
from smg.clusters.lb.base import PickContext
from smg.clusters.lb.least_request import least_loaded
from smg.clusters.prefix.text import CHARS_PER_TOKEN


class Bucket:
    """Routes by estimated prompt tokens (characters / 4, rounded up) to one range's endpoints.

    ``buckets`` is a list of ``{max_prompt_tokens, endpoints}`` in increasing order; the
    last one may leave out ``max_prompt_tokens`` to catch everything longer. Within a
    bucket the least loaded (in flight) endpoint wins. Long prompts then do not queue
    behind short ones on the same prefill worker. If no endpoint of the bucket is
    available the request spills to the least loaded endpoint of the whole cluster;
    endpoints named in no bucket only ever take spills.
    """

    name: str = "bucket"

    def __init__(self, bounds: Sequence[int | None], members: Sequence[frozenset[str]]) -> None:
        self.bounds = tuple(bounds)
        self.members = tuple(members)
        self._random = random.Random().random
        self._reason = self.name

    def pick(
        self,
        endpoints: Sequence[EndpointState],
        ctx: PickContext,
        exclude: frozenset[str] = frozenset(),
    ) -> EndpointState | None:
        """The least loaded available endpoint of the request's bucket."""
        tokens = -(-len(ctx.routed_text()) // CHARS_PER_TOKEN)  # rounded up
        index = len(self.bounds) - 1
        for i, bound in enumerate(self.bounds):
            if bound is None or tokens <= bound:
                index = i
                break
        else:
            index = -1  # longer than the last bound: no bucket
        if index >= 0:
            members = self.members[index]
            inside = [ep for ep in endpoints if ep.endpoint.url in members]
            best = least_loaded(inside, exclude, self._random)
            if best is not None:
                self._reason = f"bucket; {index}"
                return best
        self._reason = "bucket; spill"
        return least_loaded(endpoints, exclude, self._random)

    def reason(self) -> str:
        """``bucket; N`` (the bucket's index) or ``bucket; spill``."""
        return self._reason


def create(config: Mapping[str, Any]) -> Bucket:
    """Build from ``buckets``: ``[{max_prompt_tokens: 1024, endpoints: [url, ...]}, ...]``."""
    check_keys("bucket", config, ("buckets",))
    raw = config.get("buckets")
    if not isinstance(raw, list) or not raw:
        raise ValueError("bucket: buckets must be a non-empty list")
    bounds: list[int | None] = []
    members: list[frozenset[str]] = []
    last = -1
    for i, b in enumerate(raw):
        where = f"bucket: buckets[{i}]"
        if not isinstance(b, Mapping):
            raise ValueError(f"{where} must be a mapping")
        check_keys(where, b, ("max_prompt_tokens", "endpoints"))
        bound = b.get("max_prompt_tokens")
        if bound is None:
            if i != len(raw) - 1:
                raise ValueError(f"{where}: only the last bucket may omit max_prompt_tokens")
        elif isinstance(bound, bool) or not isinstance(bound, int) or bound <= last:
            raise ValueError(
                f"{where}: max_prompt_tokens must be an integer above the previous bucket's"
            )
        else:
            last = bound
        urls = b.get("endpoints")
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise ValueError(f"{where}: endpoints must be a non-empty list of URLs")
        bounds.append(bound)
        members.append(frozenset(Endpoint.parse(u).url for u in urls))
    return Bucket(bounds, members)
