"""``smg launch``: Shepherd-Model-Gateway-style flags, each a shorthand for one YAML field."""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The quick-start flags (same names as the Shepherd Model Gateway CLI)."""
    p.add_argument(
        "--worker-urls",
        nargs="+",
        required=True,
        metavar="URL",
        help="Worker base URLs (clusters[0].endpoints).",
    )
    p.add_argument(
        "--policy", default=None, help="Load-balancing policy (clusters[0].lb_policy.type)."
    )
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
    p.add_argument("--log-level", default=None, help="logging.level")
    p.add_argument("--log-json", action="store_true", default=None, help="logging.json")
    p.add_argument(
        "--print-config",
        action="store_true",
        help="Print the YAML this command line means, and exit.",
    )


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
        "endpoints": [{"url": u} for u in args.worker_urls],
    }
    doc: dict[str, Any] = {}
    filters: dict[str, Any] = {"request_id": {"type": "request_id"}}
    if args.api_key:
        filters["auth"] = {"type": "api_key", "config": {"keys": [args.api_key]}}
        listener["filters"] = ["request_id", "auth", "router"]
    if args.policy:
        cluster["lb_policy"] = {"type": args.policy}
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
    if args.workers is not None:
        doc["server"] = {"workers": args.workers}
    if args.model:
        doc["models"] = {args.model: {}}
    doc["listeners"] = [listener]
    doc["filters"] = filters
    doc["clusters"] = [cluster]
    return doc
