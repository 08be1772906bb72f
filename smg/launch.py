"""``smg launch``: Shepherd-Model-Gateway-style flags, each a shorthand for one YAML field."""

from __future__ import annotations

import argparse
from argparse import SUPPRESS
from collections.abc import Callable
from typing import Any, NamedTuple

from smg.launch_pd import add_pd_arguments, apply_pd, pd_urls


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The quick-start flags (same names as the Shepherd Model Gateway CLI)."""
    p.add_argument(
        "--worker-urls",
        nargs="+",
        metavar="URL",
        help="Worker base URLs (clusters[0].endpoints); or --pd-disaggregation.",
    )
    p.add_argument(
        "--policy", default=None, help="Load-balancing policy (clusters[0].lb_policy.type)."
    )
    for name, key, kind, help_text in _POLICY_FLAGS:
        p.add_argument(
            name,
            type=kind,
            default=None,
            help=f"{help_text} (clusters[0].lb_policy.config.{key}; implies --policy cache_aware).",
        )
    # The Rust smg spells it with a unit.
    p.add_argument("--eviction-interval-secs", dest="eviction_interval", type=float, help=SUPPRESS)
    p.add_argument("--host", default="127.0.0.1", help="Listener host (listeners[0].address).")
    p.add_argument("--port", type=int, default=30000, help="Listener port.")
    p.add_argument("--prometheus-host", default="127.0.0.1", help="Admin/metrics host.")
    p.add_argument(
        "--prometheus-port",
        type=int,
        default=None,
        help="Admin listener port, where /metrics lives (admin.address).",
    )
    p.add_argument(
        "--max-payload-size",
        type=int,
        default=None,
        help="Largest request body in bytes (listeners[0].max_payload_size).",
    )
    p.add_argument(
        "--request-timeout-secs",
        type=float,
        default=None,
        help="Total deadline per request (listeners[0].request_timeout, "
        "clusters[0].timeouts.total).",
    )
    p.add_argument(
        "--api-key", default=None, help="Require this API key from clients (an api_key filter)."
    )
    p.add_argument("--model", default=None, help="Declare a served model name (models).")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Gateway processes sharing the port (server.workers).",
    )
    p.add_argument(
        "--disable-metrics",
        action="store_true",
        help="Do not collect Prometheus metrics (server.metrics: false).",
    )
    _add_grpc_arguments(p)
    add_pd_arguments(p)
    p.add_argument(
        "--backend",
        choices=tuple(BACKEND_KEY_ENV),
        default=None,
        help="Workers are a cloud API (clusters[0].protocol); the key is read from "
        "OPENAI_API_KEY / ANTHROPIC_API_KEY / GEMINI_API_KEY (provider.api_key: ${VAR}).",
    )
    p.add_argument("--log-level", default=None, help="logging.level")
    p.add_argument("--log-json", action="store_true", default=None, help="logging.json")
    p.add_argument(
        "--enable-trace", action="store_true", default=None, help="tracing.enabled (OpenTelemetry)."
    )
    p.add_argument(
        "--otlp-traces-endpoint",
        default=None,
        metavar="URL",
        help="OTLP/gRPC collector (tracing.endpoint), e.g. http://127.0.0.1:4317.",
    )
    _add_resilience_arguments(p)
    p.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=None,
        help="Requests served at once; more wait in a queue (an admission filter).",
    )
    p.add_argument("--queue-size", type=int, default=None, help="admission: queue length.")
    p.add_argument(
        "--queue-timeout-secs", type=float, default=None, help="admission: longest wait."
    )
    p.add_argument(
        "--rate-limit-tokens-per-second",
        type=float,
        default=None,
        help="Requests admitted per second (a rate_limit filter, requests_per_second).",
    )
    p.add_argument(
        "--shutdown-grace-period-secs",
        type=float,
        default=None,
        help="How long SIGTERM waits for in-flight requests (server.shutdown_grace_period).",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="Print the YAML this command line means, and exit.",
    )


# Shorthands for the cache_aware policy's config: (flag, config key, type, help).
_POLICY_FLAGS: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("--cache-threshold", "cache_threshold", float, "Least matched share of the prompt (0-1)"),
    ("--balance-abs-threshold", "balance_abs_threshold", int, "Load gap that breaks balance"),
    ("--balance-rel-threshold", "balance_rel_threshold", float, "Load ratio that breaks balance"),
    ("--max-tree-size", "max_tree_size", int, "Prefix tree bound in characters"),
    ("--eviction-interval", "eviction_interval", float, "Seconds between eviction passes"),
)


# --backend NAME → the environment variable its key is read from.
BACKEND_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
}


class _Flag(NamedTuple):
    """A flag that sets one field of ``clusters[0]`` (a dotted path)."""

    name: str
    path: str
    kind: Callable[[str], Any] | None  # None: a switch that sets ``value``
    unit: str | None = None  # a duration flag: the unit of the number given
    value: Any = None


_CLUSTER_FLAGS = (
    _Flag("--health-check-interval-secs", "health_check.interval", float, "s"),
    _Flag("--health-check-timeout-secs", "health_check.timeout", float, "s"),
    _Flag("--health-failure-threshold", "health_check.unhealthy_threshold", int),
    _Flag("--health-success-threshold", "health_check.healthy_threshold", int),
    _Flag("--health-check-endpoint", "health_check.path", str),
    _Flag("--disable-health-check", "health_check.enabled", None, value=False),
    _Flag("--cb-failure-threshold", "outlier_detection.consecutive_5xx", int),
    _Flag("--cb-success-threshold", "outlier_detection.success_threshold", int),
    _Flag("--cb-timeout-duration-secs", "outlier_detection.base_ejection_time", float, "s"),
    _Flag("--cb-window-duration-secs", "outlier_detection.window", float, "s"),
    _Flag("--disable-circuit-breaker", "outlier_detection.enabled", None, value=False),
    _Flag("--retry-max-retries", "retry_policy.max_retries", int),
    _Flag("--retry-initial-backoff-ms", "retry_policy.backoff.base", float, "ms"),
    _Flag("--retry-max-backoff-ms", "retry_policy.backoff.max", float, "ms"),
    _Flag("--retry-backoff-multiplier", "retry_policy.backoff.multiplier", float),
    _Flag("--retry-jitter-factor", "retry_policy.backoff.jitter", float),
    _Flag("--disable-retries", "retry_policy.max_retries", None, value=0),
)


def _add_grpc_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("gRPC mode (worker URLs grpc://HOST:PORT)")
    g.add_argument(
        "--grpc-engine",
        choices=("vllm", "sglang", "trtllm"),
        default="vllm",
        help="Engine behind grpc:// workers (clusters[0].protocol <engine>_grpc).",
    )
    g.add_argument(
        "--model-path",
        default=None,
        help="Local model directory with the tokenizer and template (models.*.tokenizer).",
    )
    g.add_argument(
        "--tokenizer-path", default=None, help="Tokenizer directory if not --model-path."
    )
    g.add_argument("--chat-template", default=None, help="models.*.chat_template")
    g.add_argument("--tool-call-parser", default=None, help="models.*.tool_parser")
    g.add_argument("--reasoning-parser", default=None, help="models.*.reasoning_parser")


def _apply_grpc(args: argparse.Namespace, doc: dict[str, Any], cluster: dict[str, Any]) -> bool:
    """gRPC workers and model resources; True when the chain needs template + tokenize."""
    urls = args.worker_urls or pd_urls(args)
    if urls and all(u.startswith("grpc://") for u in urls):
        cluster["protocol"] = f"{args.grpc_engine}_grpc"
    tokenizer = args.tokenizer_path or args.model_path
    name = args.model or args.model_path or args.tokenizer_path
    if name is None:
        return False
    model: dict[str, Any] = {}
    if tokenizer is not None:
        model["tokenizer"] = tokenizer
    for flag, key in (
        ("chat_template", "chat_template"),
        ("tool_call_parser", "tool_parser"),
        ("reasoning_parser", "reasoning_parser"),
    ):
        if getattr(args, flag) is not None:
            model[key] = getattr(args, flag)
    doc["models"] = {name: model}
    return tokenizer is not None


def _dest(flag: _Flag) -> str:
    return flag.name[2:].replace("-", "_")


def _add_resilience_arguments(p: argparse.ArgumentParser) -> None:
    for f in _CLUSTER_FLAGS:
        where = f"clusters[0].{f.path}"
        if f.kind is None:
            p.add_argument(
                f.name, action="store_true", default=None, help=f"Sets {where}: {f.value!r}."
            )
        else:
            unit = f" in {f.unit}" if f.unit else ""
            p.add_argument(f.name, type=f.kind, default=None, help=f"{where}{unit}.")


def _duration(value: float, unit: str) -> str:
    """``value`` in ``unit`` as a duration string the schema accepts (no exponent form)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return f"{text}{unit}"


def _apply_cluster_flags(args: argparse.Namespace, cluster: dict[str, Any]) -> None:
    # in table order, so a --disable-* switch wins over the value flags before it
    for f in _CLUSTER_FLAGS:
        given = getattr(args, _dest(f))
        if given is None:
            continue
        if f.kind is None:
            value = f.value
        elif f.unit is not None:
            value = _duration(given, f.unit)
        else:
            value = given
        *parents, leaf = f.path.split(".")
        node = cluster
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value


def _tracing_doc(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.enable_trace:
        out["enabled"] = True
    endpoint = args.otlp_traces_endpoint
    if endpoint is not None:
        # The Rust smg takes host:port; the config wants a URL.
        out["endpoint"] = endpoint if "://" in endpoint else f"http://{endpoint}"
    return out


def config_doc(args: argparse.Namespace) -> dict[str, Any]:
    """The config document the flags describe; unset flags leave schema defaults alone."""
    listener: dict[str, Any] = {
        "name": "main",
        "address": f"{args.host}:{args.port}",
        "filters": ["request_id", "router"],
        "routes": [{"match": {"model": "*"}, "cluster": "workers"}],
    }
    cluster: dict[str, Any] = {
        "name": "workers",
        "protocol": "openai_http",
        "endpoints": [{"url": u} for u in args.worker_urls or ()],
    }
    doc: dict[str, Any] = {}
    filters: dict[str, Any] = {"request_id": {"type": "request_id"}}
    chain = ["request_id"]
    if args.api_key:
        filters["auth"] = {"type": "api_key", "config": {"keys": [args.api_key]}}
        chain.append("auth")
    if args.rate_limit_tokens_per_second is not None:
        filters["rate_limit"] = {
            "type": "rate_limit",
            "config": {"requests_per_second": args.rate_limit_tokens_per_second},
        }
        chain.append("rate_limit")
    if args.max_concurrent_requests is not None:
        adm: dict[str, Any] = {"max_concurrent_requests": args.max_concurrent_requests}
        if args.queue_size is not None:
            adm["queue_size"] = args.queue_size
        if args.queue_timeout_secs is not None:
            adm["queue_timeout"] = _duration(args.queue_timeout_secs, "s")
        filters["admission"] = {"type": "admission", "config": adm}
        chain.append("admission")
    if args.backend is not None:
        # A cloud API: the key stays a reference, so it is never written in a config.
        cluster["protocol"] = args.backend
        cluster["provider"] = {"api_key": "${" + BACKEND_KEY_ENV[args.backend] + "}"}
    if _apply_grpc(args, doc, cluster):
        filters["chat_template"] = {"type": "chat_template"}
        filters["tokenize"] = {"type": "tokenize"}
        chain += ["chat_template", "tokenize"]
    listener["filters"] = [*chain, "router"]
    policy_config = {
        key: getattr(args, name[2:].replace("-", "_"))
        for name, key, _, _ in _POLICY_FLAGS
        if getattr(args, name[2:].replace("-", "_"), None) is not None
    }
    if policy_config:
        # A policy that does not take these keys is refused by config validation.
        cluster["lb_policy"] = {"type": args.policy or "cache_aware", "config": policy_config}
    elif args.policy:
        cluster["lb_policy"] = {"type": args.policy}
    _apply_cluster_flags(args, cluster)
    apply_pd(args, cluster, policy_config)
    if args.max_payload_size is not None:
        listener["max_payload_size"] = args.max_payload_size
    if args.request_timeout_secs is not None:
        listener["request_timeout"] = f"{args.request_timeout_secs:g}s"
        cluster["timeouts"] = {"total": f"{args.request_timeout_secs:g}s"}
    if args.prometheus_port is not None:
        doc["admin"] = {"address": f"{args.prometheus_host}:{args.prometheus_port}"}
    logging_doc: dict[str, Any] = {}
    if args.log_level:
        logging_doc["level"] = args.log_level.lower()
    if args.log_json:
        logging_doc["json"] = True
    if logging_doc:
        doc["logging"] = logging_doc
    tracing = _tracing_doc(args)
    if tracing:
        doc["tracing"] = tracing
    server: dict[str, Any] = {}
    if args.workers is not None:
        server["workers"] = args.workers
    if args.disable_metrics:
        server["metrics"] = False
    if args.shutdown_grace_period_secs is not None:
        server["shutdown_grace_period"] = _duration(args.shutdown_grace_period_secs, "s")
    if server:
        doc["server"] = server
    if args.model and "models" not in doc:
        doc["models"] = {args.model: {}}
    doc["listeners"] = [listener]
    doc["filters"] = filters
    doc["clusters"] = [cluster]
    return doc
