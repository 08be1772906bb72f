"""Lean keep-alive HTTP/1.1 upstream client: a per-endpoint connection pool on asyncio protocols.

Error mapping (all from :mod:`smg.errors`):

* refused / DNS failure / TLS handshake failure / connect timeout -> ``UpstreamConnectError``.
  A connect timeout is deliberately a connect error, not ``UpstreamTimeout``: no byte
  reached the worker, so it is always safe to retry elsewhere, and outlier detection
  should count it with the other "could not reach" failures.
* no free connection within the pool timeout -> ``UpstreamTimeout``.
* reset / EOF before a complete response (head or body) -> ``UpstreamReset``.
* no response head within ``first_byte_timeout`` -> ``UpstreamTimeout``.
* no body data for the idle timeout while reading -> ``UpstreamTimeout``.
* unparsable response -> ``UpstreamError``.

A reused keep-alive connection that fails before any response byte arrived (the
worker closed it while idle) is retried once, transparently, on a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_mod
from collections import deque
from collections.abc import Iterable
from typing import Final

from smg.errors import UpstreamConnectError, UpstreamReset, UpstreamTimeout
from smg.upstreams.http_conn import Conn, UpstreamResponse
from smg.upstreams.http_timers import TIMEOUT, Deadlines, expire

__all__ = ["HttpPool", "UpstreamResponse"]

Headers = Iterable[tuple[bytes, bytes]] | bytes

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class HttpPool:
    """Keep-alive connections to one upstream endpoint (host, port), bounded and LIFO-reused."""

    __slots__ = (
        "_closed",
        "_connect_timeout",
        "_conns",
        "_deadlines",
        "_host",
        "_host_line",
        "_idle",
        "_idle_timeout",
        "_loop",
        "_max",
        "_port",
        "_retired",
        "_server_hostname",
        "_size",
        "_ssl",
        "_sweeper",
        "_waiters",
    )

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        scheme: str = "http",
        max_connections: int = 100,
        idle_timeout: float = 60.0,
        connect_timeout: float = 5.0,
        tls: bool = False,
        ssl: ssl_mod.SSLContext | None = None,
    ) -> None:
        if tls:
            scheme = "https"
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"unsupported scheme {scheme!r}")
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        if port is None:
            port = _DEFAULT_PORTS[scheme]
        self._host = host
        self._port = port
        self._max = max_connections
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        if scheme == "https" and ssl is None:
            ssl = ssl_mod.create_default_context()
        self._ssl = ssl if scheme == "https" else None
        self._server_hostname = host if self._ssl is not None else None
        hostpart = f"[{host}]" if ":" in host else host
        if port != _DEFAULT_PORTS[scheme]:
            hostpart = f"{hostpart}:{port}"
        self._host_line = f"host: {hostpart}\r\n".encode("idna" if not host.isascii() else "ascii")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadlines: Deadlines | None = None
        self._size = 0  # open + connecting connections
        self._conns: set[Conn] = set()  # every owned connection, idle or busy
        self._idle: deque[Conn] = deque()  # right end = most recently used
        self._waiters: deque[asyncio.Future[object]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        self._retired = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_connections: int = 100,
        idle_timeout: float = 60.0,
        connect_timeout: float = 5.0,
        ssl: ssl_mod.SSLContext | None = None,
    ) -> HttpPool:
        """A pool for ``http[s]://host[:port]`` (any path part is ignored)."""
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "http", url
        hostport = rest.split("/", 1)[0]
        if hostport.startswith("["):
            host, _, port_s = hostport[1:].partition("]")
            port_s = port_s.lstrip(":")
        elif ":" in hostport:
            host, _, port_s = hostport.rpartition(":")
        else:
            host, port_s = hostport, ""
        return cls(
            host,
            int(port_s) if port_s else None,
            scheme=scheme,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
            connect_timeout=connect_timeout,
            ssl=ssl,
        )

    # -- metrics ----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Connections open or being opened."""
        return self._size

    @property
    def idle(self) -> int:
        """Open connections parked for reuse."""
        return len(self._idle)

    @property
    def in_use(self) -> int:
        """Connections carrying (or being opened for) a request."""
        return self._size - len(self._idle)

    @property
    def waiting(self) -> int:
        """Requests queued for a free connection."""
        return len(self._waiters)

    # -- request ----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        headers: Headers = (),
        body: bytes = b"",
        *,
        connect_timeout: float | None = None,
        first_byte_timeout: float | None = None,
        pool_timeout: float | None = None,
    ) -> UpstreamResponse:
        """Send one request; return once its response head arrived.

        ``headers`` are written as given (the caller guarantees they are valid and carry
        no Host / Content-Length); a ``bytes`` value is a pre-encoded block of
        ``name: value\\r\\n`` lines. ``pool_timeout`` bounds the wait for a free
        connection when all ``max_connections`` are busy (default: ``connect_timeout``).
        """
        if "\n" in path or "\r" in path or " " in path:
            raise ValueError("request path must not contain whitespace or line breaks")
        parts = [f"{method} {path} HTTP/1.1\r\n".encode("ascii"), self._host_line]
        if isinstance(headers, bytes):
            parts.append(headers)
        else:
            for name, value in headers:
                parts += (name, b": ", value, b"\r\n")
        parts.append(b"content-length: %d\r\n\r\n" % len(body))
        if body:
            parts.append(body)
        data = b"".join(parts)
        head_only = method == "HEAD"
        ctimeout = self._connect_timeout if connect_timeout is None else connect_timeout
        ptimeout = ctimeout if pool_timeout is None else pool_timeout

        idle = self._idle
        if idle and not self._closed:
            # Hot path: a parked keep-alive connection, no extra coroutine.
            conn = idle.pop()
            conn.in_idle = False
            reused = True
            if conn.closed:
                conn, reused = await self._acquire(ctimeout, ptimeout, False)
        else:
            conn, reused = await self._acquire(ctimeout, ptimeout, False)
        try:
            return await conn.send(data, first_byte_timeout, head_only)
        except UpstreamReset:
            if not (reused and conn.reused_safe):
                raise
        # The worker closed an idle keep-alive connection under us and sent nothing back:
        # the request was not processed, replay it once on a brand-new connection.
        conn, _ = await self._acquire(ctimeout, ptimeout, True)
        return await conn.send(data, first_byte_timeout, head_only)

    # -- pool mechanics ---------------------------------------------------------------

    async def _acquire(
        self, connect_timeout: float, pool_timeout: float, fresh: bool
    ) -> tuple[Conn, bool]:
        """A connection (and whether it was reused); ``fresh`` skips the idle ones."""
        while True:
            if self._closed:
                raise UpstreamConnectError(f"connection pool to {self._addr()} is closed")
            idle = self._idle
            if not fresh:
                while idle:
                    conn = idle.pop()
                    conn.in_idle = False
                    if not conn.closed:
                        return conn, True
            if self._size < self._max:
                self._size += 1
                return await self._open(connect_timeout), False
            if fresh and idle:
                # Full with idle connections only: make room by dropping the oldest.
                victim = idle.popleft()
                victim.in_idle = False
                victim.abort()
                if self._size < self._max:
                    continue
            got = await self._wait_for_slot(pool_timeout)
            if got is None:
                return await self._open(connect_timeout), False
            assert isinstance(got, Conn)
            if not got.closed:
                return got, True
            # The handed-over connection died before we woke; its slot went elsewhere.

    async def _wait_for_slot(self, pool_timeout: float) -> object:
        """Queue FIFO; resolves to a reusable Conn or None (a slot to connect with)."""
        loop = self._get_loop()
        fut: asyncio.Future[object] = loop.create_future()
        self._waiters.append(fut)
        timer = loop.call_later(pool_timeout, expire, fut)
        try:
            got = await fut
        except BaseException:
            timer.cancel()
            if (
                fut.done()
                and not fut.cancelled()
                and fut.exception() is None
                and fut.result() is not TIMEOUT
            ):
                # Cancelled after being handed something: pass it on, don't leak it.
                self._hand_back(fut.result())
            else:
                self._remove_waiter(fut)
            raise
        timer.cancel()
        if got is TIMEOUT:
            self._remove_waiter(fut)
            raise UpstreamTimeout(
                f"no free connection to {self._addr()} within {pool_timeout}s "
                f"({self._max} busy, {len(self._waiters)} queued)"
            )
        return got

    def _hand_back(self, got: object) -> None:
        if got is None:
            self._give_slot()
        elif isinstance(got, Conn) and not got.closed:
            self._put_back(got)

    def _remove_waiter(self, fut: asyncio.Future[object]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(fut)

    async def _open(self, connect_timeout: float) -> Conn:
        """Connect; the caller already counted the slot, which is released on failure."""
        loop = self._get_loop()
        assert self._deadlines is not None
        conn = Conn(self, loop, self._deadlines)
        try:
            async with asyncio.timeout(connect_timeout):
                await loop.create_connection(
                    lambda: conn,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._server_hostname,
                )
        except BaseException as e:
            self._give_slot()
            if isinstance(e, TimeoutError):
                raise UpstreamConnectError(
                    f"connect to {self._addr()} timed out after {connect_timeout}s"
                ) from None
            if isinstance(e, OSError):  # refused, unreachable, DNS (gaierror), TLS (SSLError)
                raise UpstreamConnectError(f"cannot connect to {self._addr()}: {e}") from e
            raise
        if conn.closed:
            self._give_slot()
            raise UpstreamConnectError(f"connection to {self._addr()} closed right after connect")
        conn.owned = True
        self._conns.add(conn)
        if self._closed:
            conn.abort()
            raise UpstreamConnectError(f"connection pool to {self._addr()} is closed")
        return conn

    def _give_slot(self) -> None:
        """A slot was freed: hand it to the oldest live waiter, else shrink."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._size -= 1

    def _put_back(self, conn: Conn) -> None:
        """Called by a connection whose exchange completed cleanly."""
        if self._closed or self._retired:
            conn.abort()
            return
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        loop = self._get_loop()
        conn.idle_since = loop.time()
        conn.in_idle = True
        self._idle.append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_at(conn.idle_since + self._idle_timeout, self._sweep)

    def _discard(self, conn: Conn) -> None:
        """Called exactly once by an owned connection when it closes."""
        self._conns.discard(conn)
        if conn.in_idle:
            conn.in_idle = False
            self._idle.remove(conn)
        self._give_slot()

    def _sweep(self) -> None:
        """Close connections idle longer than idle_timeout (the oldest sit at the left)."""
        self._sweeper = None
        loop = self._get_loop()
        idle = self._idle
        deadline = loop.time() - self._idle_timeout
        while idle and idle[0].idle_since <= deadline:
            conn = idle.popleft()
            conn.in_idle = False
            conn.abort()
        if idle:
            self._sweeper = loop.call_at(idle[0].idle_since + self._idle_timeout, self._sweep)

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._deadlines = Deadlines(loop)
        return loop

    def _addr(self) -> str:
        return f"{self._host}:{self._port}"

    def close_idle(self) -> None:
        """Close the idle connections now; the pool stays usable."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            conn.in_idle = False
            conn.abort()

    def retire(self) -> None:
        """Stop pooling: idle connections close now, busy ones when their response ends.

        Requests already running finish normally; new ones still work but each uses
        a connection that is closed afterwards (the endpoint left, traffic drains).
        """
        self._retired = True
        self.close_idle()

    async def close(self) -> None:
        """Close every connection (in-flight responses fail with UpstreamReset)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(
                    UpstreamConnectError(f"connection pool to {self._addr()} is closed")
                )
        self.close_idle()
        for conn in list(self._conns):
            conn.abort()  # wakes its reader with UpstreamReset; no deadline needed anymore
        if self._deadlines is not None:
            self._deadlines.close()
        # Let the transports run their connection_lost callbacks.
        await asyncio.sleep(0)
