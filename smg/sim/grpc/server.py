"""``smg sim --grpc``: flags, and one grpc.aio server per port until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import grpc
from smg_grpc_proto import sglang_scheduler_pb2_grpc, vllm_engine_pb2_grpc

from smg.sim.config import SimConfig
from smg.sim.grpc.core import SimCore, load_script
from smg.sim.grpc.services import SglangSim, VllmSim
from smg.sim.tokens import EOS_TOKEN_ID


def add_grpc_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the gRPC flags on the sim's parser."""
    g = p.add_argument_group("gRPC mode")
    g.add_argument(
        "--grpc",
        action="store_true",
        help="serve the vLLM and SGLang gRPC services (same port) instead of HTTP",
    )
    g.add_argument(
        "--script",
        metavar="FILE",
        help="JSON list of outputs (token-id lists or texts) returned in turn",
    )
    g.add_argument(
        "--tokenizer", metavar="DIR", help="tokenizer.json directory to encode --script texts"
    )
    g.add_argument(
        "--eos-token-ids",
        metavar="IDS",
        default=str(EOS_TOKEN_ID),
        help="comma-separated eos ids the model stops on and GetModelInfo reports "
        "(default %(default)s)",
    )


def run(cfg: SimConfig, args: argparse.Namespace) -> int:
    """Serve gRPC until told to stop; returns the exit code."""
    try:
        script = load_script(args.script, args.tokenizer) if args.script else []
        eos = eos_ids(args.eos_token_ids)
    except (OSError, ValueError) as exc:
        print(f"smg-sim: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(cfg, script, eos))


def eos_ids(spec: str) -> tuple[int, ...]:
    """``--eos-token-ids``: one or more non-negative ids, comma-separated."""
    try:
        ids = tuple(int(x) for x in spec.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"--eos-token-ids must be comma-separated ids, not {spec!r}") from None
    if not ids or any(i < 0 for i in ids):
        raise ValueError(f"--eos-token-ids must be comma-separated ids, not {spec!r}")
    return ids


async def _serve(cfg: SimConfig, script: list[list[int]], eos: tuple[int, ...]) -> int:
    loop = asyncio.get_running_loop()
    servers: list[grpc.aio.Server] = []
    transfers: list[asyncio.Server] = []
    for port in cfg.ports:
        core = SimCore(cfg, port, loop, script, eos)
        server = grpc.aio.server()
        vllm_engine_pb2_grpc.add_VllmEngineServicer_to_server(VllmSim(core), server)
        sglang_scheduler_pb2_grpc.add_SglangSchedulerServicer_to_server(SglangSim(core), server)
        try:
            bound = server.add_insecure_port(f"{cfg.host}:{port}")
        except RuntimeError as exc:
            bound = 0
            print(f"smg-sim: {exc}", file=sys.stderr)
        if not bound:
            print(f"smg-sim: cannot listen on {cfg.host}:{port}", file=sys.stderr)
            for s in servers:
                await s.stop(None)
            return 1
        core.engine.port = bound
        if core.engine.pd is not None:
            try:
                transfer = await core.engine.pd.start(bound)
            except OSError as exc:
                print(f"smg-sim: cannot open the KV transfer port: {exc}", file=sys.stderr)
                for s in servers:
                    await s.stop(None)
                return 1
            if transfer is not None:
                transfers.append(transfer)
        await server.start()
        servers.append(server)
        print(
            f"smg-sim: model {cfg.model!r} listening on grpc://{cfg.host}:{bound} "
            "(vllm.grpc.engine.VllmEngine, sglang.grpc.scheduler.SglangScheduler)",
            flush=True,
        )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for t in transfers:
        t.close()
    await asyncio.gather(*(s.stop(0.5) for s in servers))
    return 0
