"""Which headers cross the proxy, in each direction (RFC 9110 hop-by-hop rules)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Recomputed by us for the upstream hop.
_NOT_FORWARDED_UP = HOP_BY_HOP | {"host", "content-length", "expect"}
# Set by the listener's own HTTP stack for the client hop.
_NOT_RELAYED_DOWN = HOP_BY_HOP | {"content-length", "date", "server"}


_SKIP_UP_BYTES = frozenset(h.encode() for h in _NOT_FORWARDED_UP)


def upstream_headers(
    raw: Iterable[tuple[bytes, bytes]], extra: Mapping[str, str], dropped: Iterable[str]
) -> list[tuple[bytes, bytes]]:
    """Client headers (raw, as received) to forward to a worker, with filter changes."""
    if not extra and not dropped:
        return [(k, v) for k, v in raw if k.lower() not in _SKIP_UP_BYTES]
    skip = _SKIP_UP_BYTES.union(
        (d.lower().encode("latin-1") for d in dropped),
        (k.lower().encode("latin-1") for k in extra),
    )
    out = [(k, v) for k, v in raw if k.lower() not in skip]
    out.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    return out


def relayed_headers(upstream: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Worker response headers to relay to the client (content type handled apart)."""
    out: list[tuple[str, str]] = []
    for k, v in upstream:
        name = k.decode("latin-1").lower()
        if name in _NOT_RELAYED_DOWN or name == "content-type":
            continue
        out.append((name, v.decode("latin-1")))
    return out
