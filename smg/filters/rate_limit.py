"""``rate_limit``: local token-bucket limits on requests per second and LLM tokens per minute.

Like Envoy's ``local_ratelimit``: each key (global, API key, tenant, model or any header)
has a request bucket and a token bucket, refilled lazily from the monotonic clock when the
key is next seen, so there is no background task. Keys live in an LRU table bounded by
``max_keys``, so a flood of distinct keys cannot exhaust memory (an evicted key comes back
with a full bucket: size ``max_keys`` above the number of keys active at once).

Tokens are charged twice. At admission the request's tokens are *estimated* without a
tokenizer: about one token per four characters of the prompt text (``messages`` content,
``prompt``, ``input`` or ``text``; token-id arrays count one per id) plus four per chat
message, plus the output cap (``max_completion_tokens``, ``max_tokens`` or sglang's
``sampling_params.max_new_tokens``; ``default_max_tokens`` when the request has none,
nothing for embeddings) times ``n``. A request whose estimate exceeds the whole token burst
can never pass and is refused as ``request_too_large``. When the worker reports usage
(``usage`` of a JSON body; for streams the ``"usage": {...}`` object of an SSE chunk, which
clients get with ``stream_options.include_usage``; sglang's ``meta_info`` for
``/generate`` bodies) the difference to the estimate is refunded or charged, possibly
leaving the bucket in debt. Without reported usage the estimate stands.

Multiple processes: buckets are per process. With ``server.workers: N`` the launcher sets
``SMG_WORKERS=N`` and each process enforces 1/N of every rate and burst (a burst never
below one request), which adds up to the configured limit as long as the kernel spreads
connections evenly over the processes.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import orjson

from smg.errors import RateLimited
from smg.filters._buckets import Bucket, BucketTable, Clock, Rate
from smg.filters._defaults import with_defaults
from smg.filters.base import Filter, RequestContext, StateKey
from smg.observability import metrics
from smg.protocol.request import GatewayRequest, GatewayResponse

# One token per this many characters: the usual rule of thumb for English BPE vocabularies.
CHARS_PER_TOKEN = 4
# What each chat message costs beyond its text (role and separators).
TOKENS_PER_MESSAGE = 4
# Header values longer than this are hashed before they become bucket keys.
_MAX_RAW_KEY = 64
# An SSE line longer than this cannot be a usage event; drop it instead of buffering it.
_MAX_CARRY = 64 * 1024
_USAGE = b'"usage":'
_META_INFO = b'"meta_info":'


class _Charge:
    """What one request took from its token bucket, and the stream scan for its usage."""

    __slots__ = ("bucket", "carry", "estimate", "line", "settled")

    def __init__(self, bucket: Bucket, estimate: int) -> None:
        self.bucket = bucket
        self.estimate = estimate
        self.settled = False
        self.carry = b""  # the unterminated last line of the previous chunk
        self.line: bytes | None = None  # the latest SSE line carrying a usage object


_CHARGE = StateKey[_Charge | None]("rate_limit.charge")


class RateLimitFilter(Filter):
    """Refuses requests over a key's request or token rate with an OpenAI-style 429."""

    type_name = "rate_limit"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "description": "Token-bucket limits per key; at least one of the two rates is required.",
        # Reads "'requests_per_second' is a required property" when neither rate is set.
        "if": {"not": {"required": ["tokens_per_minute"]}},
        "then": {"required": ["requests_per_second"]},
        "dependentRequired": {
            "burst": ["requests_per_second"],
            "token_burst": ["tokens_per_minute"],
        },
        "properties": {
            "requests_per_second": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Sustained requests per second per key.",
            },
            "burst": {
                "type": "integer",
                "minimum": 1,
                "description": "Requests a key may send at once (default: ceil of the rate).",
            },
            "tokens_per_minute": {
                "type": "integer",
                "minimum": 1,
                "description": "Sustained prompt + completion tokens per minute per key.",
            },
            "token_burst": {
                "type": "integer",
                "minimum": 1,
                "description": "Tokens a key may use at once; default tokens_per_minute.",
            },
            "key": {
                "type": "string",
                "pattern": r"^(api_key|tenant|model|global|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$",
                "default": "global",
                "description": (
                    "What a bucket belongs to: 'global' (one for all), 'api_key' (the bearer"
                    " token or x-api-key, hashed), 'tenant' (header x-tenant), 'model', or"
                    " 'header:<name>'. Requests without the key share one bucket."
                ),
            },
            "max_keys": {
                "type": "integer",
                "minimum": 1,
                "default": 10000,
                "description": "Buckets kept; the least recently used key is forgotten first.",
            },
            "default_max_tokens": {
                "type": "integer",
                "minimum": 0,
                "default": 256,
                "description": "Output tokens assumed for requests that set no max_tokens.",
            },
        },
    }

    def __init__(
        self, name: str, config: Mapping[str, Any], *, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(name, config)
        cfg = with_defaults(self.config_schema, config)
        workers = _workers()
        self.workers = workers
        self.rps: float | None = cfg.get("requests_per_second")
        self.burst: int | None = None
        self.tpm: int | None = cfg.get("tokens_per_minute")
        self.token_burst: int | None = None
        requests = tokens = None
        if self.rps is not None:
            self.burst = int(cfg.get("burst", math.ceil(self.rps)))
            requests = Rate(self.rps / workers, max(1.0, self.burst / workers))
        if self.tpm is not None:
            self.token_burst = int(cfg.get("token_burst", self.tpm))
            tokens = Rate(self.tpm / 60.0 / workers, max(1.0, self.token_burst / workers))
        self.key_mode = str(cfg["key"])
        self.default_max_tokens = int(cfg["default_max_tokens"])
        self._key_of = _key_function(self.key_mode)
        self._table = BucketTable(requests, tokens, int(cfg["max_keys"]), clock)

    @property
    def keys(self) -> int:
        """Buckets currently held (for metrics)."""
        return len(self._table)

    def inherit(self, previous: Filter) -> None:
        """Keep the buckets when keys mean the same thing, rescaled to the new limits."""
        if not isinstance(previous, RateLimitFilter) or previous.key_mode != self.key_mode:
            return
        mine = self._table
        table = previous._table
        table.reconfigure(mine.requests, mine.tokens, mine.max_keys)
        # Shared, not copied: the old snapshot's in-flight requests settle into the same
        # buckets the new requests draw from.
        self._table = table

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        """Take one request and the estimated tokens from the key's buckets, or refuse."""
        table = self._table
        key = self._key_of(ctx.request)
        bucket = table.get(key)
        req, tok = table.requests, table.tokens
        estimate = 0
        wait = 0.0
        limit = detail = ""
        if req is not None and bucket.requests < 1.0:
            wait = req.wait_for(bucket.requests, 1.0)
            limit = "requests per second"
            detail = f"limit {self.rps:g}/s, burst {self.burst}"
        if tok is not None:
            estimate = estimate_tokens(ctx.request, self.default_max_tokens)
            if estimate > tok.capacity:
                metrics.RATE_LIMITED.labels(self.name, "too_large").inc()
                raise self._too_large(key, bucket, estimate)
            if bucket.tokens < estimate:
                t = tok.wait_for(bucket.tokens, estimate)
                if t > wait:
                    wait = t
                    limit = "tokens per minute"
                    detail = f"limit {self.tpm}, burst {self.token_burst}, requested {estimate}"
        if limit:
            headers = self._headers(bucket, {})
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
            metrics.RATE_LIMITED.labels(self.name, limit.split()[0]).inc()
            raise RateLimited(
                f"Rate limit reached for {limit} on {_label(self.key_mode, key)}: {detail}."
                f" Please retry after {_fmt_duration(wait)}.",
                headers=headers,
            )
        if req is not None:
            bucket.requests -= 1.0
        if tok is not None:
            bucket.tokens -= estimate
            ctx.put(_CHARGE, _Charge(bucket, estimate))
        self._headers(bucket, ctx.response_headers)
        return None

    async def on_response(self, ctx: RequestContext, resp: GatewayResponse) -> GatewayResponse:
        """Settle a whole body's reported usage against the estimate."""
        charge = ctx.get(_CHARGE, None)
        if charge is None or resp.body is None or charge.settled:
            return resp
        used = _body_usage(resp.body, ctx.request.kind)
        if used is not None:
            self._settle(charge, used)
            tok = self._table.tokens
            if tok is not None:
                _token_headers(tok, charge.bucket.tokens, ctx.response_headers)
        return resp

    def on_chunk(self, ctx: RequestContext, chunk: bytes) -> bytes:
        """Remember the latest SSE line with a usage object; parsing waits for the end."""
        charge = ctx.get(_CHARGE, None)
        if charge is None:
            return chunk
        data = charge.carry + chunk if charge.carry else chunk
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            # An event split across chunks is searched once it is whole.
            tail = data[cut:]
            charge.carry = tail if len(tail) <= _MAX_CARRY else b""
            data = data[:cut]
        elif charge.carry:
            charge.carry = b""
        if _USAGE in data:
            line = _last_usage_line(data)
            if line is not None:
                charge.line = line
        return chunk

    def on_complete(self, ctx: RequestContext) -> None:
        """Settle a stream's reported usage (also after errors and disconnects)."""
        charge = ctx.get(_CHARGE, None)
        if charge is None or charge.settled or charge.line is None:
            return
        used = _line_usage(charge.line)
        if used is not None:
            self._settle(charge, used)

    def _settle(self, charge: _Charge, used: int) -> None:
        charge.settled = True
        tok = self._table.tokens
        if tok is not None:
            b = charge.bucket
            b.tokens = min(tok.capacity, b.tokens + charge.estimate - used)

    def _headers(self, bucket: Bucket, headers: dict[str, str]) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers for ``bucket``, written into ``headers``."""
        req, tok = self._table.requests, self._table.tokens
        if req is not None:
            headers["x-ratelimit-limit-requests"] = req.limit_header
            headers["x-ratelimit-remaining-requests"] = str(max(0, int(bucket.requests)))
            headers["x-ratelimit-reset-requests"] = _fmt_duration(req.until_full(bucket.requests))
        if tok is not None:
            _token_headers(tok, bucket.tokens, headers)
        return headers

    def _too_large(self, key: str, bucket: Bucket, estimate: int) -> RateLimited:
        tok = self._table.tokens
        assert tok is not None
        headers = self._headers(bucket, {})
        # Waiting cannot help; this only keeps retrying clients from hammering.
        headers["Retry-After"] = str(max(1, math.ceil(tok.until_full(bucket.tokens))))
        return RateLimited(
            f"Request too large for tokens per minute on {_label(self.key_mode, key)}:"
            f" limit {self.tpm}, burst {int(tok.capacity)}, requested about {estimate}."
            " Send a shorter prompt or a lower max_tokens.",
            code="request_too_large",
            headers=headers,
        )


def _workers() -> int:
    try:
        return max(1, int(os.environ.get("SMG_WORKERS", "1")))
    except ValueError:
        return 1


def _token_headers(tok: Rate, level: float, headers: dict[str, str]) -> None:
    headers["x-ratelimit-limit-tokens"] = tok.limit_header
    headers["x-ratelimit-remaining-tokens"] = str(max(0, int(level)))
    headers["x-ratelimit-reset-tokens"] = _fmt_duration(tok.until_full(level))


def _fmt_duration(seconds: float) -> str:
    """OpenAI's reset format: ``"120ms"``, ``"1.5s"``, ``"6m0s"``."""
    ms = int(seconds * 1000.0 + 0.5) if seconds > 0.0 else 0
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms / 1000}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{secs}s"


def _label(mode: str, key: str) -> str:
    return "the gateway" if mode == "global" else f"{mode} {key!r}"


# --- keys -------------------------------------------------------------------------------


def _digest(raw: str) -> str:
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def _header_key(name: str) -> Callable[[GatewayRequest], str]:
    def key(req: GatewayRequest) -> str:
        raw = req.headers.get(name)
        if not raw:
            return ""
        return raw if len(raw) <= _MAX_RAW_KEY else _digest(raw)

    return key


def _api_key(req: GatewayRequest) -> str:
    raw = req.headers.get("authorization")
    if raw:
        scheme, _, token = raw.partition(" ")
        raw = token.strip() if scheme.lower() == "bearer" else raw
    else:
        raw = req.headers.get("x-api-key")
    # Only a digest is kept: the table (and any error message) never holds a usable key.
    return _digest(raw) if raw else ""


def _model_key(req: GatewayRequest) -> str:
    return req.model or ""


def _global_key(req: GatewayRequest) -> str:
    return "global"


def _key_function(mode: str) -> Callable[[GatewayRequest], str]:
    if mode == "global":
        return _global_key
    if mode == "api_key":
        return _api_key
    if mode == "model":
        return _model_key
    if mode == "tenant":
        return _header_key("x-tenant")
    if mode.startswith("header:"):
        return _header_key(mode[len("header:") :].lower())
    raise ValueError(f"unknown rate limit key {mode!r}")


# --- token estimate ---------------------------------------------------------------------


def _chars(value: Any) -> int:
    """Characters of text in a prompt-like value; token ids count as a token's worth."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        n = 0
        for item in value:
            if isinstance(item, str):
                n += len(item)
            elif isinstance(item, int):
                n += CHARS_PER_TOKEN
            elif isinstance(item, dict):  # a chat content part
                text = item.get("text")
                if isinstance(text, str):
                    n += len(text)
            elif isinstance(item, list):  # a batch of token-id arrays
                n += CHARS_PER_TOKEN * len(item)
        return n
    return 0


def _int_field(body: Mapping[str, Any], key: str) -> int | None:
    v = body.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def estimate_tokens(req: GatewayRequest, default_max_tokens: int) -> int:
    """A cheap upper-ish guess of the prompt plus completion tokens a request will use."""
    body = req.json
    chars = 0
    overhead = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict):
                chars += _chars(m.get("content"))
                overhead += TOKENS_PER_MESSAGE
    for field in ("prompt", "input", "text"):
        value = body.get(field)
        if value is not None:
            chars += _chars(value)
    ids = body.get("input_ids")
    if isinstance(ids, list):
        chars += _chars(ids)
    prompt = -(-chars // CHARS_PER_TOKEN) + overhead
    if req.kind == "embeddings":
        return prompt
    out = _int_field(body, "max_completion_tokens")
    if out is None:
        out = _int_field(body, "max_tokens")
    if out is None:
        sp = body.get("sampling_params")
        if isinstance(sp, dict):
            out = _int_field(sp, "max_new_tokens")
    if out is None:
        out = default_max_tokens
    n = _int_field(body, "n")
    return prompt + out * (n if n else 1)


# --- reported usage ---------------------------------------------------------------------


def _total(usage: Any) -> int | None:
    if not isinstance(usage, dict):
        return None
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens", 0)
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt + completion
    return None


def _object_at(buf: bytes, start: int) -> bytes | None:
    # Brace counting (usage objects hold no strings with braces) finds the object's end
    # without parsing a large body (an embeddings response) just to read a small object.
    depth = 0
    i = start
    while True:
        close = buf.find(b"}", i)
        if close == -1:
            return None
        open_ = buf.find(b"{", i, close)
        if open_ != -1:
            depth += 1
            i = open_ + 1
            continue
        depth -= 1
        i = close + 1
        if depth == 0:
            return buf[start:i]


def _usage_at(buf: bytes, marker: bytes) -> int:
    """Offset of the ``{`` opening the last ``marker`` object in ``buf``, or -1."""
    at = buf.rfind(marker)
    while at != -1:
        j = at + len(marker)
        while j < len(buf) and buf[j] in b" \t\r\n":
            j += 1
        if buf[j : j + 1] == b"{":
            return j
        at = buf.rfind(marker, 0, at)  # e.g. "usage": null in an earlier event
    return -1


def _body_usage(body: bytes, kind: str) -> int | None:
    marker = _META_INFO if kind == "generate" else _USAGE
    start = _usage_at(body, marker)
    if start == -1:
        return None
    obj = _object_at(body, start)
    if obj is None:
        return None
    try:
        return _total(orjson.loads(obj))
    except orjson.JSONDecodeError:
        return None


def _last_usage_line(data: bytes) -> bytes | None:
    """The last complete line of ``data`` holding a ``"usage": {`` object."""
    start = _usage_at(data, _USAGE)
    if start == -1:
        return None
    begin = data.rfind(b"\n", 0, start) + 1
    end = data.find(b"\n", start)
    return data[begin : end if end != -1 else len(data)]


def _line_usage(line: bytes) -> int | None:
    line = line.strip()
    if not line.startswith(b"data:"):
        return None
    try:
        event = orjson.loads(line[5:])
    except orjson.JSONDecodeError:
        return None
    return _total(event.get("usage")) if isinstance(event, dict) else None
