"""Checks beyond the schema: references, uniqueness, the router's place, URLs."""

from __future__ import annotations

from config_helpers import MINIMAL, Failer, Loader

TWO_LISTENERS = """\
listeners:
  - name: public
    address: 127.0.0.1:30000
    routes: [{cluster: sim}]
  - name: public
    address: 127.0.0.1:30000
    routes: [{cluster: sim}]
clusters:
  - name: sim
    endpoints: [http://127.0.0.1:31001]
  - name: sim
    endpoints: [http://127.0.0.1:31002]
"""


def test_unknown_cluster_in_route(fail: Failer) -> None:
    text = MINIMAL.replace(
        "      - cluster: sim\n", "      - cluster: sim\n        fallback: [sym]\n"
    )
    text = text.replace("      - cluster: sim\n", "      - cluster: simm\n")
    assert fail(text) == [
        "f.yaml:5: listeners[0].routes[0].cluster: unknown cluster 'simm'; clusters: sim",
        "f.yaml:6: listeners[0].routes[0].fallback[0]: unknown cluster 'sym'; clusters: sim",
    ]


def test_unknown_cluster_in_weighted_clusters(fail: Failer) -> None:
    text = MINIMAL.replace("      - cluster: sim\n", "      - clusters:\n          - name: nope\n")
    assert fail(text) == [
        "f.yaml:6: listeners[0].routes[0].clusters[0].name: unknown cluster 'nope'; clusters: sim"
    ]


def test_all_zero_weights_are_rejected(fail: Failer) -> None:
    text = MINIMAL.replace("      - cluster: sim\n", "      - clusters: [{name: sim, weight: 0}]\n")
    assert fail(text) == [
        "f.yaml:5: listeners[0].routes[0].clusters: at least one cluster needs a weight above 0"
    ]


def test_unknown_filter_in_chain(fail: Failer) -> None:
    text = MINIMAL.replace("    routes:", "    filters: [auth, router]\n    routes:")
    assert fail(text) == [
        "f.yaml:4: listeners[0].filters[0]: unknown filter 'auth'; declared filters: router"
    ]


def test_router_must_be_last(fail: Failer) -> None:
    text = MINIMAL.replace("    routes:", "    filters: [router, rid]\n    routes:")
    text += "filters:\n  rid: {type: request_id}\n"
    assert fail(text) == [
        "f.yaml:4: listeners[0].filters[0]: filter 'router' is of type 'router', which must be "
        "the last filter",
        "f.yaml:4: listeners[0].filters[1]: the last filter must be of type 'router' (add "
        "'router' at the end)",
    ]


def test_chain_without_router_is_rejected(fail: Failer) -> None:
    text = MINIMAL.replace("    routes:", "    filters: [rid]\n    routes:")
    text += "filters:\n  rid: {type: request_id}\n"
    assert fail(text) == [
        "f.yaml:4: listeners[0].filters[0]: the last filter must be of type 'router' (add "
        "'router' at the end)"
    ]


def test_router_appears_once(fail: Failer) -> None:
    text = MINIMAL.replace("    routes:", "    filters: [main, router]\n    routes:")
    text += "filters:\n  main: {type: router}\n"
    assert fail(text) == [
        "f.yaml:4: listeners[0].filters[0]: filter 'main' is of type 'router', which must be "
        "the last filter"
    ]


def test_a_router_may_have_another_name(load: Loader) -> None:
    text = MINIMAL.replace("    routes:", "    filters: [main]\n    routes:")
    text += "filters:\n  main: {type: router, config: {x: 1}}\n"
    config = load(text)
    assert config.filters["main"].config == {"x": 1}
    assert config.filters["router"].type == "router"


def test_router_name_of_another_type_is_not_a_router(fail: Failer) -> None:
    text = MINIMAL + "filters:\n  router: {type: request_id}\n"
    assert fail(text) == [
        # the chain is the default one, so the listener's line is the nearest
        "f.yaml:2: listeners[0].filters[0]: the last filter must be of type 'router' (add "
        "'router' at the end)"
    ]


def test_filter_types_are_checked_against_the_registry(fail: Failer, load: Loader) -> None:
    text = MINIMAL.replace("    routes:", "    filters: [rid, router]\n    routes:")
    text += "filters:\n  rid: {type: request_idd}\n"

    def known() -> list[str]:
        return ["request_id", "api_key"]

    assert fail(text, known_filter_types=known) == [
        "f.yaml:11: filters.rid.type: unknown filter type 'request_idd'; known types: api_key, "
        "request_id, router"
    ]
    assert load(text).filters["rid"].type == "request_idd"  # no registry given: not checked


def test_duplicate_names_and_addresses(fail: Failer) -> None:
    assert fail(TWO_LISTENERS) == [
        "f.yaml:5: listeners[1].name: duplicate listener name 'public' (also listeners[0])",
        "f.yaml:6: listeners[1].address: address '127.0.0.1:30000' is also used by "
        "listeners[0].address",
        "f.yaml:11: clusters[1].name: duplicate cluster name 'sim' (also clusters[0])",
    ]


def test_wildcard_address_clashes_with_any_host_on_its_port(fail: Failer) -> None:
    text = MINIMAL + "admin: {address: '0.0.0.0:30000'}\n"
    assert fail(text) == [
        "f.yaml:3: listeners[0].address: address '127.0.0.1:30000' is also used by admin.address"
    ]


def test_admin_address_distinct_from_listeners(fail: Failer) -> None:
    text = MINIMAL + "admin: {address: '127.0.0.1:30000'}\n"
    assert len(fail(text)) == 1


def test_port_zero_never_clashes(load: Loader) -> None:
    text = TWO_LISTENERS.replace("127.0.0.1:30000", "127.0.0.1:0").replace(
        "name: public\n    address: 127.0.0.1:0\n    routes: [{cluster: sim}]\nclusters",
        "name: other\n    address: 127.0.0.1:0\n    routes: [{cluster: sim}]\nclusters",
    )
    text = text.replace("  - name: sim\n    endpoints: [http://127.0.0.1:31002]\n", "")
    assert len(load(text).listeners) == 2


def test_port_above_range(fail: Failer) -> None:
    text = MINIMAL.replace("127.0.0.1:30000", "127.0.0.1:70000")
    assert fail(text) == [
        "f.yaml:3: listeners[0].address: port 70000 of '127.0.0.1:70000' is above 65535"
    ]


def test_duplicate_route_names(fail: Failer) -> None:
    text = MINIMAL.replace(
        "      - cluster: sim\n",
        "      - {name: a, cluster: sim}\n      - {name: a, cluster: sim}\n",
    )
    assert fail(text) == [
        "f.yaml:6: listeners[0].routes[1].name: duplicate route name 'a' "
        "(also listeners[0].routes[0])"
    ]


def test_endpoint_urls_are_checked(fail: Failer) -> None:
    text = MINIMAL.replace(
        "    endpoints: [http://127.0.0.1:31001]\n",
        "    endpoints:\n"
        "      - ftp://h:1\n"
        "      - http://h:notaport\n"
        "      - {url: 'http://:8000'}\n"
        "      - http://127.0.0.1:31001\n"
        "      - http://127.0.0.1:31001\n",
    )
    assert fail(text) == [
        "f.yaml:9: clusters[0].endpoints[0]: endpoint URL 'ftp://h:1' of a openai_http cluster "
        "must start with http:// or https://",
        "f.yaml:10: clusters[0].endpoints[1]: invalid endpoint URL 'http://h:notaport': Port "
        "could not be cast to integer value as 'notaport'",
        "f.yaml:11: clusters[0].endpoints[2].url: endpoint URL 'http://:8000' has no host",
        "f.yaml:13: clusters[0].endpoints[4]: duplicate endpoint 'http://127.0.0.1:31001'",
    ]


def test_grpc_clusters_need_grpc_urls_with_ports(fail: Failer, load: Loader) -> None:
    text = MINIMAL.replace(
        "    endpoints: [http://127.0.0.1:31001]\n",
        "    protocol: sglang_grpc\n    endpoints: [http://h:1, grpc://h]\n",
    )
    assert fail(text) == [
        "f.yaml:9: clusters[0].endpoints[0]: endpoint URL 'http://h:1' of a sglang_grpc cluster "
        "must start with grpc://",
        "f.yaml:9: clusters[0].endpoints[1]: endpoint URL 'grpc://h' needs a port",
    ]
    ok = (
        MINIMAL.replace("[http://127.0.0.1:31001]", "[https://api.openai.com]")
        + "    protocol: openai\n"
    )
    assert load(ok).clusters[0].endpoints[0].url == "https://api.openai.com"


def test_semantic_checks_wait_for_a_schema_valid_document(fail: Failer) -> None:
    text = MINIMAL.replace("cluster: sim", "cluster: nope") + "logging: {level: loud}\n"
    issues = fail(text)
    assert len(issues) == 1 and "logging.level" in issues[0]


def test_ejection_and_backoff_bounds_must_be_ordered(fail: Failer) -> None:
    text = MINIMAL + (
        "    outlier_detection: {base_ejection_time: 60s, max_ejection_time: 30s}\n"
        "    retry_policy: {backoff: {base: 3s, max: 2s}}\n"
    )
    assert fail(text) == [
        "f.yaml:9: clusters[0].outlier_detection.max_ejection_time: "
        "max_ejection_time (30s) is shorter than base_ejection_time (60s)",
        "f.yaml:10: clusters[0].retry_policy.backoff.max: max (2s) is shorter than base (3s)",
    ]


def test_health_outlier_and_retry_sections_load(load: Loader) -> None:
    text = MINIMAL + (
        "    health_check: {path: /ready, interval: 250ms, unhealthy_threshold: 1}\n"
        "    outlier_detection: {enabled: false, failure_rate_threshold: 0.25}\n"
        "    retry_policy:\n"
        "      retry_on: [connect_failure, retriable_status_codes]\n"
        "      retriable_status_codes: [502]\n"
        "      per_try_timeout: 2s\n"
    )
    cluster = load(text).clusters[0]
    assert (cluster.health_check.path, cluster.health_check.interval) == ("/ready", 0.25)
    assert cluster.health_check.unhealthy_threshold == 1
    assert cluster.outlier_detection.enabled is False
    assert cluster.outlier_detection.failure_rate_threshold == 0.25
    assert cluster.retry_policy.retry_on == frozenset({"connect_failure", "retriable_status_codes"})
    assert cluster.retry_policy.retriable_status_codes == frozenset({502})
    assert cluster.retry_policy.per_try_timeout == 2.0
    assert cluster.retry_policy.max_retries == 3
