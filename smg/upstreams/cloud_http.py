"""What the cloud adapters share: base URLs that carry a path, provider headers and keys.

A cloud endpoint URL is what the provider's SDK takes as its base URL
(``https://api.openai.com/v1``, ``https://host/openai/v1``,
``https://generativelanguage.googleapis.com``); request paths are joined to its path
part, and a query string in it (``?api-version=…``) is kept on every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from smg.upstreams.headers import upstream_headers
from smg.upstreams.provider_auth import (
    CLIENT_CREDENTIAL_HEADERS,
    DEFAULT_KEY_ENV,
    auth_headers,
    client_key,
    key_for_request,
)

if TYPE_CHECKING:
    from smg.config.model import ClusterConfig
    from smg.protocol.request import GatewayRequest

# Provider answers are parsed or accounted (usage), so they must come uncompressed.
_IDENTITY: Final = {"accept-encoding": "identity"}
# Response headers of a provider that mean nothing to our client (its cookies, its CDN).
_NOT_RELAYED_FROM_PROVIDER: Final = frozenset(
    {"set-cookie", "alt-svc", "strict-transport-security"}
)


def split_base(url: str) -> tuple[str, str]:
    """``(path, query)`` of a base URL: ``https://h/openai/v1?x=1`` → ``("/openai/v1", "x=1")``."""
    _, sep, rest = url.partition("://")
    if not sep:
        rest = url
    _, slash, tail = rest.partition("/")
    path_q = "/" + tail if slash else ""
    path, _, query = path_q.partition("?")
    return path.rstrip("/"), query


def with_query(path: str, query: str) -> str:
    """``path`` with the base URL's query string appended (after any query it has)."""
    if not query:
        return path
    return f"{path}&{query}" if "?" in path else f"{path}?{query}"


def provider_headers(
    config: ClusterConfig,
    req: GatewayRequest | None,
    key: str | None,
    forward_client: bool = True,
) -> list[tuple[bytes, bytes]]:
    """Headers for one provider request: the client's minus its credentials, plus ours.

    With ``forward_client`` (a provider of the client's own API), the client's headers
    (user agent, OpenAI-Beta, …) pass as in HTTP mode, but never its credential headers:
    the provider sees only the key :func:`key_for_request` chose. A translating adapter
    sends only ours (and the filters' additions).
    """
    extra: dict[str, str] = dict(_IDENTITY)
    if req is not None:
        extra.update(req.upstream_headers)
    extra.update(config.provider.headers)
    for name, value in auth_headers(config.protocol, key):
        extra[name] = value
    if req is None or not forward_client:
        if not forward_client:
            extra["content-type"] = "application/json"
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    dropped: Iterable[str] = CLIENT_CREDENTIAL_HEADERS.union(req.dropped_headers)
    return upstream_headers(req.raw_headers, extra, dropped)


def request_key(config: ClusterConfig, req: GatewayRequest | None) -> str | None:
    """The key this request goes out with (configured, or the client's with pass-through)."""
    return key_for_request(config, req.headers if req is not None else {})


def relayed_provider_headers(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Relayed response headers without the provider's cookies and transport policy."""
    return [(k, v) for k, v in pairs if k not in _NOT_RELAYED_FROM_PROVIDER]


def key_rejected_message(cluster: str, protocol: str, status: int, had_key: bool) -> str:
    """What a client is told when the provider refused the key the gateway sent.

    The provider's own message is not relayed: some echo part of the key.
    """
    env = DEFAULT_KEY_ENV.get(protocol, "the provider's key variable")
    if not had_key:
        return (
            f"Cluster '{cluster}' has no API key for its {protocol} provider "
            f"(set provider.api_key or {env}); the provider answered {status}."
        )
    return (
        f"The {protocol} provider of cluster '{cluster}' rejected the API key the gateway "
        f"is configured with (HTTP {status}); check provider.api_key or {env}."
    )


def is_clients_key(config: ClusterConfig, req: GatewayRequest, key: str | None) -> bool:
    """Whether ``key`` is the client's own (pass-through), so a 401 is the client's to fix."""
    return config.provider.pass_client_key and key is not None and key == client_key(req.headers)
