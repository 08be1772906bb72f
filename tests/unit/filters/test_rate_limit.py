"""rate_limit: request and token buckets, refill, keys, usage reconciliation, LRU, reload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import pytest

from smg.errors import RateLimited
from smg.filters.base import Filter, RequestContext
from smg.filters.chain import FilterChain
from smg.filters.rate_limit import RateLimitFilter, _fmt_duration, estimate_tokens
from smg.protocol.request import KIND_BY_PATH, GatewayRequest, GatewayResponse


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_ctx(
    body: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    path: str = "/v1/chat/completions",
    stream: bool = False,
) -> RequestContext:
    doc = body if body is not None else {"messages": [{"role": "user", "content": "hi"}]}
    req = GatewayRequest(
        "POST", path, KIND_BY_PATH[path], dict(headers or {}), b"", doc, "m", stream
    )
    return RequestContext(req, None, None)  # type: ignore[arg-type]


def limiter(clock: Clock, **config: Any) -> RateLimitFilter:
    return RateLimitFilter("limit", config, clock=clock)


def admit(f: RateLimitFilter, ctx: RequestContext | None = None) -> RequestContext:
    ctx = ctx or make_ctx()
    assert asyncio.run(f.on_request(ctx)) is None
    return ctx


def refuse(f: RateLimitFilter, ctx: RequestContext | None = None) -> RateLimited:
    with pytest.raises(RateLimited) as ei:
        asyncio.run(f.on_request(ctx or make_ctx()))
    return ei.value


def chat(chars: int, max_tokens: int | None = None, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "x" * chars}], **more}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


# --- request bucket ---------------------------------------------------------------------


def test_burst_then_429_with_retry_after_and_openai_headers() -> None:
    f = limiter(Clock(), requests_per_second=2, burst=2)
    first = admit(f)
    assert first.response_headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "500ms",
    }
    assert admit(f).response_headers["x-ratelimit-remaining-requests"] == "0"
    err = refuse(f)
    assert err.status == 429 and err.code == "rate_limit_exceeded"
    assert err.headers["Retry-After"] == "1"
    assert err.headers["x-ratelimit-limit-requests"] == "2"
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.headers["x-ratelimit-reset-requests"] == "1s"
    assert "x-ratelimit-limit-tokens" not in err.headers
    assert "requests per second" in err.message and "limit 2/s" in err.message
    assert "retry after 500ms" in err.message


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    f = limiter(Clock(), requests_per_second=0.1)  # burst defaults to ceil(0.1) = 1
    admit(f)
    err = refuse(f)
    assert err.headers["Retry-After"] == "10"
    assert err.headers["x-ratelimit-reset-requests"] == "10s"


def test_refill_over_time_up_to_the_burst_only() -> None:
    clock = Clock()
    f = limiter(clock, requests_per_second=2, burst=2)
    admit(f)
    admit(f)
    refuse(f)
    clock.advance(0.5)  # one request earned
    admit(f)
    refuse(f)
    clock.advance(3600)  # a long idle spell still gives only the burst
    admit(f)
    admit(f)
    refuse(f)


def test_burst_defaults_to_ceil_of_the_rate() -> None:
    f = limiter(Clock(), requests_per_second=2.5)
    assert f.burst == 3
    for _ in range(3):
        admit(f)
    refuse(f)


def test_rejection_takes_nothing_from_the_buckets() -> None:
    clock = Clock()
    f = limiter(clock, requests_per_second=1, tokens_per_minute=6000)
    admit(f)
    tokens_before = f._table.get("global").tokens
    refuse(f)
    assert f._table.get("global").tokens == tokens_before


# --- keys -------------------------------------------------------------------------------


def test_api_keys_have_separate_buckets_and_are_never_stored_raw() -> None:
    f = limiter(Clock(), requests_per_second=1, key="api_key")
    alice = {"authorization": "Bearer sk-alice-secret"}
    bob = {"x-api-key": "sk-bob-secret"}
    admit(f, make_ctx(headers=alice))
    err = refuse(f, make_ctx(headers=alice))
    admit(f, make_ctx(headers=bob))
    admit(f, make_ctx())  # no key: the shared anonymous bucket
    refuse(f, make_ctx())
    keys = list(f._table._buckets)
    assert len(keys) == 3
    assert not any("secret" in k for k in keys)
    assert "secret" not in err.message and "api_key" in err.message


def test_header_tenant_and_model_keys() -> None:
    f = limiter(Clock(), requests_per_second=1, key="header:X-User")
    admit(f, make_ctx(headers={"x-user": "u1"}))
    admit(f, make_ctx(headers={"x-user": "u2"}))
    err = refuse(f, make_ctx(headers={"x-user": "u1"}))
    assert "'u1'" in err.message
    t = limiter(Clock(), requests_per_second=1, key="tenant")
    admit(t, make_ctx(headers={"x-tenant": "acme"}))
    admit(t, make_ctx(headers={"x-tenant": "globex"}))
    refuse(t, make_ctx(headers={"x-tenant": "acme"}))
    m = limiter(Clock(), requests_per_second=1, key="model")
    admit(m)
    refuse(m)
    other = make_ctx()
    other.request.model = "other"
    admit(m, other)


def test_long_header_values_are_hashed_into_short_keys() -> None:
    f = limiter(Clock(), requests_per_second=1, key="tenant")
    admit(f, make_ctx(headers={"x-tenant": "t" * 5000}))
    (key,) = f._table._buckets
    assert len(key) == 16


def test_lru_bound_forgets_the_least_recently_used_key() -> None:
    f = limiter(Clock(), requests_per_second=1, key="tenant", max_keys=3)

    def use(tenant: str) -> None:
        admit(f, make_ctx(headers={"x-tenant": tenant}))

    use("a")
    use("b")
    use("c")
    f._table.get("a")  # a touch counts as use
    use("d")
    assert list(f._table._buckets) == ["c", "a", "d"]
    assert f.keys == 3

    async def flood() -> None:
        for i in range(1000):
            await f.on_request(make_ctx(headers={"x-tenant": f"flood-{i}"}))

    asyncio.run(flood())
    assert f.keys == 3


# --- token bucket -----------------------------------------------------------------------


def test_estimate_prompt_chars_plus_output_cap() -> None:
    def est(body: dict[str, Any], path: str = "/v1/chat/completions") -> int:
        return estimate_tokens(make_ctx(body, path=path).request, 256)

    assert est(chat(400, 50)) == 100 + 4 + 50
    assert est(chat(401, 50)) == 101 + 4 + 50  # partial tokens round up
    assert est(chat(400)) == 100 + 4 + 256  # no max_tokens: the default cap
    assert est(chat(400, 50, max_completion_tokens=10)) == 100 + 4 + 10
    assert est(chat(400, 50, n=3)) == 100 + 4 + 150
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "y" * 40}]}]}
    assert est({**parts, "max_tokens": 0}) == 10 + 4
    assert est({"prompt": "z" * 80, "max_tokens": 5}, "/v1/completions") == 25
    assert est({"prompt": [1, 2, 3], "max_tokens": 5}, "/v1/completions") == 8
    assert est({"input": ["a" * 8, "b" * 8]}, "/v1/embeddings") == 4
    sglang = {"text": "q" * 8, "sampling_params": {"max_new_tokens": 7}}
    assert est(sglang, "/generate") == 9
    assert est({"messages": "junk", "max_tokens": "many"}) == 256


def test_token_limit_rejects_when_the_estimate_does_not_fit() -> None:
    clock = Clock()
    f = limiter(clock, tokens_per_minute=600, token_burst=300)  # 10 tokens/s
    ctx = admit(f, make_ctx(chat(400, 50)))  # 154
    assert ctx.response_headers == {
        "x-ratelimit-limit-tokens": "300",
        "x-ratelimit-remaining-tokens": "146",
        "x-ratelimit-reset-tokens": "15.4s",
    }
    err = refuse(f, make_ctx(chat(400, 50)))
    assert "tokens per minute" in err.message and "requested 154" in err.message
    assert err.headers["Retry-After"] == "1"  # 8 tokens short at 10/s
    assert err.headers["x-ratelimit-remaining-tokens"] == "146"
    admit(f, make_ctx(chat(400, 30)))  # a smaller one still fits


def test_request_larger_than_the_token_burst_is_request_too_large() -> None:
    f = limiter(Clock(), tokens_per_minute=100)
    err = refuse(f, make_ctx(chat(4000, 10)))
    assert err.status == 429 and err.code == "request_too_large"
    assert "requested about 1014" in err.message
    assert int(err.headers["Retry-After"]) >= 1


def test_non_stream_usage_refunds_the_estimate() -> None:
    f = limiter(Clock(), tokens_per_minute=600, token_burst=300)
    ctx = admit(f, make_ctx(chat(400, 50)))
    body = orjson.dumps(
        {
            "choices": [{"message": {"content": "{not usage}"}}],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 8,
                "total_tokens": 20,
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }
    )
    resp = GatewayResponse(200, "application/json", [], body=body)
    assert asyncio.run(f.on_response(ctx, resp)) is resp
    assert ctx.response_headers["x-ratelimit-remaining-tokens"] == "280"
    assert f._table.get("global").tokens == pytest.approx(280)
    f.on_complete(ctx)  # settled once only
    assert f._table.get("global").tokens == pytest.approx(280)


def test_usage_above_the_estimate_puts_the_bucket_in_debt() -> None:
    clock = Clock()
    f = limiter(clock, tokens_per_minute=600, token_burst=300)
    ctx = admit(f, make_ctx(chat(0, 10)))  # estimate 14
    body = b'{"usage":{"prompt_tokens":300,"completion_tokens":100}}'
    asyncio.run(f.on_response(ctx, GatewayResponse(200, "application/json", [], body=body)))
    assert f._table.get("global").tokens == pytest.approx(-100)
    err = refuse(f, make_ctx(chat(0, 10)))
    assert err.headers["Retry-After"] == "12"  # 114 tokens at 10/s
    clock.advance(12)
    admit(f, make_ctx(chat(0, 10)))


def test_generate_meta_info_is_the_usage_of_sglang_bodies() -> None:
    f = limiter(Clock(), tokens_per_minute=600, token_burst=300)
    ctx = admit(f, make_ctx({"text": "hello", "sampling_params": {}}, path="/generate"))
    body = b'{"text":"x","meta_info":{"prompt_tokens":3,"completion_tokens":4,"id":"a"}}'
    asyncio.run(f.on_response(ctx, GatewayResponse(200, "application/json", [], body=body)))
    assert f._table.get("global").tokens == pytest.approx(293)


def test_without_reported_usage_the_estimate_stands() -> None:
    f = limiter(Clock(), tokens_per_minute=600, token_burst=300)
    ctx = admit(f, make_ctx(chat(400, 50)))
    body = b'{"choices":[],"usage":null}'
    asyncio.run(f.on_response(ctx, GatewayResponse(200, "application/json", [], body=body)))
    f.on_complete(ctx)
    assert f._table.get("global").tokens == pytest.approx(146)


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def test_streamed_usage_chunk_split_across_reads_is_reconciled() -> None:
    f = limiter(Clock(), tokens_per_minute=600, token_burst=300)
    ctx = admit(f, make_ctx(chat(400, 50), stream=True))
    tail = sse({"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 10}})
    cut = tail.index(b"usage") + 2  # the marker itself is split between two reads
    chunks = [
        sse({"choices": [{"delta": {"content": '"usage": {'}}], "usage": None}),
        sse({"choices": [{"delta": {"content": "hi"}}], "usage": None}),
        tail[:cut],
        tail[cut:] + b"data: [DONE]\n\n",
    ]
    out = [f.on_chunk(ctx, c) for c in chunks]
    assert out == chunks  # relayed untouched
    assert f._table.get("global").tokens == pytest.approx(146)  # settles at the end
    f.on_complete(ctx)
    assert f._table.get("global").tokens == pytest.approx(260)


def test_stream_without_usage_keeps_the_estimate() -> None:
    f = limiter(Clock(), tokens_per_minute=600, token_burst=300)
    ctx = admit(f, make_ctx(chat(400, 50), stream=True))
    f.on_chunk(ctx, sse({"choices": [{"delta": {"content": "hi"}}], "usage": None}))
    f.on_chunk(ctx, b"data: [DONE]\n\n")
    f.on_complete(ctx)
    assert f._table.get("global").tokens == pytest.approx(146)


def test_reconciliation_through_the_filter_chain() -> None:
    class Worker(Filter):
        terminal = True

        async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
            async def gen() -> AsyncIterator[bytes]:
                yield sse({"choices": [{"delta": {"content": "a"}}]})
                yield sse({"choices": [], "usage": {"total_tokens": 7}}) + b"data: [DONE]\n\n"

            return GatewayResponse(200, "text/event-stream", [], stream=gen())

    f = limiter(Clock(), tokens_per_minute=600, token_burst=300)
    chain = FilterChain([f, Worker("router", {})])
    ctx = make_ctx(chat(400, 50), stream=True)

    async def go() -> list[bytes]:
        resp = await chain.run(ctx)
        assert resp.stream is not None
        return [c async for c in resp.stream]

    assert len(asyncio.run(go())) == 2
    chain.finish(ctx)
    assert f._table.get("global").tokens == pytest.approx(293)
    assert ctx.response_headers["x-ratelimit-limit-tokens"] == "300"


def test_both_limits_report_both_header_sets() -> None:
    f = limiter(Clock(), requests_per_second=5, tokens_per_minute=6000)
    ctx = admit(f, make_ctx(chat(40, 10)))
    assert ctx.response_headers["x-ratelimit-remaining-requests"] == "4"
    assert ctx.response_headers["x-ratelimit-remaining-tokens"] == str(6000 - 24)


# --- reloads and processes --------------------------------------------------------------


def test_inherit_with_unchanged_limits_keeps_exhausted_buckets() -> None:
    clock = Clock()
    old = limiter(clock, requests_per_second=1)
    admit(old)
    new = limiter(clock, requests_per_second=1)
    new.inherit(old)
    refuse(new)
    assert new._table is old._table


def test_inherit_with_new_limits_rescales_levels() -> None:
    clock = Clock()
    old = limiter(clock, requests_per_second=2, burst=2, key="tenant")
    admit(old, make_ctx(headers={"x-tenant": "half"}))
    admit(old, make_ctx(headers={"x-tenant": "empty"}))
    admit(old, make_ctx(headers={"x-tenant": "empty"}))
    new = limiter(clock, requests_per_second=4, burst=4, key="tenant", tokens_per_minute=60)
    new.inherit(old)
    table = new._table
    assert table.get("half").requests == pytest.approx(2)  # half of the new burst
    assert table.get("empty").requests == pytest.approx(0)  # still exhausted
    assert table.get("half").tokens == pytest.approx(60)  # a new limit starts full
    # the old instance (still serving its in-flight requests) sees the same limits
    assert old._table.requests == new._table.requests


def test_inherit_with_another_key_starts_afresh() -> None:
    clock = Clock()
    old = limiter(clock, requests_per_second=1)
    admit(old)
    new = limiter(clock, requests_per_second=1, key="tenant")
    new.inherit(old)
    admit(new)
    assert new._table is not old._table


def test_workers_env_divides_rates_and_bursts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMG_WORKERS", "2")
    clock = Clock()
    f = limiter(clock, requests_per_second=4, burst=4, tokens_per_minute=120_000)
    admit(f)
    admit(f)
    err = refuse(f)
    assert err.headers["x-ratelimit-limit-requests"] == "2"
    clock.advance(0.5)  # 2/s per process
    admit(f)
    assert f._table.tokens is not None and f._table.tokens.capacity == 60_000
    assert f._table.tokens.per_second == pytest.approx(1000)
    monkeypatch.setenv("SMG_WORKERS", "8")
    tiny = limiter(clock, requests_per_second=2, burst=2)
    admit(tiny)  # a share of the burst never drops below one request


def test_reset_durations_in_openai_format() -> None:
    assert _fmt_duration(0) == "0ms"
    assert _fmt_duration(0.1204) == "120ms"
    assert _fmt_duration(1) == "1s"
    assert _fmt_duration(1.25) == "1.25s"
    assert _fmt_duration(360) == "6m0s"
    assert _fmt_duration(3725) == "1h2m5s"


def test_defaults_come_from_the_schema() -> None:
    f = RateLimitFilter("x", {"tokens_per_minute": 10})
    assert f.key_mode == "global"
    assert f._table.max_keys == 10000
    assert f.default_max_tokens == 256
    assert f.token_burst == 10
    assert f._table.requests is None
