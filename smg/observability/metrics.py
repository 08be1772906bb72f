"""Every Prometheus metric of the gateway, defined here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONFIG_RELOADS = Counter(
    "smg_config_reloads_total", "Config reload attempts by result.", ["result"]
)
CONFIG_VERSION = Gauge(
    "smg_config_version_info", "The config version in force (value 1).", ["version"]
)
REQUESTS = Counter(
    "smg_requests_total",
    "Requests answered, by listener, route, model and status.",
    ["listener", "route", "model", "status"],
)
REQUEST_DURATION = Histogram(
    "smg_request_duration_seconds",
    "Time from request received to response finished.",
    ["listener", "route"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CLIENT_DISCONNECTS = Counter(
    "smg_client_disconnects_total",
    "Requests whose client went away before the end.",
    ["listener"],
)

HEALTH_CHECKS = Counter(
    "smg_health_checks_total",
    "Active health checks by endpoint and result (success, failure, timeout).",
    ["cluster", "endpoint", "result"],
)
CIRCUIT_TRANSITIONS = Counter(
    "smg_circuit_transitions_total",
    "Circuit breaker state changes (closed, open, half_open) per endpoint.",
    ["cluster", "endpoint", "from", "to"],
)
OUTLIER_EJECTIONS = Counter(
    "smg_outlier_ejections_total",
    "Endpoints ejected by outlier detection, by reason.",
    ["cluster", "endpoint", "reason"],
)
LB_DECISIONS = Counter(
    "smg_lb_decisions_total",
    "Routing decisions of prefix- and load-aware policies, by reason (hit, miss, ...).",
    ["cluster", "policy", "reason"],
)
CACHE_PREDICTED_TOKENS = Counter(
    "smg_cache_predicted_tokens_total",
    "Prompt tokens the routing policy expected the endpoint to have cached "
    "(matched prefix; characters / 4 in HTTP mode), for answers that reported usage.",
    ["cluster", "endpoint"],
)
CACHE_REPORTED_TOKENS = Counter(
    "smg_cache_reported_tokens_total",
    "Cached prompt tokens the engine reported (usage.prompt_tokens_details.cached_tokens).",
    ["cluster", "endpoint"],
)
CACHE_UNREPORTED = Counter(
    "smg_cache_unreported_total",
    "Answers routed by a prefix-aware policy that carried no cached_tokens to check against.",
    ["cluster", "endpoint"],
)
CACHE_PREDICTION_RATIO = Gauge(
    "smg_cache_prediction_ratio",
    "Reported / predicted cached tokens over the endpoint's recent answers (1: the routing "
    "tree models the engine's cache; near 0: predicted hits that did not happen).",
    ["cluster", "endpoint"],
)


def set_config_version(version: str) -> None:
    """Expose exactly one version label."""
    CONFIG_VERSION.clear()
    CONFIG_VERSION.labels(version=version).set(1)


class EndpointRow(NamedTuple):
    """One endpoint as the scrape-time collector sees it."""

    cluster: str
    endpoint: str
    in_flight: int
    available: bool
    weight: int
    circuit: int
    """0 closed, 1 half-open, 2 open (the values of ``smg_circuit_state``)."""


EndpointSource = Callable[[], Iterable[EndpointRow]]


class EndpointCollector(Collector):
    """Reads endpoint state at scrape time, so the hot path pays nothing for these gauges."""

    def __init__(self, source: EndpointSource):
        self._source = source

    def collect(self) -> Iterable[Metric]:
        """Endpoint rows → gauges."""
        labels = ["cluster", "endpoint"]
        in_flight = GaugeMetricFamily(
            "smg_endpoint_in_flight", "Requests in flight per endpoint.", labels=labels
        )
        healthy = GaugeMetricFamily(
            "smg_endpoint_healthy",
            "1 if the endpoint takes traffic (health check passing, circuit admitting).",
            labels=labels,
        )
        weight = GaugeMetricFamily(
            "smg_endpoint_weight", "Configured endpoint weight.", labels=labels
        )
        circuit = GaugeMetricFamily(
            "smg_circuit_state",
            "Circuit breaker state per endpoint: 0 closed, 1 half-open, 2 open.",
            labels=labels,
        )
        for row in self._source():
            key = [row.cluster, row.endpoint]
            in_flight.add_metric(key, row.in_flight)
            healthy.add_metric(key, 1 if row.available else 0)
            weight.add_metric(key, row.weight)
            circuit.add_metric(key, row.circuit)
        yield in_flight
        yield healthy
        yield weight
        yield circuit


def register_endpoint_collector(source: EndpointSource) -> EndpointCollector:
    """Install the scrape-time endpoint collector once per process."""
    col = EndpointCollector(source)
    REGISTRY.register(col)
    return col
