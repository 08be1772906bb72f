"""The ``pd`` block of a cluster: shorthands, semantic checks and its typed view.

A PD cluster lists its endpoints under ``pd.prefill`` and ``pd.decode`` instead of
``endpoints`` (the schema refuses both). The typed ``ClusterConfig`` of such a cluster
has ``endpoints`` = decode's then prefill's (so health checks, circuit breakers and the
admin API cover both groups) and ``lb_policy`` = decode's; ``pd`` keeps the groups.
"""

from __future__ import annotations

from typing import Any

from smg.config.errors import IssueCollector
from smg.config.model import EndpointConfig, LbPolicyConfig, PdConfig, PdGroupConfig
from smg.config.paths import JsonPath

GROUPS = ("prefill", "decode")
PD_PROTOCOLS = {
    "openai_http": ("sglang", "vllm"),
    "sglang_grpc": ("sglang",),
    "vllm_grpc": ("vllm",),
}
"""Protocols a PD cluster may speak, and the styles each engine implements."""


def normalize_pd(cluster: dict[str, Any], at: JsonPath, moved: dict[JsonPath, JsonPath]) -> None:
    """Expand the groups' shorthands in place (endpoint strings, bare policy names)."""
    pd = cluster.get("pd")
    if not isinstance(pd, dict):
        return
    for group in GROUPS:
        g = pd[group]
        gpath: JsonPath = (*at, "pd", group)
        for ei, endpoint in enumerate(g["endpoints"]):
            if isinstance(endpoint, str):
                g["endpoints"][ei] = {"url": endpoint}
                moved[(*gpath, "endpoints", ei)] = (*gpath, "endpoints", ei, "url")
        if isinstance(g["lb_policy"], str):
            g["lb_policy"] = {"type": g["lb_policy"]}
            moved[(*gpath, "lb_policy")] = (*gpath, "lb_policy", "type")


def pd_endpoints(cluster: dict[str, Any]) -> list[tuple[JsonPath, str, Any]]:
    """(path of the URL, URL, endpoint) of every endpoint of both groups, decode first."""
    out: list[tuple[JsonPath, str, Any]] = []
    for group in ("decode", "prefill"):
        for i, endpoint in enumerate(cluster["pd"][group]["endpoints"]):
            path: JsonPath = ("pd", group, "endpoints", i)
            if isinstance(endpoint, str):
                out.append((path, endpoint, endpoint))
            else:
                out.append(((*path, "url"), endpoint["url"], endpoint))
    return out


def pd_issues(cluster: dict[str, Any], path: JsonPath, collector: IssueCollector) -> None:
    """Protocol and style go together; bootstrap ports only on sglang-style prefill."""
    pd = cluster.get("pd")
    if not isinstance(pd, dict):
        return
    protocol, style = cluster["protocol"], pd["style"]
    styles = PD_PROTOCOLS.get(protocol)
    if styles is None:
        known = ", ".join(PD_PROTOCOLS)
        collector.add((*path, "pd"), f"protocol {protocol} has no pd (PD protocols: {known})")
    elif style not in styles:
        collector.add(
            (*path, "pd", "style"),
            f"protocol {protocol} speaks PD style {styles[0]}, not {style}",
        )
    for group in GROUPS:
        for i, endpoint in enumerate(pd[group]["endpoints"]):
            if not isinstance(endpoint, dict) or endpoint.get("bootstrap_port") is None:
                continue
            where = (*path, "pd", group, "endpoints", i, "bootstrap_port")
            if group == "decode":
                collector.add(where, "only prefill endpoints have a bootstrap_port")
            elif style != "sglang":
                collector.add(
                    where,
                    "bootstrap_port is for style sglang (vllm hands over by kv_transfer_params)",
                )


def with_pd_groups(cluster: dict[str, Any]) -> dict[str, Any]:
    """``cluster`` as the typed view sees it: a PD cluster's endpoints and policy filled in."""
    pd = cluster.get("pd")
    if not isinstance(pd, dict):
        return cluster
    view = dict(cluster)
    view["endpoints"] = [*pd["decode"]["endpoints"], *pd["prefill"]["endpoints"]]
    view["lb_policy"] = pd["decode"]["lb_policy"]
    return view


def pd_config(cluster: dict[str, Any]) -> PdConfig | None:
    """The typed ``pd`` block of a normalized, defaulted cluster (None without one)."""
    pd = cluster.get("pd")
    if not isinstance(pd, dict):
        return None
    return PdConfig(style=pd["style"], prefill=_group(pd["prefill"]), decode=_group(pd["decode"]))


def _group(g: dict[str, Any]) -> PdGroupConfig:
    return PdGroupConfig(
        endpoints=tuple(
            EndpointConfig(url=e["url"], weight=e["weight"], bootstrap_port=e["bootstrap_port"])
            for e in g["endpoints"]
        ),
        lb_policy=LbPolicyConfig(type=g["lb_policy"]["type"], config=g["lb_policy"]["config"]),
    )
