"""``smg launch --pd-disaggregation``: the Shepherd Model Gateway PD flags as a ``pd`` block.

``--prefill URL [BOOTSTRAP_PORT]`` (repeatable; the port is optional) and ``--decode
URL`` (repeatable) become ``clusters[0].pd.prefill`` / ``pd.decode`` endpoints;
``--prefill-policy`` / ``--decode-policy`` their ``lb_policy`` (default ``--policy``);
``--pd-style`` the style (gRPC workers default to their engine's, HTTP to sglang).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


class _PrefillAction(argparse.Action):
    """``--prefill URL [BOOTSTRAP_PORT]``: one prefill worker, appended to the list."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        given = [values] if isinstance(values, str) else list(values or ())
        if not 1 <= len(given) <= 2:
            parser.error(f"{option_string} takes URL [BOOTSTRAP_PORT], not {' '.join(given)}")
        port: int | None = None
        if len(given) == 2 and given[1].lower() != "none":
            try:
                port = int(given[1])
            except ValueError:
                parser.error(
                    f"{option_string} {given[0]}: bootstrap port {given[1]!r} is not a number"
                )
        found = list(getattr(namespace, self.dest, None) or [])
        found.append((str(given[0]), port))
        setattr(namespace, self.dest, found)


def add_pd_arguments(p: argparse.ArgumentParser) -> None:
    """The PD flags (same names as the Shepherd Model Gateway CLI)."""
    g = p.add_argument_group("prefill/decode disaggregation (clusters[0].pd)")
    g.add_argument(
        "--pd-disaggregation",
        action="store_true",
        help="One PD cluster of --prefill and --decode workers instead of --worker-urls.",
    )
    g.add_argument(
        "--prefill",
        action=_PrefillAction,
        nargs="+",
        metavar=("URL", "BOOTSTRAP_PORT"),
        help="A prefill worker and, optionally, its bootstrap port (pd.prefill.endpoints); "
        "repeat for more.",
    )
    g.add_argument(
        "--decode",
        action="append",
        metavar="URL",
        help="A decode worker (pd.decode.endpoints); repeat for more.",
    )
    g.add_argument("--prefill-policy", help="pd.prefill.lb_policy (default --policy).")
    g.add_argument("--decode-policy", help="pd.decode.lb_policy (default --policy).")
    g.add_argument(
        "--pd-style",
        choices=("sglang", "vllm"),
        help="pd.style: sglang (bootstrap room) or vllm (kv_transfer_params); default sglang "
        "for HTTP workers, the --grpc-engine's for grpc:// workers.",
    )


def pd_urls(args: argparse.Namespace) -> list[str]:
    """Every prefill and decode URL given."""
    return [u for u, _ in args.prefill or ()] + list(args.decode or ())


def apply_pd(
    args: argparse.Namespace, cluster: dict[str, Any], policy_config: dict[str, Any]
) -> None:
    """Turn ``cluster`` into the PD cluster the flags describe (no-op without them)."""
    if not (args.pd_disaggregation or args.prefill or args.decode):
        return
    cluster.pop("endpoints", None)
    cluster.pop("lb_policy", None)
    prefill: list[dict[str, Any]] = []
    for url, port in args.prefill or ():
        ep: dict[str, Any] = {"url": url}
        if port is not None:
            ep["bootstrap_port"] = port
        prefill.append(ep)
    pd: dict[str, Any] = {
        "prefill": {"endpoints": prefill},
        "decode": {"endpoints": [{"url": u} for u in args.decode or ()]},
    }
    for group, policy in (("prefill", args.prefill_policy), ("decode", args.decode_policy)):
        policy = policy or args.policy or ("cache_aware" if policy_config else None)
        if policy is not None:
            pd[group]["lb_policy"] = {"type": policy}
            if policy == "cache_aware" and policy_config:
                pd[group]["lb_policy"]["config"] = dict(policy_config)
    style = args.pd_style
    if style is None and str(cluster.get("protocol", "")).endswith("_grpc"):
        style = "sglang" if cluster["protocol"] == "sglang_grpc" else "vllm"
    if style is not None:
        pd["style"] = style
    cluster["pd"] = pd
