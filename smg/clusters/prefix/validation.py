"""Self-validation: does the routing tree predict the cache hits the engines report?

After each answer the policy's prediction (the matched prefix on the chosen endpoint, in
estimated tokens) is compared with ``usage.prompt_tokens_details.cached_tokens`` (SGLang
``/generate``: ``meta_info.cached_tokens``). Totals per endpoint are exported, and a
decayed ratio reported / predicted over the recent answers is both a gauge and the
trigger of a (rate-limited) warning when it stays low: a routed text that does not
match the engine's chat template, a tokenizer mismatch or an engine cache far smaller
than the tree would otherwise silently zero the benefit of cache-aware routing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

from smg.observability import metrics
from smg.observability.usage import USAGE_MARK

log = logging.getLogger("smg.lb")

_CACHED: Final = b'"cached_tokens":'
# Memory of the ratio: each answer weighs this much less than the one after it
# (about the last 50 answers count).
DECAY: Final = 0.98
# Warn only with this much predicted signal (decayed tokens) behind the ratio.
MIN_SIGNAL: Final = 2000.0
LOW_RATIO: Final = 0.5
WARN_EVERY: Final = 300.0
# Answers without a report before saying the engine does not report at all.
UNREPORTED_WARN_AFTER: Final = 50


def cached_tokens_in(data: bytes | None) -> int | None:
    """The last ``"cached_tokens": N`` in a body or SSE event, or None."""
    if not data:
        return None
    i = data.rfind(_CACHED)
    if i < 0:
        return None
    j = i + len(_CACHED)
    end = len(data)
    while j < end and data[j] in b" \t":
        j += 1
    k = j
    while k < end and 48 <= data[k] <= 57:
        k += 1
    return int(data[j:k]) if k > j else None


class _Endpoint:
    """Running figures of one endpoint, with its metric children looked up once."""

    __slots__ = (
        "last_warn",
        "predicted",
        "predicted_c",
        "ratio_g",
        "reported",
        "reported_c",
        "reports",
        "unreported",
        "unreported_c",
    )

    def __init__(self, cluster: str, url: str) -> None:
        self.predicted = 0.0
        self.reported = 0.0
        self.reports = 0
        self.unreported = 0
        self.last_warn = -math.inf
        self.predicted_c = metrics.CACHE_PREDICTED_TOKENS.labels(cluster, url)
        self.reported_c = metrics.CACHE_REPORTED_TOKENS.labels(cluster, url)
        self.unreported_c = metrics.CACHE_UNREPORTED.labels(cluster, url)
        self.ratio_g = metrics.CACHE_PREDICTION_RATIO.labels(cluster, url)


class CacheValidator:
    """Compares predicted and engine-reported cached tokens per endpoint."""

    def __init__(self, policy: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.cluster = ""
        self._clock = clock
        self._eps: dict[str, _Endpoint] = {}

    def bind(self, cluster: str) -> None:
        """Label metrics with the cluster's name."""
        if cluster != self.cluster:
            self.cluster = cluster
            self._eps.clear()

    def record(self, url: str, predicted: int, reported: int | None) -> None:
        """One answer: the predicted cached tokens and what the engine said (None: nothing)."""
        st = self._eps.get(url)
        if st is None:
            st = self._eps[url] = _Endpoint(self.cluster, url)
        if reported is None:
            st.unreported += 1
            st.unreported_c.inc()
            if st.unreported == UNREPORTED_WARN_AFTER and st.reports == 0:
                log.warning(
                    "%s on cluster %s: %s reported no cached_tokens in %d answers; the "
                    "routing tree cannot be checked (vLLM: --enable-prompt-tokens-details; "
                    "streams report usage only with stream_options.include_usage)",
                    self.policy,
                    self.cluster,
                    url,
                    st.unreported,
                )
            return
        st.reports += 1
        st.predicted_c.inc(predicted)
        st.reported_c.inc(reported)
        st.predicted = st.predicted * DECAY + predicted
        st.reported = st.reported * DECAY + reported
        if st.predicted > 0:
            ratio = st.reported / st.predicted
            st.ratio_g.set(ratio)
            if ratio < LOW_RATIO and st.predicted >= MIN_SIGNAL:
                now = self._clock()
                if now - st.last_warn >= WARN_EVERY:
                    st.last_warn = now
                    log.warning(
                        "%s on cluster %s: %s reports %.0f%% of the cached prefix the "
                        "gateway predicted over its recent answers; the routed text may not "
                        "match the engine's chat template or tokenizer, or its KV cache is "
                        "much smaller than the routing tree assumes",
                        self.policy,
                        self.cluster,
                        url,
                        100.0 * ratio,
                    )

    def ratio(self, url: str) -> float | None:
        """The current decayed reported / predicted ratio of ``url``."""
        st = self._eps.get(url)
        if st is None or st.predicted <= 0:
            return None
        return st.reported / st.predicted

    def totals(self, url: str) -> tuple[float, float]:
        """Decayed (predicted, reported) of ``url``."""
        st = self._eps.get(url)
        return (0.0, 0.0) if st is None else (st.predicted, st.reported)


def stream_reports_usage(kind: str, body: Mapping[str, Any] | None) -> bool:
    """Will this stream carry usage (OpenAI: only if asked for; SGLang: meta_info always)."""
    if kind == "generate":
        return True
    options = body.get("stream_options") if body else None
    return isinstance(options, Mapping) and bool(options.get("include_usage"))


class UsageTap:
    """Keeps the last streamed chunk that carried usage figures (``prompt_tokens``).

    One tap serves every reader of the figures (cache-prediction checks read
    ``cached_tokens`` from it, tracing the token counts), so a stream is scanned once.
    """

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage: bytes | None = None


async def tap_usage(stream: AsyncIterator[bytes], tap: UsageTap) -> AsyncIterator[bytes]:
    """Relay ``stream`` unchanged, noting chunks with usage (one substring test per chunk).

    A usage object split across two reads is missed; the answer then counts as
    unreported, which only thins the sample.
    """
    try:
        async for chunk in stream:
            if USAGE_MARK in chunk:
                tap.usage = chunk
            yield chunk
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
