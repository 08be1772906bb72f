"""Environment substitution: ${VAR}, ${VAR:-default}, $${ escapes, and typing."""

from __future__ import annotations

import pytest
from config_helpers import MINIMAL, Failer, Loader

from smg.config.envsubst import expand, substitute

WITH_MODEL_OWNER = MINIMAL + "models:\n  m:\n    owned_by: {value}\n"


def test_set_variable_is_substituted(load: Loader) -> None:
    config = load(WITH_MODEL_OWNER.format(value="team-${TEAM}"), env={"TEAM": "blue"})
    assert config.models[0].owned_by == "team-blue"


def test_default_is_used_when_unset_or_empty(load: Loader) -> None:
    text = WITH_MODEL_OWNER.format(value="${TEAM:-red}")
    assert load(text, env={}).models[0].owned_by == "red"
    assert load(text, env={"TEAM": ""}).models[0].owned_by == "red"
    assert load(text, env={"TEAM": "x"}).models[0].owned_by == "x"


def test_missing_variable_is_an_error_naming_it_at_its_line(fail: Failer) -> None:
    assert fail(WITH_MODEL_OWNER.format(value="${TEAM}")) == [
        "f.yaml:11: models.m.owned_by: environment variable 'TEAM' is not set and has no default"
    ]


def test_all_missing_variables_are_reported(fail: Failer) -> None:
    text = MINIMAL.replace("[http://127.0.0.1:31001]", "['http://${HOST}:${PORT}']")
    text += "models:\n  m: {owned_by: '${OWNER}'}\n"
    assert fail(text) == [
        "f.yaml:8: clusters[0].endpoints[0]: environment variables 'HOST', 'PORT' are not set "
        "and have no default",
        "f.yaml:10: models.m.owned_by: environment variable 'OWNER' is not set and has no default",
    ]


def test_escape_gives_a_literal_reference(load: Loader) -> None:
    config = load(WITH_MODEL_OWNER.format(value="'$${TEAM} costs $5'"), env={"TEAM": "x"})
    assert config.models[0].owned_by == "${TEAM} costs $5"


def test_bad_references_are_errors(fail: Failer) -> None:
    assert fail(WITH_MODEL_OWNER.format(value="'${1TEAM}'")) == [
        "f.yaml:11: models.m.owned_by: invalid variable reference '${1TEAM}'"
    ]
    assert fail(WITH_MODEL_OWNER.format(value="'${TEAM'")) == [
        "f.yaml:11: models.m.owned_by: unterminated '${' in '${TEAM'"
    ]


def test_unquoted_substitution_takes_the_type_the_schema_wants(load: Loader) -> None:
    text = MINIMAL + "server:\n  workers: ${WORKERS:-2}\nlogging:\n  json: ${JSON}\n"
    config = load(text, env={"JSON": "true"})
    assert config.server.workers == 2
    assert config.logging.json is True


def test_quoted_substitution_stays_a_string(fail: Failer) -> None:
    text = MINIMAL + "server:\n  workers: '${WORKERS:-2}'\n"
    assert fail(text) == ["f.yaml:10: server.workers: '2' is not of type 'integer'"]


def test_numeric_looking_value_stays_a_string_where_a_string_is_wanted(load: Loader) -> None:
    config = load(WITH_MODEL_OWNER.format(value="${OWNER}"), env={"OWNER": "12345"})
    assert config.models[0].owned_by == "12345"


def test_duration_from_a_variable(load: Loader) -> None:
    text = MINIMAL + "server:\n  shutdown_grace_period: ${GRACE:-10}\n"
    assert load(text).server.shutdown_grace_period == 10.0
    assert load(text, env={"GRACE": "250ms"}).server.shutdown_grace_period == 0.25


def test_free_form_config_values_take_their_yaml_type(load: Loader) -> None:
    text = MINIMAL + "filters:\n  rl:\n    type: rate_limit\n    config:\n"
    text += "      rps: '${RPS}'\n      burst: ${RPS}\n"
    config = load(text, env={"RPS": "50"})
    assert config.filters["rl"].config == {"rps": "50", "burst": 50}


def test_keys_are_not_substituted() -> None:
    result = substitute({"${A}": "${A}"}, {"A": "x"})
    assert result.doc == {"${A}": "x"}
    assert result.used == {("${A}",): ("A",)}


def test_expand_raises_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="'NOPE'"):
        expand("a${NOPE}b", {})
    assert expand("${A}${B:-b}$${C}", {"A": "a"}) == "ab${C}"
