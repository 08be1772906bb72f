"""Cloud adapters: base URLs with paths, which headers reach a provider, model mapping."""

from __future__ import annotations

import pytest

from smg.clusters.endpoint import Endpoint, EndpointState
from smg.config.loader import load_config_text
from smg.config.model import ClusterConfig
from smg.errors import NotFound
from smg.protocol.request import GatewayRequest
from smg.upstreams.cloud_http import provider_headers, split_base, with_query
from smg.upstreams.openai_cloud import OpenAICloudUpstream


def _cluster(protocol: str, provider: str = "{}") -> ClusterConfig:
    text = f"""
listeners: [{{name: l, address: "127.0.0.1:1", filters: [router], routes: [{{cluster: c}}]}}]
clusters:
  - name: c
    protocol: {protocol}
    endpoints: ["https://api.example.com/v1"]
    provider: {provider}
"""
    return load_config_text(text, "t.yaml").clusters[0]


@pytest.mark.parametrize(
    ("base", "path", "target"),
    [
        ("https://api.openai.com", "/v1/chat/completions", "/v1/chat/completions"),
        ("https://api.openai.com/v1", "/v1/chat/completions", "/v1/chat/completions"),
        ("https://api.openai.com/v1/", "/v1/models", "/v1/models"),
        ("https://host/openai/v1", "/v1/chat/completions", "/openai/v1/chat/completions"),
        ("https://g.example/v1beta/openai", "/v1/models", "/v1beta/openai/models"),
        (
            "https://az.example/openai/v1?api-version=2025-04",
            "/v1/embeddings",
            "/openai/v1/embeddings?api-version=2025-04",
        ),
    ],
)
def test_request_paths_join_the_base_path(base: str, path: str, target: str) -> None:
    up = OpenAICloudUpstream(_cluster("openai"))
    assert up._target(EndpointState(Endpoint.parse(base)), path) == target


def test_non_openai_paths_are_refused_under_a_base_path() -> None:
    up = OpenAICloudUpstream(_cluster("openai"))
    with pytest.raises(NotFound):
        up._target(EndpointState(Endpoint.parse("https://h/v1")), "/generate")


def test_split_base_and_query() -> None:
    assert split_base("https://h:8443/a/b/?x=1") == ("/a/b", "x=1")
    assert split_base("http://h") == ("", "")
    assert with_query("/p?alt=sse", "k=v") == "/p?alt=sse&k=v"


def _request(headers: list[tuple[str, str]]) -> GatewayRequest:
    raw = tuple((k.encode(), v.encode()) for k, v in headers)
    return GatewayRequest(
        method="POST",
        path="/v1/chat/completions",
        kind="chat",
        headers={k.lower(): v for k, v in headers},
        body=b"{}",
        json={},
        model="m",
        stream=False,
        raw_headers=raw,
    )


def test_client_credentials_never_reach_the_provider() -> None:
    cfg = _cluster("openai", "{api_key: ours, headers: {OpenAI-Organization: org-1}}")
    req = _request(
        [
            ("Authorization", "Bearer theirs"),
            ("x-api-key", "theirs"),
            ("x-goog-api-key", "theirs"),
            ("User-Agent", "OpenAI/Python"),
            ("Accept-Encoding", "gzip"),
        ]
    )
    sent = dict((k.decode().lower(), v.decode()) for k, v in provider_headers(cfg, req, "ours"))
    assert sent["authorization"] == "Bearer ours"
    assert "x-api-key" not in sent and "x-goog-api-key" not in sent
    assert sent["user-agent"] == "OpenAI/Python"
    assert sent["openai-organization"] == "org-1"
    assert sent["accept-encoding"] == "identity"  # answers are read and accounted


def test_translating_adapters_send_only_their_own_headers() -> None:
    cfg = _cluster("gemini")
    req = _request([("Authorization", "Bearer theirs"), ("User-Agent", "OpenAI/Python")])
    sent = dict((k.decode(), v.decode()) for k, v in provider_headers(cfg, req, "g", False))
    assert sent == {
        "accept-encoding": "identity",
        "x-goog-api-key": "g",
        "content-type": "application/json",
    }


def test_model_map() -> None:
    cfg = _cluster("gemini", "{model_map: {gpt-4o: gemini-2.5-pro, '*': gemini-2.5-flash}}")
    assert cfg.provider.provider_model("gpt-4o") == "gemini-2.5-pro"
    assert cfg.provider.provider_model("other") == "gemini-2.5-flash"
    assert _cluster("gemini").provider.provider_model("x") == "x"
