"""Schema errors: every one reported, with its path, line and a readable message."""

from __future__ import annotations

import pickle

import pytest
from config_helpers import MINIMAL, Failer

from smg.config.errors import ConfigError, ConfigIssue
from smg.config.loader import config_from_dict

LB_TYPES = (
    "['round_robin', 'random', 'least_request', 'consistent_hash', 'cache_aware', "
    "'power_of_two', 'least_load', 'prefix_hash', 'bucket', 'manual']"
)

FOURTEEN_LINES = """\
admin:
  address: 127.0.0.1:9901
listeners:
  - name: public
    address: 127.0.0.1:30000
    routes:
      - cluster: sim
clusters:
  - name: sim
    endpoints:
      - http://127.0.0.1:31001
      - http://127.0.0.1:31002
    lb_policy:
      type: cache_awre
"""


def test_enum_error_has_file_line_path_and_allowed_values(fail: Failer) -> None:
    assert fail(FOURTEEN_LINES) == [
        f"f.yaml:14: clusters[0].lb_policy.type: 'cache_awre' is not one of {LB_TYPES}"
    ]


def test_bare_string_lb_policy_enum_error(fail: Failer) -> None:
    text = MINIMAL + "    lb_policy: least_requests\n"
    assert fail(text) == [
        f"f.yaml:9: clusters[0].lb_policy: 'least_requests' is not one of {LB_TYPES}"
    ]


def test_unknown_top_level_key_names_the_key_and_its_line(fail: Failer) -> None:
    assert fail(MINIMAL + "listener: {}\n") == [
        "f.yaml:9: listener: unknown field 'listener' (did you mean 'listeners'?)"
    ]


def test_unknown_nested_key_lists_allowed_fields(fail: Failer) -> None:
    issues = fail(MINIMAL + "logging: {colour: true}\n")
    assert issues == [
        "f.yaml:9: logging.colour: unknown field 'colour'; allowed: access_log, json, level"
    ]


def test_wrong_types_are_reported(fail: Failer) -> None:
    text = MINIMAL + "server:\n  workers: two\nlogging:\n  json: 1\n"
    assert fail(text) == [
        "f.yaml:10: server.workers: 'two' is not of type 'integer'",
        "f.yaml:12: logging.json: 1 is not of type 'boolean'",
    ]


def test_missing_required_fields_use_the_parent_line(fail: Failer) -> None:
    text = """\
    listeners:
      - name: public
        routes: [{cluster: sim}]
    """
    assert fail(text) == [
        "f.yaml:1: missing required field 'clusters'",
        "f.yaml:2: listeners[0]: missing required field 'address'",
    ]


def test_route_needs_exactly_one_of_cluster_or_clusters(fail: Failer) -> None:
    text = MINIMAL.replace(
        "      - cluster: sim\n",
        "      - match: {model: a}\n      - cluster: sim\n        clusters: [{name: sim}]\n",
    )
    assert fail(text) == [
        "f.yaml:5: listeners[0].routes[0]: route needs exactly one of 'cluster' or 'clusters'",
        "f.yaml:6: listeners[0].routes[1]: route needs exactly one of 'cluster' or 'clusters'",
    ]


def test_endpoint_of_wrong_type(fail: Failer) -> None:
    text = MINIMAL.replace("[http://127.0.0.1:31001]", "[http://127.0.0.1:31001, 5]")
    assert fail(text) == ["f.yaml:8: clusters[0].endpoints[1]: 5 is not of type string or object"]


def test_endpoint_object_errors_go_inside_the_object(fail: Failer) -> None:
    text = MINIMAL.replace("[http://127.0.0.1:31001]", "[{url: http://h:1, weight: 0}]")
    assert fail(text) == [
        "f.yaml:8: clusters[0].endpoints[0].weight: 0 is less than the minimum of 1"
    ]


def test_bad_duration_and_size_messages(fail: Failer) -> None:
    text = MINIMAL.replace(
        "    routes:", "    request_timeout: 10 seconds\n    max_payload_size: 4mb\n    routes:"
    )
    assert fail(text) == [
        "f.yaml:4: listeners[0].request_timeout: '10 seconds' must be a duration such as "
        "'250ms', '30s', '5m', '1h' or a number of seconds",
        "f.yaml:5: listeners[0].max_payload_size: '4mb' must be a size such as 1048576, "
        "'512KB', '4MiB' or '1GB'",
    ]


def test_bad_address_and_name(fail: Failer) -> None:
    text = MINIMAL.replace("name: public", "name: pub lic").replace("127.0.0.1:30000", "localhost")
    assert fail(text) == [
        "f.yaml:2: listeners[0].name: 'pub lic' must be a name made of letters, digits, "
        "'_', '.' and '-'",
        "f.yaml:3: listeners[0].address: 'localhost' must be an address as host:port, "
        "e.g. '127.0.0.1:30000' or '[::1]:30000'",
    ]


def test_many_errors_are_all_reported_sorted_by_line(fail: Failer) -> None:
    text = """\
    clusters:
      - name: sim
        protocol: grpc
        endpoints: []
    logging: {level: loud}
    listeners:
      - name: public
        address: 127.0.0.1:30000
        routes: [{cluster: sim}]
        extra: 1
    server: {workers: 0}
    """
    issues = fail(text)
    assert [i.split(":")[1] for i in issues] == ["3", "4", "5", "10", "11"]
    assert issues[0].startswith("f.yaml:3: clusters[0].protocol: 'grpc' is not one of")
    assert issues[1] == "f.yaml:4: clusters[0].endpoints: [] should be non-empty"
    assert issues[4] == "f.yaml:11: server.workers: 0 is less than the minimum of 1"


def test_empty_listeners_and_clusters(fail: Failer) -> None:
    assert fail("listeners: []\nclusters: []\n") == [
        "f.yaml:1: listeners: [] should be non-empty",
        "f.yaml:2: clusters: [] should be non-empty",
    ]


def test_keys_with_dots_are_quoted_in_paths(fail: Failer) -> None:
    issues = fail(MINIMAL + "models:\n  qwen2.5-7b: {owner: me}\n")
    assert issues == [
        "f.yaml:10: models['qwen2.5-7b'].owner: unknown field 'owner' (did you mean 'owned_by'?)"
    ]


def test_dict_documents_get_issues_without_lines() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"listeners": [], "clusters": [{"name": "x"}]}, "launch", env={})
    assert info.value.issues == [
        ConfigIssue("launch", None, "listeners", "[] should be non-empty"),
        ConfigIssue("launch", None, "clusters[0]", "missing required field 'endpoints'"),
    ]
    assert str(info.value).splitlines()[0] == "launch: listeners: [] should be non-empty"


def test_admin_address_must_be_a_string(fail: Failer) -> None:
    assert fail(MINIMAL + "admin: {address: 5}\n") == [
        "f.yaml:9: admin.address: 5 is not of type 'string'"
    ]


def test_config_error_survives_pickling() -> None:
    error = ConfigError([ConfigIssue("f.yaml", 3, "a.b", "bad"), ConfigIssue("f.yaml", 1, "", "x")])
    copy = pickle.loads(pickle.dumps(error))
    assert copy.issues == error.issues
    assert str(copy) == "f.yaml:1: x\nf.yaml:3: a.b: bad"


def test_unsupported_version(fail: Failer) -> None:
    assert fail("version: 2\n" + MINIMAL) == [
        "f.yaml:1: version: 2 is not a supported version; the only one is 1"
    ]
