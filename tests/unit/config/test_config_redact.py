"""Redaction of secrets in configuration dumps."""

from __future__ import annotations

from typing import Any

from config_helpers import MINIMAL, Loader

from smg.config.redact import REDACTED, is_secret_key, redact, redact_config


def test_secret_looking_keys_are_redacted() -> None:
    doc: dict[str, Any] = {
        "filters": {
            "auth": {"type": "api_key", "config": {"keys": ["sk-1", "sk-2"], "header": "x"}},
            "rl": {"type": "rate_limit", "config": {"Key": "api_key", "burst": 3}},
        },
        "extra": {"API_KEY": "a", "Password": "b", "token": "c", "secret": "d"},
        "headers": {"Authorization": "Bearer x", "x-api-key": "k", "Accept": "json"},
        "access_token": "t",
        "nothing": None,
    }
    out = redact(doc)
    assert out["filters"]["auth"]["config"] == {"keys": REDACTED, "header": "x"}
    assert out["filters"]["rl"]["config"] == {"Key": REDACTED, "burst": 3}
    assert set(out["extra"].values()) == {REDACTED}
    assert out["headers"] == {"Authorization": REDACTED, "x-api-key": REDACTED, "Accept": "json"}
    assert out["access_token"] == REDACTED
    assert out["nothing"] is None
    assert doc["filters"]["auth"]["config"]["keys"] == ["sk-1", "sk-2"]  # input untouched


def test_key_names_that_are_not_secrets() -> None:
    assert not is_secret_key("max_tokens")
    assert not is_secret_key("keyword")
    assert not is_secret_key("monkey")
    assert is_secret_key("client_secret")


def test_values_from_secret_variables_are_redacted(load: Loader) -> None:
    text = MINIMAL.replace("[http://127.0.0.1:31001]", "['http://u:${DB_PASSWORD}@h:1', '${URL}']")
    text += "models:\n  m: {owned_by: '${OWNER_TOKEN_X}'}\n"
    config = load(text, env={"DB_PASSWORD": "pw", "URL": "http://h:2", "OWNER_TOKEN_X": "o"})
    out = redact_config(config)
    endpoints = out["clusters"][0]["endpoints"]
    assert endpoints[0] == {"url": REDACTED, "weight": 1}
    assert endpoints[1] == {"url": "http://h:2", "weight": 1}
    assert out["models"]["m"]["owned_by"] == REDACTED
    assert config.raw["models"]["m"]["owned_by"] == "o"
    assert "pw" not in repr(out)


def test_secret_variable_in_a_shorthand_lb_policy_path_follows_normalization(load: Loader) -> None:
    config = load(MINIMAL + "    lb_policy: ${LB_SECRET}\n", env={"LB_SECRET": "random"})
    assert ("clusters", 0, "lb_policy", "type") in config.secret_paths
    assert redact_config(config)["clusters"][0]["lb_policy"] == {"type": REDACTED, "config": {}}
