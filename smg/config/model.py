"""Typed, frozen view of a validated configuration.

Field names and defaults come from ``schemas/smg.schema.json`` (the single source of
truth); :mod:`smg.config.loader` fills these dataclasses from the validated document,
after defaults were applied, so nothing here repeats a default value.
Durations are seconds (float); sizes are bytes (int).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The admin listener (health, metrics, config, clusters, reload)."""

    address: str


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Log level and format."""

    level: str
    json: bool
    access_log: bool


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """OpenTelemetry tracing: exporter, collector, sampling (compared whole on reload)."""

    enabled: bool
    exporter: str
    endpoint: str
    sample_ratio: float
    service_name: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Process-level settings."""

    workers: int
    shutdown_grace_period: float
    watch_config: bool
    metrics: bool = True


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """What a request must look like to take a route; None means 'any'."""

    model: str | None
    path: str | None
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class WeightedCluster:
    """One target of a route with its share of traffic."""

    name: str
    weight: int


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """Match → one or more weighted clusters, plus fallbacks."""

    name: str
    match: RouteMatch
    clusters: tuple[WeightedCluster, ...]
    fallback: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """An address, an ordered filter chain and a route table."""

    name: str
    address: str
    filters: tuple[str, ...]
    routes: tuple[RouteConfig, ...]
    max_payload_size: int
    request_timeout: float
    route_header: bool = False


@dataclass(frozen=True, slots=True)
class FilterConfig:
    """A named filter instance: its type and its own (type-validated) config."""

    name: str
    type: str
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """One worker address."""

    url: str
    weight: int
    bootstrap_port: int | None = None
    """PD prefill endpoints (style sglang): the engine's bootstrap port."""


@dataclass(frozen=True, slots=True)
class LbPolicyConfig:
    """A load-balancing policy by name and its config."""

    type: str
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TimeoutsConfig:
    """Deadlines for one upstream request."""

    connect: float
    first_byte: float
    idle: float
    total: float


@dataclass(frozen=True, slots=True)
class ConnectionPoolConfig:
    """Keep-alive pool per endpoint."""

    max_connections: int
    idle_timeout: float


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """Cloud API settings of a cluster (protocols openai, anthropic, gemini, openai_compatible)."""

    api_key: str | None = None
    pass_client_key: bool = False
    api_version: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    model_map: tuple[tuple[str, str], ...] = ()
    """(requested model, the provider's model); ``*`` maps every other name."""

    def provider_model(self, requested: str) -> str:
        """The model name to send the provider for a request that asked for ``requested``."""
        default = requested
        for asked, theirs in self.model_map:
            if asked == requested:
                return theirs
            if asked == "*":
                default = theirs
        return default


@dataclass(frozen=True, slots=True)
class HealthCheckConfig:
    """Active health checks of a cluster's endpoints."""

    enabled: bool
    path: str
    interval: float
    timeout: float
    unhealthy_threshold: int
    healthy_threshold: int


@dataclass(frozen=True, slots=True)
class OutlierDetectionConfig:
    """The per-endpoint circuit breaker fed by request outcomes."""

    enabled: bool
    consecutive_5xx: int
    consecutive_local_origin_failures: int
    failure_rate_threshold: float
    failure_rate_min_requests: int
    window: float
    base_ejection_time: float
    max_ejection_time: float
    success_threshold: int
    half_open_max_requests: int
    max_ejection_percent: int


@dataclass(frozen=True, slots=True)
class BackoffConfig:
    """Wait between two attempts of a request."""

    base: float
    max: float
    multiplier: float
    jitter: float


@dataclass(frozen=True, slots=True)
class RetryBudgetConfig:
    """Cluster-wide cap on retries."""

    ratio: float
    min_retries_per_second: float


@dataclass(frozen=True, slots=True)
class RetryPolicyConfig:
    """When and how the router retries a failed attempt."""

    max_retries: int
    retry_on: frozenset[str]
    retriable_status_codes: frozenset[int]
    backoff: BackoffConfig
    per_try_timeout: float | None
    budget: RetryBudgetConfig


@dataclass(frozen=True, slots=True)
class PdGroupConfig:
    """One endpoint group of a PD cluster and its load-balancing policy."""

    endpoints: tuple[EndpointConfig, ...]
    lb_policy: LbPolicyConfig


@dataclass(frozen=True, slots=True)
class PdConfig:
    """Prefill/decode disaggregation of a cluster (docs/pd.md)."""

    style: str
    prefill: PdGroupConfig
    decode: PdGroupConfig


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """A set of endpoints speaking one protocol, with one LB policy."""

    name: str
    protocol: str
    endpoints: tuple[EndpointConfig, ...]
    lb_policy: LbPolicyConfig
    timeouts: TimeoutsConfig
    connection_pool: ConnectionPoolConfig
    health_check: HealthCheckConfig
    outlier_detection: OutlierDetectionConfig
    retry_policy: RetryPolicyConfig
    config_hash: str = field(compare=False)
    provider: ProviderConfig = field(default_factory=ProviderConfig)
    pd: PdConfig | None = None
    """Prefill/decode groups; ``endpoints`` then lists decode's and prefill's (in that order)
    and ``lb_policy`` is decode's."""


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """A model the gateway serves (listed by /v1/models), and its gRPC-mode resources."""

    name: str
    owned_by: str
    tokenizer: str | None = None
    chat_template: str | None = None
    tool_parser: str = "auto"
    reasoning_parser: str = "auto"
    enable_thinking: bool = True


@dataclass(frozen=True, slots=True)
class Config:
    """A whole validated configuration file."""

    source: str
    version_hash: str
    admin: AdminConfig | None
    logging: LoggingConfig
    server: ServerConfig
    models: tuple[ModelConfig, ...]
    listeners: tuple[ListenerConfig, ...]
    filters: dict[str, FilterConfig]
    clusters: tuple[ClusterConfig, ...]
    tracing: TracingConfig
    raw: dict[str, Any] = field(compare=False, repr=False)
    # paths in ``raw`` whose value came from a secret-looking environment variable
    secret_paths: frozenset[tuple[str | int, ...]] = field(
        default=frozenset(), compare=False, repr=False
    )
    # line of each path as written in the file (before shorthands were expanded); empty
    # for documents built in memory; look up with smg.config.errors.line_for
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict, compare=False, repr=False)

    def cluster(self, name: str) -> ClusterConfig:
        """The cluster named ``name`` (references were checked at load)."""
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)
