"""HttpPool against raw loopback servers that send exact bytes (asyncio and uvloop)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import struct
import subprocess
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from smg.errors import UpstreamConnectError, UpstreamError, UpstreamReset, UpstreamTimeout
from smg.upstreams.http_client import HttpPool
from smg.upstreams.http_conn import HIGH_WATER

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]
Handler = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run[Any]:
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def _run(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(asyncio.wait_for(coro, 20))

    return _run


class Request:
    """What the server read: request line, headers (lower-cased names), body."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


class Server:
    """A loopback server running ``handler`` per connection; counts accepts."""

    def __init__(self, handler: Handler, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_ctx = ssl_ctx
        self.accepts = 0
        self.open = 0
        self.max_open = 0
        self.requests: list[Request] = []
        self.closed = asyncio.Event()  # some connection saw EOF from the client
        self.gate = asyncio.Event()  # handlers may wait on it
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", 0, ssl=self.ssl_ctx)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepts += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # shutdown; ending normally keeps asyncio's stream callback quiet
        finally:
            self.open -= 1
            writer.close()
            self._tasks.discard(task)

    async def next_request(self, reader: asyncio.StreamReader) -> Request | None:
        req = await read_request(reader)
        if req is not None:
            self.requests.append(req)
        return req

    async def wait_eof(self, reader: asyncio.StreamReader) -> None:
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.closed.set()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


def keepalive(response: bytes) -> Handler:
    """Answer every request on the connection with ``response``."""

    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while await srv.next_request(r) is not None:
            w.write(response)
            await w.drain()

    return handler


def chunked(*payloads: bytes) -> bytes:
    out = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    for p in payloads:
        out += b"%x\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\n\r\n"


def assert_empty(pool: HttpPool) -> None:
    assert (pool.size, pool.idle, pool.in_use, pool.waiting) == (0, 0, 0, 0)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


# -- bodies ---------------------------------------------------------------------------


def test_content_length_body_and_request_framing(run: Run[None]) -> None:
    body = b'{"id":"x","choices":[]}'

    async def main() -> None:
        async with Server(keepalive(ok(body, b"X-Up: 1\r\n"))) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request(
                "POST", "/v1/chat", [(b"content-type", b"application/json")], b'{"m":1}'
            )
            assert resp.status == 200
            assert resp.content_type == "application/json"
            assert (b"X-Up", b"1") in resp.headers
            assert resp.header(b"x-up") == b"1"
            assert await resp.read() == body
            req = srv.requests[0]
            assert (req.method, req.path, req.body) == ("POST", "/v1/chat", b'{"m":1}')
            assert req.headers["host"] == f"127.0.0.1:{srv.port}"
            assert req.headers["content-length"] == "7"
            assert req.headers["content-type"] == "application/json"
            assert (pool.size, pool.idle, pool.in_use) == (1, 1, 0)
            await pool.close()
            assert_empty(pool)

    run(main())


def test_prencoded_header_block(run: Run[None]) -> None:
    async def main() -> None:
        async with Server(keepalive(ok(b"{}"))) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/x", b"a: 1\r\nb: 2\r\n")
            assert await resp.read() == b"{}"
            assert srv.requests[0].headers["a"] == "1" and srv.requests[0].headers["b"] == "2"
            await pool.close()

    run(main())


def test_chunked_body_split_in_odd_places(run: Run[None]) -> None:
    payloads = [b"data: a\n\n", b"x" * 300, b"data: \xe2\x82\xac\n\n"]
    raw = chunked(*payloads)

    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while await srv.next_request(r) is not None:
            i = 0
            step = 1
            while i < len(raw):
                w.write(raw[i : i + step])
                await w.drain()
                await asyncio.sleep(0.0005)
                i += step
                step = step % 7 + 1  # 1..7 byte pieces: splits land in sizes, CRLFs, data

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            assert await resp.read() == b"".join(payloads)
            resp = await pool.request("GET", "/", ())
            got = [c async for c in resp.iter_chunks(5.0)]
            assert b"".join(got) == b"".join(payloads)
            assert srv.accepts == 1 and pool.idle == 1
            await pool.close()

    run(main())


def test_stream_yields_first_chunk_before_second_is_sent(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n"
        )
        await srv.gate.wait()  # the client has seen chunk 1
        w.write(b"9\r\ndata: 2\n\n\r\n0\r\n\r\n")
        await srv.wait_eof(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("POST", "/s", (), b"{}", first_byte_timeout=5)
            assert resp.content_type == "text/event-stream"
            seen = []
            async for chunk in resp.iter_chunks(5.0):
                seen.append(chunk)
                srv.gate.set()
            assert seen == [b"data: 1\n\n", b"data: 2\n\n"]
            assert (pool.size, pool.idle, pool.in_use) == (1, 1, 0)
            await pool.close()

    run(main())


def test_keep_alive_reuses_one_connection(run: Run[None]) -> None:
    async def main() -> None:
        async with Server(keepalive(ok(b"{}"))) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            for _ in range(20):
                async with await pool.request("POST", "/", (), b"x") as resp:
                    assert await resp.read() == b"{}"
            assert srv.accepts == 1
            assert (pool.size, pool.idle, pool.in_use) == (1, 1, 0)
            await pool.close()

    run(main())


def test_connection_close_is_not_reused(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(ok(b"bye", b"Connection: close\r\n"))
        await w.drain()
        await asyncio.sleep(0.2)  # the client must not wait for our FIN to finish

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            for _ in range(3):
                resp = await pool.request("GET", "/", ())
                assert await resp.read() == b"bye"
                assert pool.size == 0
            assert srv.accepts == 3
            assert_empty(pool)
            await pool.close()

    run(main())


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
    ],
)
def test_close_delimited_body(run: Run[None], head: bytes) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(head + b"hello ")
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(b"world")

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            assert await resp.read(idle_timeout=5) == b"hello world"
            await settle()
            assert_empty(pool)

    run(main())


def test_head_request_and_interim_response(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (req := await srv.next_request(r)) is not None:
            if req.method == "HEAD":
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            else:
                w.write(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"ok"))

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("HEAD", "/", ())
            assert resp.status == 200 and await resp.read() == b""
            resp = await pool.request("GET", "/", ())
            assert resp.status == 200 and await resp.read() == b"ok"
            resp = await pool.request("HEAD", "/", ())
            assert await resp.read() == b""
            assert srv.accepts == 1
            await pool.close()

    run(main())


# -- errors ---------------------------------------------------------------------------


def test_connection_refused(run: Run[None]) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now

    async def main() -> None:
        pool = HttpPool("127.0.0.1", port)
        with pytest.raises(UpstreamConnectError):
            await pool.request("GET", "/", ())
        assert_empty(pool)

    run(main())


def test_dns_failure_is_connect_error(run: Run[None]) -> None:
    async def main() -> None:
        pool = HttpPool("nonexistent.invalid", 80, connect_timeout=5)
        with pytest.raises(UpstreamConnectError):
            await pool.request("GET", "/", ())
        assert_empty(pool)

    run(main())


def test_server_closes_mid_body(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await w.drain()
        await asyncio.sleep(0.05)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            with pytest.raises(UpstreamReset):
                await resp.read()
            assert_empty(pool)
            resp = await pool.request("GET", "/", ())
            got = []
            with pytest.raises(UpstreamReset):
                async for c in resp.iter_chunks(5):
                    got.append(c)
            assert b"".join(got) == b"0123456789"
            assert_empty(pool)

    run(main())


def test_no_head_within_first_byte_timeout(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        await srv.wait_eof(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            with pytest.raises(UpstreamTimeout):
                await pool.request("GET", "/", (), first_byte_timeout=0.1)
            assert_empty(pool)
            await asyncio.wait_for(srv.closed.wait(), 2)  # and the socket really closed

    run(main())


def test_idle_gap_in_body(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(chunked()[:-5] + b"3\r\nabc\r\n")
        await srv.wait_eof(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            got = []
            with pytest.raises(UpstreamTimeout):
                async for c in resp.iter_chunks(0.1):
                    got.append(c)
            assert got == [b"abc"]
            assert_empty(pool)
            resp = await pool.request("GET", "/", ())
            with pytest.raises(UpstreamTimeout):
                await resp.read(idle_timeout=0.1)
            assert_empty(pool)

    run(main())


def test_malformed_response(run: Run[None]) -> None:
    async def main() -> None:
        async with Server(keepalive(b"HTTP/1.1 abc nonsense\r\n\r\n")) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            with pytest.raises(UpstreamError):
                await pool.request("GET", "/", (), first_byte_timeout=2)
            assert_empty(pool)

    run(main())


def test_abandoned_response_closes_connection(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(chunked()[:-5] + b"3\r\nabc\r\n")
        await srv.wait_eof(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            async with await pool.request("GET", "/", ()) as resp:
                async for c in resp.iter_chunks(5):
                    assert c == b"abc"
                    break  # the client went away
            assert_empty(pool)
            await asyncio.wait_for(srv.closed.wait(), 2)
            # Released without reading at all, and release() twice: harmless.
            srv.closed.clear()
            resp = await pool.request("GET", "/", ())
            resp.release()
            resp.release()
            assert_empty(pool)
            await asyncio.wait_for(srv.closed.wait(), 2)
            with pytest.raises(RuntimeError):
                await resp.read()

    run(main())


def test_cancel_while_waiting_for_head(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        srv.gate.set()
        await srv.wait_eof(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            task = asyncio.create_task(pool.request("GET", "/", ()))
            await srv.gate.wait()
            assert pool.in_use == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert_empty(pool)
            await asyncio.wait_for(srv.closed.wait(), 2)

    run(main())


def test_cancel_while_reading_body(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12")
        await srv.wait_eof(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            task = asyncio.create_task(resp.read())
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert_empty(pool)
            await asyncio.wait_for(srv.closed.wait(), 2)

    run(main())


def test_cancel_during_connect(run: Run[None]) -> None:
    async def main() -> None:
        # A listener with a full backlog never completes the handshake... not portable;
        # cancel right after the task starts instead, while create_connection runs.
        async with Server(keepalive(ok(b"{}"))) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            task = asyncio.create_task(pool.request("GET", "/", ()))
            await asyncio.sleep(0)
            assert pool.size == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await settle()
            assert_empty(pool)
            resp = await pool.request("GET", "/", ())
            assert await resp.read() == b"{}"
            await pool.close()

    run(main())


def test_stale_idle_connection_is_retried_once(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        # Answer the first request of a connection; drop the second unanswered, as a
        # server does when its keep-alive timer fires just as the request arrives.
        if await srv.next_request(r) is None:
            return
        w.write(ok(b"first"))
        await w.drain()
        await srv.next_request(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            assert await (await pool.request("POST", "/", (), b"1")).read() == b"first"
            resp = await pool.request("POST", "/", (), b"2")  # reused -> dropped -> retried
            assert await resp.read() == b"first"
            assert srv.accepts == 2
            assert [r.body for r in srv.requests] == [b"1", b"2", b"2"]
            await pool.close()

    run(main())


def test_fresh_connection_dropped_is_not_retried(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            with pytest.raises(UpstreamReset):
                await pool.request("POST", "/", (), b"1")
            assert srv.accepts == 1
            assert_empty(pool)

    run(main())


def test_idle_connection_closed_by_server_is_dropped(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(ok(b"x"))  # keep-alive promised, then closed while idle

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            assert await (await pool.request("GET", "/", ())).read() == b"x"
            await settle()
            assert_empty(pool)  # the FIN took it out of the idle list
            assert await (await pool.request("GET", "/", ())).read() == b"x"
            assert srv.accepts == 2

    run(main())


def test_idle_timeout_closes_idle_connections(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await keepalive(ok(b"{}"))(srv, r, w)
            srv.closed.set()

        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port, idle_timeout=0.1)
            resps = [await pool.request("GET", "/", ()) for _ in range(3)]
            await asyncio.gather(*[r.read() for r in resps])
            assert pool.idle == 3
            await asyncio.sleep(0.3)
            assert_empty(pool)
            await asyncio.wait_for(srv.closed.wait(), 2)

    run(main())


# -- limits ---------------------------------------------------------------------------


def test_max_connections_queues_waiters_fifo(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (req := await srv.next_request(r)) is not None:
            await srv.gate.wait()
            w.write(ok(req.body))

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port, max_connections=2)
            order: list[bytes] = []

            async def one(i: int) -> None:
                resp = await pool.request("POST", "/", (), b"%d" % i, pool_timeout=10)
                order.append(await resp.read())

            tasks = []
            for i in range(6):
                tasks.append(asyncio.create_task(one(i)))
                await asyncio.sleep(0.01)  # fix the queueing order
            assert (pool.size, pool.in_use, pool.waiting) == (2, 2, 4)
            srv.gate.set()
            await asyncio.gather(*tasks)
            assert srv.max_open == 2 and srv.accepts == 2
            assert order[2:] == [b"2", b"3", b"4", b"5"]
            assert (pool.size, pool.idle, pool.waiting) == (2, 2, 0)
            await pool.close()
            assert_empty(pool)

    run(main())


def test_pool_timeout_and_cancelled_waiter(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while await srv.next_request(r) is not None:
            await srv.gate.wait()
            w.write(ok(b"{}"))

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port, max_connections=1)
            first = asyncio.create_task(pool.request("GET", "/", ()))
            await asyncio.sleep(0.05)
            with pytest.raises(UpstreamTimeout):
                await pool.request("GET", "/", (), pool_timeout=0.05)
            assert pool.waiting == 0
            queued = asyncio.create_task(pool.request("GET", "/", ()))
            await asyncio.sleep(0.01)
            assert pool.waiting == 1
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert pool.waiting == 0
            srv.gate.set()
            assert await (await first).read() == b"{}"
            assert (pool.size, pool.idle, pool.in_use) == (1, 1, 0)
            await pool.close()

    run(main())


def test_pause_reading_bounds_buffer_under_slow_consumer(run: Run[None]) -> None:
    total = 16 * 1024 * 1024
    block = b"z" * 65536

    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        for _ in range(total // len(block)):
            w.write(block)
            await w.drain()
        await srv.wait_eof(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            received = 0
            peak = 0
            async for chunk in resp.iter_chunks(5):
                received += len(chunk)
                await asyncio.sleep(0.002)  # slow downstream
                peak = max(peak, resp.buffered_bytes)
            assert received == total
            assert HIGH_WATER <= peak <= HIGH_WATER + 512 * 1024
            assert (pool.size, pool.idle) == (1, 1)
            # The connection was resumed before going back: it still works.
            await pool.close()

    run(main())


def test_closed_pool_fails_in_flight_and_new_requests(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(chunked()[:-5] + b"1\r\na\r\n")
        await srv.wait_eof(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            await pool.close()
            assert_empty(pool)
            with pytest.raises(UpstreamReset):
                await resp.read()
            with pytest.raises(UpstreamConnectError):
                await pool.request("GET", "/", ())

    run(main())


def test_retire_closes_connections_after_use(run: Run[None]) -> None:
    async def main() -> None:
        async with Server(keepalive(ok(b"{}"))) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            await (await pool.request("GET", "/", ())).read()
            busy = await pool.request("GET", "/", ())
            await (await pool.request("GET", "/", ())).read()
            assert (pool.size, pool.idle) == (2, 1)
            pool.retire()
            assert (pool.size, pool.idle) == (1, 0)
            assert await busy.read() == b"{}"
            assert_empty(pool)

    run(main())


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "c.pem", d / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(crt)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return crt, key


def test_https(run: Run[None], cert: tuple[Path, Path]) -> None:
    crt, key = cert
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(crt, key)

    async def main() -> None:
        async with Server(keepalive(ok(b"secure")), server_ctx) as srv:
            client_ctx = ssl.create_default_context(cafile=str(crt))
            pool = HttpPool("127.0.0.1", srv.port, scheme="https", ssl=client_ctx)
            for _ in range(3):
                assert await (await pool.request("GET", "/", ())).read() == b"secure"
            assert srv.accepts == 1
            await pool.close()
            # Without trusting the certificate the handshake fails: a connect error.
            strict = HttpPool("127.0.0.1", srv.port, tls=True)
            with pytest.raises(UpstreamConnectError):
                await strict.request("GET", "/", ())
            assert_empty(strict)

    run(main())


def test_from_url() -> None:
    p = HttpPool.from_url("https://example.com/v1")
    assert (p._host, p._port, p._ssl is not None) == ("example.com", 443, True)
    p = HttpPool.from_url("http://[::1]:8000")
    assert (p._host, p._port, p._host_line) == ("::1", 8000, b"host: [::1]:8000\r\n")


# -- robustness -----------------------------------------------------------------------


def test_bytes_after_complete_response_close_the_connection(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while await srv.next_request(r) is not None:
            w.write(ok(b"one") + ok(b"unsolicited"))

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            assert resp.status == 200 and resp.headers[-1] == (b"Content-Length", b"3")
            assert await resp.read() == b"one"
            await settle()
            assert_empty(pool)  # never reused with a stray response queued behind

    run(main())


def test_dropped_handle_does_not_leak(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(chunked()[:-5] + b"1\r\na\r\n")
        await srv.wait_eof(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            assert pool.in_use == 1
            del resp
            assert_empty(pool)
            await asyncio.wait_for(srv.closed.wait(), 2)

    run(main())


def test_random_cancellations_keep_the_pool_consistent(run: Run[None]) -> None:
    import random

    rnd = random.Random(1234)

    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (req := await srv.next_request(r)) is not None:
            kind = req.path
            if kind == "/close":
                return
            if kind == "/stall":
                await srv.wait_eof(r)
                return
            if kind == "/slow":
                await asyncio.sleep(0.005)
            if kind == "/stream":
                w.write(chunked()[:-5])
                for _ in range(3):
                    await asyncio.sleep(0.002)
                    w.write(b"2\r\nab\r\n")
                w.write(b"0\r\n\r\n")
            else:
                w.write(ok(b"{}"))
            await w.drain()

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port, max_connections=4)
            outcomes: dict[str, int] = {}

            async def one(path: str) -> None:
                resp = await pool.request(
                    "GET", path, (), first_byte_timeout=0.05, pool_timeout=0.05
                )
                async with resp:
                    async for _ in resp.iter_chunks(0.05):
                        pass

            async def client(i: int) -> None:
                path = rnd.choice(["/ok", "/ok", "/slow", "/stream", "/close", "/stall"])
                task = asyncio.create_task(one(path))
                if rnd.random() < 0.4:
                    await asyncio.sleep(rnd.random() * 0.01)
                    task.cancel()
                try:
                    await task
                    name = "ok"
                except asyncio.CancelledError:
                    name = "cancelled"
                except (UpstreamError, UpstreamTimeout) as e:
                    name = type(e).__name__
                outcomes[name] = outcomes.get(name, 0) + 1
                assert pool.size <= 4

            for _ in range(4):
                await asyncio.gather(*[client(i) for i in range(60)])
            await settle()
            assert pool.in_use == 0 and pool.waiting == 0 and pool.size == pool.idle
            assert outcomes.get("ok", 0) > 20 and outcomes.get("cancelled", 0) > 20
            await pool.close()
            assert_empty(pool)

    run(main())


def test_pooled_connection_found_closing_is_retried(run: Run[None]) -> None:
    async def main() -> None:
        async with Server(keepalive(ok(b"{}"))) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            assert await (await pool.request("GET", "/", ())).read() == b"{}"
            # Closing, but connection_lost has not run yet: the pool still lists it idle.
            transport = pool._idle[-1]._transport
            assert transport is not None
            transport.abort()
            assert pool.idle == 1
            assert await (await pool.request("GET", "/", ())).read() == b"{}"
            assert srv.accepts == 2
            await pool.close()

    run(main())


def test_close_delimited_body_cut_by_reset_is_an_error(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        w.write(b"HTTP/1.0 200 OK\r\n\r\npartial")
        await w.drain()
        await asyncio.sleep(0.05)
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()  # linger 0: RST instead of FIN

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            with pytest.raises(UpstreamReset):
                await resp.read()
            assert_empty(pool)

    run(main())


def test_iterator_resumed_after_release_yields_nothing(run: Run[None]) -> None:
    async def main() -> None:
        async with Server(keepalive(chunked(b"a", b"b"))) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            resp = await pool.request("GET", "/", ())
            it = resp.iter_chunks(5)
            assert await it.__anext__() == b"ab"
            resp.release()  # complete, so the connection goes back to the pool...
            assert pool.idle == 1
            other = await pool.request("GET", "/", ())  # ...and serves another request
            with pytest.raises(StopAsyncIteration):
                await it.__anext__()  # the old iterator must not read other's body
            assert await other.read() == b"ab"
            await pool.close()

    run(main())


def test_short_deadline_armed_after_long_one_fires_on_time(run: Run[None]) -> None:
    async def handler(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.next_request(r)
        await srv.wait_eof(r)

    async def main() -> None:
        async with Server(handler) as srv:
            pool = HttpPool("127.0.0.1", srv.port)
            slow = asyncio.create_task(pool.request("GET", "/", (), first_byte_timeout=30))
            await asyncio.sleep(0.05)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(UpstreamTimeout):
                await pool.request("GET", "/", (), first_byte_timeout=0.1)
            assert 0.09 <= loop.time() - t0 < 1.0
            assert not slow.done() and pool.in_use == 1
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            assert_empty(pool)

    run(main())
