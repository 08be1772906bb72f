"""One keep-alive HTTP/1.1 upstream connection (asyncio protocol + httptools) and its response."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, cast

import httptools

from smg.errors import UpstreamError, UpstreamReset, UpstreamTimeout
from smg.upstreams.http_timers import TIMEOUT, Deadlines

if TYPE_CHECKING:
    from smg.upstreams.http_client import HttpPool

__all__ = ["HIGH_WATER", "UpstreamResponse"]

# Reading pauses above HIGH_WATER buffered body bytes, so a slow downstream cannot make
# us buffer a whole stream; it resumes when the consumer takes the buffer (it always
# takes all of it at once, so there is no separate low-water mark).
HIGH_WATER: Final = 256 * 1024


class _OutOfSync(Exception):
    """Raised from a parser callback to stop parsing bytes nobody asked for."""


class _Parser(Protocol):
    """The part of httptools.HttpResponseParser we use (httptools ships no stubs)."""

    def feed_data(self, data: bytes) -> None: ...
    def get_status_code(self) -> int: ...
    def should_keep_alive(self) -> bool: ...


class Conn(asyncio.Protocol):
    """A pooled connection; holds the parse state of the one response in flight on it."""

    __slots__ = (
        "_active",
        "_buffered",
        "_chunks",
        "_closed",
        "_ctype",
        "_deadlines",
        "_exc",
        "_framed",
        "_head_done",
        "_head_only",
        "_headers",
        "_hwm",
        "_informational",
        "_keep_alive",
        "_loop",
        "_parser",
        "_paused",
        "_pool",
        "_received",
        "_status",
        "_transport",
        "_waiter",
        "deadline",
        "done",
        "idle_since",
        "in_idle",
        "owned",
    )

    def __init__(
        self, pool: HttpPool, loop: asyncio.AbstractEventLoop, deadlines: Deadlines
    ) -> None:
        self._pool = pool
        self._loop = loop
        self._deadlines = deadlines
        self.deadline = 0.0
        self._transport: asyncio.Transport | None = None
        self._parser: _Parser = httptools.HttpResponseParser(self)
        self._closed = False
        self.owned = False  # set once the pool counts this connection in its size
        self.in_idle = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[object] | None = None
        self._chunks: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._exc: BaseException | None = None
        self._reset(False)

    def _reset(self, head_only: bool) -> None:
        self._active = False
        self._head_done = False
        self.done = False
        self._informational = False
        self._keep_alive = False
        self._framed = False
        self._received = False
        self._head_only = head_only
        self._exc = None
        self._status = 0
        self._ctype = ""
        self._buffered = 0
        self._hwm = HIGH_WATER
        self._paused = False

    @property
    def closed(self) -> bool:
        """The transport is closed or closing; never hand this connection out."""
        return self._closed

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Requests are written in one go; Nagle would only delay the last segment.
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if not self._active:
            # Bytes nobody asked for: the stream is out of sync, it cannot be reused.
            self.abort()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as e:
            if not isinstance(e.__context__, _OutOfSync):
                raise  # an exception from our own callbacks: a bug, let the loop report it
            # A second message after the complete one: keep the body, drop the socket.
            self.abort()
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as e:
            self._set_exc(UpstreamError(f"malformed response from upstream: {e}"))
            self.abort()

    def eof_received(self) -> bool:
        self._on_eof(None)
        self._mark_closed()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_eof(exc)
        self._mark_closed()

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            self._keep_alive = False
            raise _OutOfSync

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200 and status != 101:
            # 1xx interim response: llhttp reports it as its own message; skip it.
            self._informational = True
            self._headers = []
            return
        for name, value in self._headers:
            n = len(name)
            # Length check first: most headers are none of these, and lower() allocates.
            if n == 12:
                if name.lower() == b"content-type":
                    self._ctype = value.decode("latin-1")
            elif n == 14 or n == 17:
                lname = name.lower()
                if lname == b"content-length" or lname == b"transfer-encoding":
                    self._framed = True
        self._status = status
        self._head_done = True
        if self._head_only:
            # llhttp does not know the request was HEAD and would wait for a body;
            # finish here and start the next exchange on a fresh parser.
            self._keep_alive = self._parser.should_keep_alive()
            self.done = True
            self._parser = httptools.HttpResponseParser(self)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.done:
            self._keep_alive = False  # body bytes after a HEAD response: out of sync
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > self._hwm and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self.done:
            return
        self._keep_alive = self._parser.should_keep_alive()
        self.done = True
        self._wake()

    # -- internals --------------------------------------------------------------------

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _set_exc(self, exc: BaseException) -> None:
        if self._active and not self.done and self._exc is None:
            self._exc = exc
        self._wake()

    def _on_eof(self, exc: Exception | None) -> None:
        if not self._active or self.done:
            return
        if self._head_done and not self._framed and exc is None:
            # No Content-Length and not chunked: the body is delimited by a clean close
            # (a reset instead may have cut it short, so that stays an error).
            self._keep_alive = False
            self.done = True
            self._wake()
            return
        where = "body" if self._head_done else "response head"
        why = f": {exc}" if exc is not None else ""
        self._set_exc(UpstreamReset(f"upstream closed the connection before the {where}{why}"))

    def _mark_closed(self) -> None:
        if not self._closed:
            self._closed = True
            if self.owned:
                self._pool._discard(self)

    def abort(self) -> None:
        """Drop the connection now (unread data is discarded) and free its pool slot."""
        if self._transport is not None:
            self._transport.abort()
        self._mark_closed()
        self._set_exc(UpstreamReset("upstream connection aborted"))

    def resume(self) -> None:
        """Reading was paused for back-pressure; the consumer caught up."""
        self._paused = False
        if self._transport is not None and not self._closed:
            self._transport.resume_reading()

    def on_deadline(self) -> None:
        """The armed timeout expired: wake the waiter with the TIMEOUT sentinel."""
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(TIMEOUT)

    async def wait(self, idle_timeout: float | None) -> None:
        """Sleep until the parser makes progress (or an error), at most ``idle_timeout`` s."""
        fut: asyncio.Future[object] = self._loop.create_future()
        self._waiter = fut
        if idle_timeout is None:
            try:
                await fut
            finally:
                self._waiter = None
            return
        self._deadlines.arm(self, idle_timeout)
        try:
            res = await fut
        finally:
            self._deadlines.disarm(self)
            self._waiter = None
        if res is TIMEOUT:
            raise UpstreamTimeout(f"upstream sent no data for {idle_timeout}s")

    @property
    def reused_safe(self) -> bool:
        """Nothing of a response arrived: a failed request may be replayed elsewhere."""
        return not self._received

    async def send(
        self, data: bytes, first_byte_timeout: float | None, head_only: bool
    ) -> UpstreamResponse:
        """Write one request and wait for its response head; closes the connection on failure."""
        self._reset(head_only)  # before any raise: reused_safe must describe this exchange
        transport = self._transport
        if transport is None or transport.is_closing():
            self._mark_closed()
            raise UpstreamReset("pooled upstream connection was already closed")
        self._headers = []
        self._active = True
        fut: asyncio.Future[object] = self._loop.create_future()
        self._waiter = fut
        try:
            transport.write(data)
            if first_byte_timeout is not None:
                self._deadlines.arm(self, first_byte_timeout)
            res = await fut
        except BaseException:
            # Cancelled with the request on the wire: the answer would arrive unread.
            self._active = False
            self.abort()
            raise
        finally:
            self._waiter = None
            if first_byte_timeout is not None:
                self._deadlines.disarm(self)
        if not self._head_done:
            self._active = False
            self.abort()
            if res is TIMEOUT:
                raise UpstreamTimeout(
                    f"no response head from upstream within {first_byte_timeout}s"
                )
            exc = self._exc
            raise exc if exc is not None else UpstreamReset("upstream connection lost")
        return UpstreamResponse(self, self._status, self._headers, self._ctype)

    def finish(self) -> None:
        """The response handle let go: reuse if the exchange completed cleanly, else close."""
        reusable = self.done and self._keep_alive and self._exc is None and not self._closed
        self._active = False
        if not reusable:
            self.abort()
            return
        self._chunks.clear()
        self._buffered = 0
        if self._paused:
            self.resume()
        self._pool._put_back(self)


class UpstreamResponse:
    """Status and head of an upstream answer; its body is read or streamed exactly once."""

    __slots__ = ("_conn", "content_type", "headers", "status")

    def __init__(
        self, conn: Conn, status: int, headers: list[tuple[bytes, bytes]], content_type: str
    ) -> None:
        self._conn: Conn | None = conn
        self.status = status
        self.headers = headers
        self.content_type = content_type

    def header(self, name: bytes) -> bytes | None:
        """First value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    @property
    def buffered_bytes(self) -> int:
        """Body bytes received from the socket and not yet handed to the caller."""
        conn = self._conn
        return conn._buffered if conn is not None else 0

    @property
    def complete(self) -> bool:
        """The whole body has arrived."""
        conn = self._conn
        return conn is not None and conn.done

    def _conn_or_raise(self) -> Conn:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the response body was already consumed or released")
        return conn

    async def read(self, idle_timeout: float | None = None) -> bytes:
        """The whole body; releases the connection. ``idle_timeout`` bounds each gap."""
        conn = self._conn_or_raise()
        if not conn.done:
            # The caller wants everything anyway: pausing would only deadlock.
            conn._hwm = sys.maxsize
            if conn._paused:
                conn.resume()
            try:
                while not conn.done:
                    if conn._exc is not None:
                        raise conn._exc
                    await conn.wait(idle_timeout)
            except BaseException:
                self._abandon()
                raise
        chunks = conn._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.release()
        return data

    async def iter_chunks(self, idle_timeout: float | None = None) -> AsyncIterator[bytes]:
        """Yield body bytes as they arrive (chunk framing removed); releases at the end.

        Raises UpstreamTimeout when nothing arrives for ``idle_timeout`` seconds and
        UpstreamReset when the upstream drops the connection mid-body.
        """
        conn = self._conn_or_raise()
        chunks = conn._chunks
        completed = False
        try:
            while True:
                if chunks:
                    # Coalesce what piled up meanwhile: one downstream write instead of many.
                    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    chunks.clear()
                    conn._buffered = 0
                    if conn._paused:
                        conn.resume()
                    yield data
                    if self._conn is not conn:
                        return  # released while we were suspended; conn may serve another
                    continue
                if conn.done:
                    break
                if conn._exc is not None:
                    raise conn._exc
                await conn.wait(idle_timeout)
            completed = True
        finally:
            if completed:
                self.release()
            else:
                self._abandon()

    def __del__(self) -> None:
        # Safety net for a caller that dropped the handle without release(): the
        # connection would otherwise stay counted in_use forever.
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._abandon()

    def _abandon(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn._active = False
            conn.abort()

    def release(self) -> None:
        """Give the connection back: pooled if the body was fully read, else closed."""
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.finish()

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
