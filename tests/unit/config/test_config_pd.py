"""The ``pd`` block of a cluster: shorthands, the typed view, and its errors with lines."""

from __future__ import annotations

from config_helpers import Failer, Loader

from smg.config.model import EndpointConfig

PD = """\
listeners:
  - name: public
    address: 127.0.0.1:30000
    routes: [{cluster: pd}]
clusters:
  - name: pd
    pd:
      prefill:
        endpoints: [{url: "http://p1:8000", bootstrap_port: 8998}, "http://p2:8000"]
        lb_policy: {type: cache_aware, config: {cache_threshold: 0.3}}
      decode:
        endpoints: ["http://d1:8000"]
        lb_policy: least_request
"""


def test_groups_become_the_typed_view_decode_first(load: Loader) -> None:
    c = load(PD).clusters[0]
    assert c.pd is not None and c.pd.style == "sglang"
    assert c.pd.prefill.endpoints == (
        EndpointConfig("http://p1:8000", 1, 8998),
        EndpointConfig("http://p2:8000", 1, None),
    )
    assert c.pd.prefill.lb_policy.type == "cache_aware"
    assert c.pd.prefill.lb_policy.config == {"cache_threshold": 0.3}
    assert c.pd.decode.lb_policy.type == "least_request"
    # The cluster's own endpoints and policy are the groups' (health checks, admin API).
    assert [e.url for e in c.endpoints] == ["http://d1:8000", "http://p1:8000", "http://p2:8000"]
    assert c.lb_policy.type == "least_request"


def test_a_plain_cluster_has_no_pd(load: Loader) -> None:
    text = PD.replace(PD[PD.index("    pd:") :], "    endpoints: [http://a:1]\n")
    assert load(text).clusters[0].pd is None


def test_endpoints_or_lb_policy_beside_pd_are_refused(fail: Failer) -> None:
    text = PD.replace("    pd:\n", "    endpoints: [http://x:1]\n    lb_policy: random\n    pd:\n")
    assert fail(text) == [
        "f.yaml:7: clusters[0].endpoints: ['http://x:1'] must be left out: a cluster with pd "
        "lists its endpoints under pd.prefill and pd.decode",
        "f.yaml:8: clusters[0].lb_policy: 'random' must be left out: a cluster with pd sets "
        "lb_policy under pd.prefill and pd.decode",
    ]


def test_a_cluster_needs_endpoints_or_pd(fail: Failer) -> None:
    text = PD[: PD.index("    pd:")]
    assert fail(text) == ["f.yaml:6: clusters[0]: missing required field 'endpoints'"]


def test_pd_needs_both_groups_with_endpoints(fail: Failer) -> None:
    text = PD[: PD.index("      decode:")].replace('"http://p2:8000"', "")
    text = text.replace("endpoints: [{url", "endpoints: []\n        x: [{url")
    issues = fail(text)
    assert "f.yaml:7: clusters[0].pd: missing required field 'decode'" in issues
    assert any("pd.prefill.endpoints: [] should be non-empty" in i for i in issues)


def test_protocol_and_style_must_go_together(fail: Failer) -> None:
    text = PD.replace("  - name: pd\n", "  - name: pd\n    protocol: vllm_grpc\n").replace(
        "http://", "grpc://"
    )
    assert fail(text) == [
        "f.yaml:8: clusters[0].pd.style: protocol vllm_grpc speaks PD style vllm, not sglang"
    ]
    cloud = PD.replace("  - name: pd\n", "  - name: pd\n    protocol: openai\n").replace(
        "http://", "https://"
    )
    assert fail(cloud) == [
        "f.yaml:8: clusters[0].pd: protocol openai has no pd "
        "(PD protocols: openai_http, sglang_grpc, vllm_grpc)"
    ]


def test_bootstrap_ports_belong_to_sglang_prefill_endpoints(fail: Failer) -> None:
    text = PD.replace(
        'endpoints: ["http://d1:8000"]', 'endpoints: [{url: "http://d1:8000", bootstrap_port: 1}]'
    )
    assert fail(text) == [
        "f.yaml:12: clusters[0].pd.decode.endpoints[0].bootstrap_port: only prefill endpoints "
        "have a bootstrap_port"
    ]
    vllm = PD.replace("    pd:\n", "    pd:\n      style: vllm\n")
    assert fail(vllm) == [
        "f.yaml:10: clusters[0].pd.prefill.endpoints[0].bootstrap_port: bootstrap_port is for "
        "style sglang (vllm hands over by kv_transfer_params)"
    ]


def test_one_url_cannot_be_in_both_groups(fail: Failer) -> None:
    text = PD.replace('"http://d1:8000"', '"http://p2:8000"')
    assert fail(text) == [
        "f.yaml:9: clusters[0].pd.prefill.endpoints[1]: duplicate endpoint 'http://p2:8000'"
    ]


def test_each_groups_policy_config_is_checked_by_its_policy(load: Loader) -> None:
    from smg.runtime.checks import config_issues

    text = PD.replace("{cache_threshold: 0.3}", "{nope: 1}")
    issues = [str(i) for i in config_issues(load(text))]
    assert len(issues) == 1
    assert issues[0].startswith("f.yaml:10: clusters[0].pd.prefill.lb_policy.config: ")
    assert "nope" in issues[0]


def test_the_pd_example_is_valid() -> None:
    from pathlib import Path

    from smg.config.loader import load_config
    from smg.runtime.checks import config_issues

    example = Path(__file__).resolve().parents[3] / "examples" / "configs" / "pd.yaml"
    config = load_config(example, env={})
    assert config_issues(config) == []
    pd = config.clusters[0].pd
    assert pd is not None and pd.prefill.lb_policy.type == "cache_aware"
