"""Which key goes to a cloud provider, and in which header."""

from __future__ import annotations

import pytest

from smg.config.loader import load_config_text
from smg.config.model import ClusterConfig
from smg.upstreams.provider_auth import auth_headers, client_key, key_for_request


def _cluster(protocol: str, provider: str = "{}") -> ClusterConfig:
    text = f"""
listeners: [{{name: l, address: "127.0.0.1:1", filters: [router], routes: [{{cluster: c}}]}}]
clusters:
  - name: c
    protocol: {protocol}
    endpoints: ["https://api.example.com"]
    provider: {provider}
"""
    return load_config_text(text, "t.yaml").clusters[0]


def test_env_default_per_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")
    monkeypatch.setenv("GEMINI_API_KEY", "g-key")
    assert key_for_request(_cluster("anthropic"), {}) == "sk-ant"
    assert key_for_request(_cluster("gemini"), {}) == "g-key"


def test_configured_key_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert key_for_request(_cluster("openai", "{api_key: explicit}"), {}) == "explicit"


def test_client_key_only_with_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "ours")
    headers = {"authorization": "Bearer theirs"}
    assert key_for_request(_cluster("openai"), headers) == "ours"
    assert key_for_request(_cluster("openai", "{pass_client_key: true}"), headers) == "theirs"
    # pass-through without a client key falls back to the configured one
    assert key_for_request(_cluster("openai", "{pass_client_key: true}"), {}) == "ours"


def test_client_key_headers() -> None:
    assert client_key({"x-api-key": "a"}) == "a"
    assert client_key({"authorization": "Basic xyz"}) is None
    assert client_key({"x-goog-api-key": "g"}) == "g"


def test_auth_header_names() -> None:
    assert auth_headers("anthropic", "k") == [("x-api-key", "k")]
    assert auth_headers("gemini", "k") == [("x-goog-api-key", "k")]
    assert auth_headers("openai_compatible", "k") == [("authorization", "Bearer k")]
    assert auth_headers("openai", None) == []
