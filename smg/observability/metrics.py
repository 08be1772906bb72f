"""Every Prometheus metric of the gateway, defined here and nowhere else.

Two kinds live here:

* **event metrics** (counters, gauges, histograms — the lock-free families of
  ``smg.observability.fast``) that code updates as things happen, through label
  children looked up once and cached, never ``labels()`` per request;
* **state metrics** (``StateMetric`` specs, mostly gauges) read from live objects at
  scrape time by ``StateCollector`` — endpoint in-flight, health, circuit, pools,
  engine load — so the hot path pays nothing for them.

With several worker processes each process keeps its own registry and worker 0's admin
listener merges them (``smg.observability.workers``): counters and histograms add up,
gauges merge as their ``merge`` rule says (``sum`` by default).
``docs/metrics.md`` is generated from this module (``python -m smg.observability.docgen``).
"""

from __future__ import annotations

import time
from typing import Final

from prometheus_client import REGISTRY

from smg.observability.fast import FastCounter as Counter
from smg.observability.fast import FastGauge as Gauge
from smg.observability.fast import FastHistogram as Histogram
from smg.observability.fast import Merge
from smg.observability.scraped import StateCollector, StateMetric, StateSource

_LATENCY: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
_TOKEN_GAP: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5,
)  # fmt: skip
_FAST: Final = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1,
)  # fmt: skip
_BYTES: Final = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)

# ---------------------------------------------------------------- requests (listener edge)
REQUESTS: Final = Counter(
    "smg_requests_total",
    "Requests answered, by listener, route, model and HTTP status.",
    ["listener", "route", "model", "status"],
)
REQUEST_DURATION: Final = Histogram(
    "smg_request_duration_seconds",
    "Time from request received to response finished (streams: to the last byte).",
    ["listener", "route"],
    buckets=_LATENCY,
)
REQUESTS_IN_FLIGHT: Final = Gauge(
    "smg_requests_in_flight",
    "Requests being served right now, per listener.",
    ["listener"],
)
REQUEST_BODY_BYTES: Final = Histogram(
    "smg_request_body_bytes",
    "Size of request bodies received.",
    ["listener"],
    buckets=_BYTES,
)
RESPONSES_STREAMED: Final = Counter(
    "smg_responses_streamed_total",
    "Responses sent as server-sent event streams, by listener and route.",
    ["listener", "route"],
)
STREAM_CHUNKS: Final = Counter(
    "smg_stream_chunks_total",
    "Stream chunks relayed to clients, by listener and route.",
    ["listener", "route"],
)
ERRORS: Final = Counter(
    "smg_errors_total",
    "Requests that ended in an error, by listener, error kind and who was to blame "
    "(downstream = the client, upstream = a worker, internal = the gateway).",
    ["listener", "kind", "blame"],
)
CLIENT_DISCONNECTS: Final = Counter(
    "smg_client_disconnects_total",
    "Requests whose client went away before the end.",
    ["listener"],
)

# ---------------------------------------------------------------- latency of generation
TTFT: Final = Histogram(
    "smg_time_to_first_token_seconds",
    "Streams: time from request received to the first chunk after the head.",
    ["listener", "route"],
    buckets=_LATENCY,
)
INTER_TOKEN_LATENCY: Final = Histogram(
    "smg_inter_token_latency_seconds",
    "Streams: time between consecutive chunks relayed to the client.",
    ["listener", "route"],
    buckets=_TOKEN_GAP,
)
TIME_PER_OUTPUT_TOKEN: Final = Histogram(
    "smg_time_per_output_token_seconds",
    "Streams: (last chunk - first chunk) / (output tokens - 1), one sample per request "
    "(output tokens from usage when reported, else chunks).",
    ["listener", "route"],
    buckets=_TOKEN_GAP,
)
TOKENS: Final = Counter(
    "smg_tokens_total",
    "Tokens by kind (prompt, completion, cached, reasoning) as reported in usage "
    "(gRPC mode: counted by the gateway).",
    ["listener", "model", "kind"],
)

# ---------------------------------------------------------------- upstream attempts
UPSTREAM_ATTEMPTS: Final = Counter(
    "smg_upstream_attempts_total",
    "Attempts sent to endpoints, by outcome (ok or the error kind).",
    ["cluster", "endpoint", "outcome"],
)
UPSTREAM_ATTEMPT_DURATION: Final = Histogram(
    "smg_upstream_attempt_duration_seconds",
    "One attempt, from sending to the response head (or the failure).",
    ["cluster", "outcome"],
    buckets=_LATENCY,
)
RETRIES: Final = Counter(
    "smg_retries_total",
    "Retries sent to another endpoint, by the error kind that caused them.",
    ["cluster", "kind"],
)
RETRIES_EXHAUSTED: Final = Counter(
    "smg_retries_exhausted_total",
    "Retryable failures not retried, by why (max_retries, budget, deadline, no_endpoint).",
    ["cluster", "reason"],
)
FALLBACKS: Final = Counter(
    "smg_route_fallbacks_total",
    "Requests that moved on to a route's fallback cluster.",
    ["route", "cluster"],
)
UPSTREAM_CANCELLATIONS: Final = Counter(
    "smg_upstream_cancellations_total",
    "Upstream requests cancelled because the client went away (HTTP: connection "
    "closed; gRPC: Abort sent).",
    ["cluster"],
)
TOKENS_AFTER_CANCEL: Final = Counter(
    "smg_tokens_after_cancel_total",
    "gRPC mode: output tokens the engine generated for requests whose client was gone "
    "(received between the disconnect and the end of the engine stream).",
    ["cluster"],
)

# ---------------------------------------------------------------- endpoints and health
HEALTH_CHECKS: Final = Counter(
    "smg_health_checks_total",
    "Active health checks by endpoint and result (success, failure, timeout).",
    ["cluster", "endpoint", "result"],
)
HEALTH_CHECK_DURATION: Final = Histogram(
    "smg_health_check_duration_seconds",
    "Duration of active health checks.",
    ["cluster"],
    buckets=_LATENCY,
)
HEALTH_TRANSITIONS: Final = Counter(
    "smg_health_transitions_total",
    "Endpoints turning healthy or unhealthy by active health checks.",
    ["cluster", "endpoint", "to"],
)
CIRCUIT_TRANSITIONS: Final = Counter(
    "smg_circuit_transitions_total",
    "Circuit breaker state changes (closed, open, half_open) per endpoint.",
    ["cluster", "endpoint", "from", "to"],
)
OUTLIER_EJECTIONS: Final = Counter(
    "smg_outlier_ejections_total",
    "Endpoints ejected by outlier detection, by reason.",
    ["cluster", "endpoint", "reason"],
)
ENGINE_SCRAPES: Final = Counter(
    "smg_engine_scrapes_total",
    "Scrapes of workers' own /metrics for load signals, by result.",
    ["cluster", "result"],
)

# ---------------------------------------------------------------- load balancing
LB_DECISIONS: Final = Counter(
    "smg_lb_decisions_total",
    "Routing decisions by policy and reason (hit, miss, load_fallback, sticky, pick, ...).",
    ["cluster", "policy", "reason"],
)
LB_DECISION_DURATION: Final = Histogram(
    "smg_lb_decision_duration_seconds",
    "Time one load-balancing decision took.",
    ["cluster", "policy"],
    buckets=_FAST,
)
CACHE_PREDICTED_TOKENS: Final = Counter(
    "smg_cache_predicted_tokens_total",
    "Prompt tokens the routing policy expected the endpoint to have cached "
    "(matched prefix; characters / 4 in HTTP mode), for answers that reported usage.",
    ["cluster", "endpoint"],
)
CACHE_REPORTED_TOKENS: Final = Counter(
    "smg_cache_reported_tokens_total",
    "Cached prompt tokens the engine reported (usage.prompt_tokens_details.cached_tokens).",
    ["cluster", "endpoint"],
)
CACHE_UNREPORTED: Final = Counter(
    "smg_cache_unreported_total",
    "Answers routed by a prefix-aware policy that carried no cached_tokens to check against.",
    ["cluster", "endpoint"],
)
CACHE_PREDICTION_RATIO: Final = Gauge(
    "smg_cache_prediction_ratio",
    "Reported / predicted cached tokens over the endpoint's recent answers (1: the routing "
    "tree models the engine's cache; near 0: predicted hits that did not happen).",
    ["cluster", "endpoint"],
    merge="max",
)

# ---------------------------------------------------------------- filters
FILTER_DURATION: Final = Histogram(
    "smg_filter_duration_seconds",
    "Time spent in each filter's on_request (the router's includes the wait for the "
    "upstream response head).",
    ["listener", "filter"],
    buckets=_FAST + _LATENCY[5:],
)
RATE_LIMITED: Final = Counter(
    "smg_rate_limit_rejections_total",
    "Requests rejected by rate_limit filters, by filter and limit (requests, tokens).",
    ["filter", "limit"],
)
ADMISSION_REJECTIONS: Final = Counter(
    "smg_admission_rejections_total",
    "Requests rejected by admission filters, by reason (queue_full, timeout).",
    ["filter", "reason"],
)
ADMISSION_WAIT: Final = Histogram(
    "smg_admission_queue_wait_seconds",
    "Time admitted requests waited in the queue.",
    ["filter"],
    buckets=_LATENCY,
)
# ---------------------------------------------------------------- prefill/decode disaggregation
PD_TTFT: Final = Histogram(
    "smg_pd_time_to_first_token_seconds",
    "PD clusters, streamed answers: time from sending an attempt's legs to the decode "
    "leg's first chunk (prefill, KV handoff and the first decode step).",
    ["cluster", "style"],
    buckets=_LATENCY,
)
PD_PREFILL_DURATION: Final = Histogram(
    "smg_pd_prefill_duration_seconds",
    "PD clusters: time from sending the prefill leg to its complete answer.",
    ["cluster", "style"],
    buckets=_LATENCY,
)
PD_PAIRING_FAILURES: Final = Counter(
    "smg_pd_pairing_failures_total",
    "PD clusters: picks that found no available endpoint in a group (prefill, decode).",
    ["cluster", "group"],
)
PD_LEG_ERRORS: Final = Counter(
    "smg_pd_leg_errors_total",
    "PD clusters: attempts that failed on one leg (prefill, decode), by error kind; the "
    "other leg was aborted.",
    ["cluster", "leg", "kind"],
)

# ---------------------------------------------------------------- configuration, process
CONFIG_RELOADS: Final = Counter(
    "smg_config_reloads_total", "Config reload attempts by result.", ["result"]
)
CONFIG_VERSION: Final = Gauge(
    "smg_config_version_info",
    "The config version in force (value 1).",
    ["version"],
    merge="max",
)
CONFIG_LAST_RELOAD: Final = Gauge(
    "smg_config_last_reload_timestamp_seconds",
    "Unix time of the last reload attempt, by result.",
    ["result"],
    merge="max",
)
BUILD_INFO: Final = Gauge(
    "smg_build_info",
    "The gateway's version (value 1).",
    ["version", "python"],
    merge="max",
)


_EP: Final = ("cluster", "endpoint")
ENDPOINT_IN_FLIGHT: Final = StateMetric(
    "smg_endpoint_in_flight", "Requests in flight per endpoint.", _EP
)
ENDPOINT_HEALTHY: Final = StateMetric(
    "smg_endpoint_healthy",
    "1 if the endpoint takes traffic (health check passing, circuit admitting).",
    _EP,
    "min",
)
ENDPOINT_WEIGHT: Final = StateMetric(
    "smg_endpoint_weight", "Configured endpoint weight.", _EP, "max"
)
CIRCUIT_STATE: Final = StateMetric(
    "smg_circuit_state",
    "Circuit breaker state per endpoint: 0 closed, 1 half-open, 2 open (worst worker).",
    _EP,
    "max",
)
UPSTREAM_CONNECTIONS: Final = StateMetric(
    "smg_upstream_connections",
    "Upstream connections per endpoint by state (idle, in_use).",
    ("cluster", "endpoint", "state"),
)
ENGINE_RUNNING: Final = StateMetric(
    "smg_engine_running_requests",
    "Requests the engine reports running (scraped from its /metrics).",
    _EP,
    "max",
)
ENGINE_WAITING: Final = StateMetric(
    "smg_engine_waiting_requests",
    "Requests the engine reports queued (scraped from its /metrics).",
    _EP,
    "max",
)
ENGINE_KV_USAGE: Final = StateMetric(
    "smg_engine_kv_cache_usage_ratio",
    "Fraction of the engine's KV cache in use (scraped from its /metrics).",
    _EP,
    "max",
)
ENGINE_CACHE_HIT_RATE: Final = StateMetric(
    "smg_engine_prefix_cache_hit_ratio",
    "The engine's prefix cache hit rate (vLLM: hits / queries since start; SGLang: "
    "its cache_hit_rate).",
    _EP,
    "max",
)
PREFIX_TREE_SIZE: Final = StateMetric(
    "smg_prefix_tree_size",
    "Characters or tokens held by the cluster's prefix-aware routing tree.",
    ("cluster",),
    "max",
)
PREFIX_TREE_EVICTIONS: Final = StateMetric(
    "smg_prefix_tree_evictions_total",
    "Characters or tokens evicted from the cluster's prefix-aware routing tree to keep "
    "it within its size bound.",
    ("cluster",),
    kind="counter",
)
CLUSTER_ENDPOINTS: Final = StateMetric(
    "smg_cluster_endpoints",
    "Endpoints per cluster by state (total, available).",
    ("cluster", "state"),
    "min",
)
TOKENIZER_CACHE: Final = StateMetric(
    "smg_tokenizer_cache_lookups_total",
    "gRPC mode: prompt encode-cache lookups per tokenizer directory, by result (hit, miss).",
    ("tokenizer", "result"),
    kind="counter",
)
ADMISSION_QUEUE_DEPTH: Final = StateMetric(
    "smg_admission_queue_depth", "Requests waiting in admission queues.", ("filter",)
)
ADMISSION_ACTIVE: Final = StateMetric(
    "smg_admission_active", "Requests admitted and running, per admission filter.", ("filter",)
)
WORKER_PROCESSES: Final = StateMetric(
    "smg_worker_processes",
    "Worker processes whose metrics this scrape merged (each counts itself).",
    (),
)

_state_collector: StateCollector | None = None


def register_state_source(source: StateSource) -> None:
    """Install the scrape-time collector for this process (replacing an earlier one)."""
    global _state_collector
    if _state_collector is not None:
        REGISTRY.unregister(_state_collector)
    _state_collector = StateCollector(source, _state_metrics())
    REGISTRY.register(_state_collector)


def set_config_version(version: str) -> None:
    """Expose exactly one version label."""
    CONFIG_VERSION.clear()
    CONFIG_VERSION.labels(version).set(1)


def reload_attempted(result: str) -> None:
    """Count one reload attempt and stamp its time."""
    CONFIG_RELOADS.labels(result).inc()
    CONFIG_LAST_RELOAD.labels(result).set(time.time())


def _state_metrics() -> tuple[StateMetric, ...]:
    return tuple(v for v in globals().values() if isinstance(v, StateMetric))


def merge_rule(name: str) -> Merge:
    """How gauge family ``name`` merges across worker processes (its declared rule)."""
    rule = _MERGE.get(name)
    if rule is None:
        rule = _MERGE[name] = next(
            (
                v.merge
                for v in globals().values()
                if isinstance(v, StateMetric | Gauge) and v.name == name
            ),
            "sum",
        )
    return rule


_MERGE: dict[str, Merge] = {}
