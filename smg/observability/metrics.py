"""Every Prometheus metric of the gateway, defined here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Iterable

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


def set_config_version(version: str) -> None:
    """Expose exactly one version label."""
    CONFIG_VERSION.clear()
    CONFIG_VERSION.labels(version=version).set(1)


class EndpointCollector(Collector):
    """Reads endpoint state at scrape time, so the hot path pays nothing for these gauges."""

    def __init__(self, source: Callable[[], Iterable[tuple[str, str, int, bool, int]]]):
        self._source = source

    def collect(self) -> Iterable[Metric]:
        """(cluster, url, in_flight, healthy, weight) rows → gauges."""
        in_flight = GaugeMetricFamily(
            "smg_endpoint_in_flight",
            "Requests in flight per endpoint.",
            labels=["cluster", "endpoint"],
        )
        healthy = GaugeMetricFamily(
            "smg_endpoint_healthy",
            "1 if the endpoint takes traffic.",
            labels=["cluster", "endpoint"],
        )
        weight = GaugeMetricFamily(
            "smg_endpoint_weight", "Configured endpoint weight.", labels=["cluster", "endpoint"]
        )
        for cluster, url, n, ok, w in self._source():
            in_flight.add_metric([cluster, url], n)
            healthy.add_metric([cluster, url], 1 if ok else 0)
            weight.add_metric([cluster, url], w)
        yield in_flight
        yield healthy
        yield weight


def register_endpoint_collector(
    source: Callable[[], Iterable[tuple[str, str, int, bool, int]]],
) -> EndpointCollector:
    """Install the scrape-time endpoint collector once per process."""
    col = EndpointCollector(source)
    REGISTRY.register(col)
    return col
