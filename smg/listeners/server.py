"""Binds one listener address with aiohttp's low-level server; stops and drains it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from aiohttp import web

from smg.listeners.handler import ListenerHandler

log = logging.getLogger("smg.listeners")


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) → (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class ListenerServer:
    """One bound socket serving one named listener."""

    def __init__(self, name: str, address: str, handler: ListenerHandler, reuse_port: bool):
        self.name = name
        self.address = address
        self._handler = handler
        self._reuse_port = reuse_port
        self._web: web.Server | None = None
        self._server: asyncio.Server | None = None

    @property
    def key(self) -> tuple[str, str]:
        """Identity for reconciliation across reloads."""
        return (self.name, self.address)

    async def start(self) -> None:
        """Bind and start accepting (raises OSError if the address is taken)."""
        host, port = split_address(self.address)
        self._web = web.Server(self._handler, handler_cancellation=True, access_log=None)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._web,
            host,
            port,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
            backlog=2048,
        )
        for sock in self._server.sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                log.info("listener %s serving on %s", self.name, self.address)

    def stop_accepting(self) -> None:
        """Close the listening socket; connections already open keep being served."""
        if self._server is not None:
            self._server.close()

    async def close(self, grace: float) -> None:
        """Stop accepting, let in-flight requests finish up to ``grace`` seconds, close."""
        self.stop_accepting()
        if self._web is not None:
            # Idle keep-alive connections close now; busy ones after their response,
            # which gets at most ``grace`` seconds before it is ended with an error.
            self._web.pre_shutdown()
            await self._handler.drain(grace)
            await self._web.shutdown(1.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), max(grace, 0.1))
        self._web = None
        self._server = None
