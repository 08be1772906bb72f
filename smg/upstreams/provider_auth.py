"""Credentials and fixed headers for the cloud protocols (openai, anthropic, gemini).

One place decides which key goes to a provider and in which header, so that every cloud
adapter treats keys alike: the cluster's ``provider.api_key`` (written as ``${ENV}``),
else the protocol's usual environment variable, else — when ``pass_client_key`` is on —
the key the client sent. The client's own credential headers never reach a provider
unless pass-through is on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from smg.config.model import ClusterConfig

DEFAULT_KEY_ENV: Final[Mapping[str, str]] = {
    "openai": "OPENAI_API_KEY",
    "openai_compatible": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
}

CLIENT_CREDENTIAL_HEADERS: Final = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "api-key"}
)
"""Headers a client may carry its own key in; dropped on the way to a provider."""


def configured_key(config: ClusterConfig) -> str | None:
    """The cluster's provider key: ``provider.api_key`` or the protocol's env variable."""
    key = config.provider.api_key
    if key:
        return key
    env = DEFAULT_KEY_ENV.get(config.protocol)
    return (os.environ.get(env) or None) if env else None


def client_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: ``Authorization: Bearer K``, ``x-api-key`` or ``x-goog-api-key``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for name in ("x-api-key", "x-goog-api-key", "api-key"):
        found = headers.get(name)
        if found:
            return found.strip()
    return None


def key_for_request(config: ClusterConfig, headers: Mapping[str, str]) -> str | None:
    """The key to send for one request: the client's when pass-through is on and it sent one."""
    if config.provider.pass_client_key:
        own = client_key(headers)
        if own:
            return own
    return configured_key(config)


def auth_headers(protocol: str, key: str | None) -> list[tuple[str, str]]:
    """The provider's credential header for ``key`` (none when there is no key)."""
    if not key:
        return []
    if protocol == "anthropic":
        return [("x-api-key", key)]
    if protocol == "gemini":
        return [("x-goog-api-key", key)]
    return [("authorization", f"Bearer {key}")]
