"""Command line of the simulated engine (``smg sim`` / ``python -m smg.sim``)."""

from __future__ import annotations

import argparse
import sys

from smg.sim.config import SimConfig, parse_port_range


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the simulator's flags on ``p``."""
    d = SimConfig()
    net = p.add_argument_group("network")
    net.add_argument("--host", default=d.host, help="address to bind (default %(default)s)")
    where = net.add_mutually_exclusive_group()
    where.add_argument("--port", type=int, help="port to serve (0: any free port; default 8000)")
    where.add_argument(
        "--ports", metavar="A-B", help="serve one independent engine on each port of A..B"
    )

    model = p.add_argument_group("model")
    model.add_argument("--model", default=d.model, help="served model name")
    model.add_argument("--seed", type=int, default=d.seed, help="seed of text and faults")
    model.add_argument(
        "--block-size",
        type=int,
        default=d.block_size,
        help="tokens per KV block (default %(default)s)",
    )
    model.add_argument(
        "--cache-blocks",
        type=int,
        default=d.cache_blocks,
        help="KV cache capacity in blocks (default %(default)s)",
    )
    model.add_argument(
        "--max-running",
        type=int,
        default=d.max_running,
        help="requests decoded at once; more wait in a queue (default %(default)s)",
    )
    model.add_argument(
        "--output-tokens",
        type=int,
        default=d.output_tokens,
        help="tokens generated when a request sets no max_tokens (default %(default)s)",
    )
    model.add_argument(
        "--max-model-len",
        type=int,
        default=d.max_model_len,
        help="context length in tokens (default %(default)s)",
    )
    model.add_argument(
        "--embedding-dim",
        type=int,
        default=d.embedding_dim,
        help="embedding vector size (default %(default)s)",
    )

    lat = p.add_argument_group("latency (0 means no sleep at all)")
    lat.add_argument(
        "--ttft-base-ms",
        type=float,
        default=d.ttft_base_ms,
        help="time to first token of a fully cached prompt (default %(default)s)",
    )
    lat.add_argument(
        "--ttft-per-token-us",
        type=float,
        default=d.ttft_per_token_us,
        help="prefill cost per uncached prompt token (default %(default)s)",
    )
    lat.add_argument(
        "--itl-ms", type=float, default=d.itl_ms, help="inter-token latency (default %(default)s)"
    )
    lat.add_argument(
        "--itl-per-request-ms",
        type=float,
        default=d.itl_per_request_ms,
        help="extra inter-token latency per other running request (default %(default)s)",
    )

    faults = p.add_argument_group("fault injection")
    faults.add_argument(
        "--fail-rate", type=float, default=d.fail_rate, help="fraction of requests failed"
    )
    faults.add_argument(
        "--fail-status",
        type=int,
        default=d.fail_status,
        help="HTTP status of failed requests (default %(default)s)",
    )
    faults.add_argument(
        "--hang-rate", type=float, default=d.hang_rate, help="accept and never answer"
    )
    faults.add_argument(
        "--drop-after-chunks",
        type=int,
        default=d.drop_after_chunks,
        metavar="N",
        help="close streams abruptly after N chunks",
    )
    faults.add_argument(
        "--slow-start",
        type=float,
        default=d.slow_start_s,
        metavar="S",
        help="answer 503 for the first S seconds",
    )
    pd = p.add_argument_group("prefill/decode disaggregation (one leg of PD)")
    pd.add_argument(
        "--role",
        choices=("both", "prefill", "decode"),
        default=d.role,
        help="serve whole requests, or only the prefill or decode leg (default %(default)s)",
    )
    pd.add_argument(
        "--pd-style",
        choices=("sglang", "vllm"),
        default=d.pd_style,
        help="sglang: bootstrap host/port/room; vllm: kv_transfer_params (default %(default)s)",
    )
    pd.add_argument(
        "--bootstrap-port",
        type=int,
        default=d.bootstrap_port,
        help="prefill: KV transfer port (SGLang bootstrap, vLLM side channel; 0: any free; "
        "default %(default)s)",
    )
    pd.add_argument(
        "--kv-timeout",
        type=float,
        default=d.kv_timeout_s,
        metavar="S",
        help="decode: how long to wait for the prefill's KV (default %(default)s)",
    )
    from smg.sim.grpc.server import add_grpc_arguments

    add_grpc_arguments(p)
    cloud = p.add_argument_group("cloud provider simulators (smg/sim/providers/)")
    cloud.add_argument(
        "--provider",
        default=None,
        metavar="NAME",
        help="simulate a cloud API instead of an engine (openai, gemini, …); --model may "
        "list several served models separated by commas; faults also via POST /sim/fault",
    )
    cloud.add_argument(
        "--api-key",
        default="sim-key",
        help="the one API key the simulated provider accepts (default %(default)s)",
    )


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """Build and validate the config from parsed flags."""
    if args.ports:
        ports = parse_port_range(args.ports)
    else:
        ports = (8000 if args.port is None else args.port,)
    cfg = SimConfig(
        host=args.host,
        ports=ports,
        model=args.model,
        seed=args.seed,
        block_size=args.block_size,
        cache_blocks=args.cache_blocks,
        ttft_base_ms=args.ttft_base_ms,
        ttft_per_token_us=args.ttft_per_token_us,
        itl_ms=args.itl_ms,
        itl_per_request_ms=args.itl_per_request_ms,
        max_running=args.max_running,
        output_tokens=args.output_tokens,
        max_model_len=args.max_model_len,
        fail_rate=args.fail_rate,
        fail_status=args.fail_status,
        hang_rate=args.hang_rate,
        drop_after_chunks=args.drop_after_chunks,
        slow_start_s=args.slow_start,
        embedding_dim=args.embedding_dim,
        role=args.role,
        pd_style=args.pd_style,
        bootstrap_port=args.bootstrap_port,
        kv_timeout_s=args.kv_timeout,
    )
    cfg.validate()
    return cfg


def main(args: argparse.Namespace) -> int:
    """Run the simulator with parsed flags; returns the exit code."""
    if getattr(args, "provider", None):
        from smg.sim.providers import run as run_provider

        return run_provider(args)
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        print(f"smg-sim: {exc}", file=sys.stderr)
        return 2
    if args.grpc:
        from smg.sim.grpc import server as grpc_server

        return grpc_server.run(cfg, args)
    from smg.sim.server import run

    return run(cfg)
