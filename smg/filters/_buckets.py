"""Lazily refilled token buckets in an LRU-bounded table, for the ``rate_limit`` filter."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Rate:
    """One limit: ``per_second`` refill into a bucket holding at most ``capacity``."""

    per_second: float
    capacity: float
    limit_header: str = field(init=False, compare=False)
    """``capacity`` as the ``x-ratelimit-limit-*`` header value, formatted once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit_header", str(int(self.capacity)))

    def wait_for(self, level: float, need: float) -> float:
        """Seconds until a bucket at ``level`` holds ``need``."""
        return 0.0 if level >= need else (need - level) / self.per_second

    def until_full(self, level: float) -> float:
        """Seconds until a bucket at ``level`` is full again."""
        return max(0.0, (self.capacity - level) / self.per_second)


class Bucket:
    """The request and token levels of one key, as of ``stamp`` (monotonic seconds)."""

    __slots__ = ("requests", "stamp", "tokens")

    def __init__(self, requests: float, tokens: float, stamp: float) -> None:
        self.requests = requests
        self.tokens = tokens
        self.stamp = stamp


def _rescale(level: float, old: Rate | None, new: Rate) -> float:
    # Keep the fraction of the burst a key had left: an exhausted key stays exhausted
    # after a reload, a full one gets the whole new burst.
    if old is None:
        return new.capacity
    return min(new.capacity, level * new.capacity / old.capacity)


class BucketTable:
    """Buckets by key under one pair of limits; the least recently used key goes first."""

    __slots__ = ("_buckets", "clock", "max_keys", "requests", "tokens")

    def __init__(self, requests: Rate | None, tokens: Rate | None, max_keys: int, clock: Clock):
        self.requests = requests
        self.tokens = tokens
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: str) -> bool:
        return key in self._buckets

    def get(self, key: str) -> Bucket:
        """The bucket of ``key`` refilled to now (a new key starts full); marks it used."""
        now = self.clock()
        buckets = self._buckets
        b = buckets.get(key)
        if b is None:
            req, tok = self.requests, self.tokens
            b = Bucket(req.capacity if req else 0.0, tok.capacity if tok else 0.0, now)
            buckets[key] = b
            if len(buckets) > self.max_keys:
                buckets.popitem(last=False)
            return b
        buckets.move_to_end(key)
        self.refill(b, now)
        return b

    def refill(self, b: Bucket, now: float) -> None:
        """Add what the rates earned since the bucket's stamp, up to capacity."""
        elapsed = now - b.stamp
        if elapsed <= 0.0:
            return
        b.stamp = now
        req, tok = self.requests, self.tokens
        if req is not None and b.requests < req.capacity:
            b.requests = min(req.capacity, b.requests + elapsed * req.per_second)
        if tok is not None and b.tokens < tok.capacity:
            b.tokens = min(tok.capacity, b.tokens + elapsed * tok.per_second)

    def reconfigure(self, requests: Rate | None, tokens: Rate | None, max_keys: int) -> None:
        """Adopt new limits, keeping every key's bucket rescaled to the new bursts."""
        if requests != self.requests or tokens != self.tokens:
            now = self.clock()
            for b in self._buckets.values():
                self.refill(b, now)  # settle what the old rates earned first
                if requests is not None:
                    b.requests = _rescale(b.requests, self.requests, requests)
                if tokens is not None:
                    b.tokens = _rescale(b.tokens, self.tokens, tokens)
            self.requests, self.tokens = requests, tokens
        self.max_keys = max_keys
        while len(self._buckets) > max_keys:
            self._buckets.popitem(last=False)
