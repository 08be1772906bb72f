"""One grpc.aio channel per endpoint, with keepalive and large-message limits."""

from __future__ import annotations

from typing import Final

import grpc

# Engines answer GetTokenizer with a zipped tokenizer and can return long token
# lists: allow messages far beyond gRPC's 4 MiB default.
MAX_MESSAGE_BYTES: Final = 256 * 1024 * 1024

# Keepalive pings find a dead engine (or a silently dropped NAT entry) within
# ~40 s even while a long generation sends nothing; engines accept pings every 10 s.
CHANNEL_OPTIONS: Final[tuple[tuple[str, int], ...]] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly after an engine restart instead of backing off for minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    # One channel is the single connection to the engine; keep it per endpoint.
    ("grpc.use_local_subchannel_pool", 1),
)


def target_of(url: str) -> str:
    """``grpc://host:port[/…]`` → ``host:port`` as grpc expects it."""
    _, sep, rest = url.partition("://")
    return (rest if sep else url).split("/", 1)[0]


class ChannelPool:
    """The channels of one cluster, keyed by endpoint URL, created on first use."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}

    def get(self, url: str) -> grpc.aio.Channel:
        """The endpoint's channel (connects lazily, reconnects by itself)."""
        ch = self._channels.get(url)
        if ch is None:
            ch = grpc.aio.insecure_channel(target_of(url), options=CHANNEL_OPTIONS)
            self._channels[url] = ch
        return ch

    def urls(self) -> list[str]:
        """Endpoints with a channel."""
        return list(self._channels)

    def state(self, url: str) -> str:
        """Connectivity of the endpoint's channel (IDLE, READY, …) without connecting."""
        ch = self._channels.get(url)
        return "none" if ch is None else ch.get_state(try_to_connect=False).name

    def pop(self, url: str) -> grpc.aio.Channel | None:
        """Remove and return the endpoint's channel."""
        return self._channels.pop(url, None)

    async def close(self) -> None:
        """Close every channel; calls still running end with CANCELLED."""
        channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            await ch.close(grace=None)
