"""Minimal HTTP/1.1 server protocol (httptools parser) tuned for the simulator.

A general-purpose framework costs more CPU per request than the simulated engine
is allowed to; this speaks just enough HTTP/1.1 for API clients: keep-alive,
pipelining (answered in order), chunked request bodies, ``Expect: 100-continue``,
Content-Length and chunked responses, and abrupt closes for fault injection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from http import HTTPStatus
from typing import Protocol, cast

import httptools

from smg.sim.runner import Runner

JSON = b"application/json"
SSE = b"text/event-stream"
TEXT = b"text/plain; charset=utf-8"
PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"

MAX_BODY = 64 * 1024 * 1024
# Beyond this many queued pipelined requests, stop reading until they are answered.
MAX_PIPELINED = 32

_status_lines: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>`` (cached)."""
    line = _status_lines.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        line = _status_lines[status] = b"HTTP/1.1 %d %s" % (status, reason.encode())
    return line


def header_lines(headers: dict[str, str]) -> bytes:
    """Render extra response headers, dropping values that would break the framing."""
    return b"".join(
        b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1", "replace"))
        for k, v in headers.items()
        if "\r" not in v and "\n" not in v
    )


class Request:
    """One parsed request: method, path, raw headers and the whole body."""

    __slots__ = (
        "_headers",
        "body",
        "http10",
        "keep_alive",
        "method",
        "path",
        "query",
        "raw_headers",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes,
        keep_alive: bool,
        http10: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.raw_headers = raw_headers
        self.body = body
        self.keep_alive = keep_alive
        self.http10 = http10
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Headers by lower-cased name (decoded on first use: most requests never need it)."""
        if self._headers is None:
            self._headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.raw_headers
            }
        return self._headers

    def header(self, name: bytes) -> str | None:
        """One header's value; ``name`` must be lower-case."""
        size = len(name)
        for k, v in self.raw_headers:
            if len(k) == size and k.lower() == name:
                return v.decode("latin-1")
        return None


class Dispatcher(Protocol):
    """Whoever answers requests: must eventually call one of the connection's reply methods."""

    def dispatch(self, req: Request, conn: HttpConnection) -> None: ...


class _BodyTooLarge(Exception):
    pass


class HttpConnection(asyncio.Protocol):
    """One client connection; answers its requests one at a time, in order."""

    def __init__(self, dispatcher: Dispatcher, loop: asyncio.AbstractEventLoop) -> None:
        self._dispatcher = dispatcher
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._expect_continue = False
        self._pending: deque[Request] = deque()
        self._busy = False
        self._dispatching = False
        self._keep_alive = True
        self._http10 = False
        self._streaming = False
        self._chunked = True
        self._read_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.runner: Runner | None = None

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except _BodyTooLarge:
            self._fatal(413, b"request body too large")
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _BodyTooLarge):
                self._fatal(413, b"request body too large")
            else:
                self._fatal(400, b"malformed HTTP request")
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._fatal(400, b"malformed HTTP request")
        else:
            self._dispatch_pending()

    def eof_received(self) -> bool | None:
        # A half-closed client cannot read answers we have not written yet.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pending.clear()
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.cancel()
        self._wake_writer()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    # -- httptools callbacks ------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._raw_headers = []
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))
        if len(name) == 6 and name.lower() == b"expect":
            self._expect_continue = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        if self._expect_continue:
            self._expect_continue = False
            # Only the request at the head of the line may be told to send its body.
            if not self._busy and not self._pending and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY:
            raise _BodyTooLarge
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        path, _, query = self._url.partition(b"?")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        req = Request(
            parser.get_method().decode("ascii", "replace"),
            path.decode("latin-1"),
            query.decode("latin-1"),
            self._raw_headers,
            body,
            bool(parser.should_keep_alive()),
            parser.get_http_version() == "1.0",
        )
        self._pending.append(req)
        if len(self._pending) > MAX_PIPELINED and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    # -- dispatch -------------------------------------------------------------

    def _dispatch_pending(self) -> None:
        # Replies finishing synchronously re-enter here; the outer loop carries on.
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending and not self._busy and not self.closed:
                req = self._pending.popleft()
                self._busy = True
                self._keep_alive = req.keep_alive
                self._http10 = req.http10
                self._dispatcher.dispatch(req, self)
            if self._read_paused and len(self._pending) <= MAX_PIPELINED // 2:
                self._read_paused = False
                if self.transport is not None and not self.closed:
                    self.transport.resume_reading()
        finally:
            self._dispatching = False

    def _finished(self) -> None:
        self._busy = False
        self._streaming = False
        self.runner = None
        if self.closed:
            return
        if not self._keep_alive:
            self.close()
            return
        self._dispatch_pending()

    def _fatal(self, status: int, message: bytes) -> None:
        if self.closed or self.transport is None:
            return
        if not self._busy:
            self.transport.write(
                b"%s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n%s" % (status_line(status), len(message), message)
            )
        self._pending.clear()
        self.close()

    # -- replies --------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        """True once a streamed response head was written."""
        return self._streaming

    @property
    def write_paused(self) -> bool:
        """True while the client reads slower than we write."""
        return self._write_paused

    def drain(self) -> asyncio.Future[None]:
        """A future done once the transport accepts writes again (or closes)."""
        fut: asyncio.Future[None] = self.loop.create_future()
        if not self._write_paused or self.closed:
            fut.set_result(None)
        else:
            self._drain_waiter = fut
        return fut

    def _wake_writer(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def send(
        self, status: int, body: bytes, content_type: bytes = JSON, headers: bytes = b""
    ) -> None:
        """Write a complete response with a Content-Length."""
        transport = self.transport
        if transport is not None and not self.closed:
            close = b"" if self._keep_alive else b"Connection: close\r\n"
            transport.write(
                b"%s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n%s"
                % (status_line(status), content_type, len(body), headers, close, body)
            )
        self._finished()

    def start_stream(
        self, status: int = 200, content_type: bytes = SSE, headers: bytes = b""
    ) -> None:
        """Write the head of a streamed (chunked, or close-delimited for HTTP/1.0) response."""
        transport = self.transport
        self._streaming = True
        self._chunked = not self._http10
        if self._http10:
            self._keep_alive = False
        if transport is None or self.closed:
            return
        framing = b"Transfer-Encoding: chunked\r\n" if self._chunked else b"Connection: close\r\n"
        transport.write(
            b"%s\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n%s%s\r\n"
            % (status_line(status), content_type, headers, framing)
        )

    def write(self, data: bytes) -> None:
        """Write one piece of a streamed body; it leaves at once (TCP_NODELAY is on)."""
        transport = self.transport
        if transport is None or self.closed or not data:
            return
        if self._chunked:
            transport.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            transport.write(data)

    def end_stream(self, data: bytes = b"") -> None:
        """Write the last piece (if any) and terminate the streamed body, in one write."""
        transport = self.transport
        if transport is not None and not self.closed:
            if self._chunked:
                if data:
                    transport.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
                else:
                    transport.write(b"0\r\n\r\n")
            elif data:
                transport.write(data)
        self._finished()

    def abort(self) -> None:
        """Cut the connection without finishing the response."""
        self._keep_alive = False
        self.close(abort=True)
        self._busy = False
        self.runner = None

    def close(self, abort: bool = False) -> None:
        """Close the connection (``abort``: drop unsent data too)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if abort:
            transport.abort()
        else:
            transport.close()
