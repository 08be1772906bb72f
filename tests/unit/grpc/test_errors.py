"""gRPC status codes → typed gateway errors, and Abort when a stream is cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import orjson
import pytest

from smg.errors import (
    UpstreamConnectError,
    UpstreamReset,
    UpstreamStatus,
    UpstreamTimeout,
)
from smg.routing.retry import failure_class
from smg.upstreams.grpc.channel import target_of
from smg.upstreams.grpc.client import GenerateStream
from smg.upstreams.grpc.errors import map_status
from smg.upstreams.grpc.types import GenerateChunk


def test_unavailable_is_a_retryable_local_connect_failure() -> None:
    err = map_status(grpc.StatusCode.UNAVAILABLE, "connection refused")
    assert isinstance(err, UpstreamConnectError)
    assert err.retryable and err.local_origin and failure_class(err) == "connect_failure"


def test_deadline_and_cancel() -> None:
    assert isinstance(map_status(grpc.StatusCode.DEADLINE_EXCEEDED, ""), UpstreamTimeout)
    assert isinstance(map_status(grpc.StatusCode.CANCELLED, ""), UpstreamReset)


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, True),
        (grpc.StatusCode.INVALID_ARGUMENT, 400, False),
        (grpc.StatusCode.OUT_OF_RANGE, 400, False),
        (grpc.StatusCode.NOT_FOUND, 404, False),
        (grpc.StatusCode.UNIMPLEMENTED, 501, True),
        (grpc.StatusCode.INTERNAL, 500, True),
        (grpc.StatusCode.UNKNOWN, 500, True),
    ],
)
def test_engine_answers_become_statuses(
    code: grpc.StatusCode, status: int, retryable: bool
) -> None:
    err = map_status(code, "details here")
    assert isinstance(err, UpstreamStatus)
    assert (err.status, err.retryable, err.local_origin) == (status, retryable, False)
    body = orjson.loads(err.body)
    assert body["error"]["message"] == "details here" and err.content_type == "application/json"


def test_target_of() -> None:
    assert target_of("grpc://10.0.0.1:30001") == "10.0.0.1:30001"
    assert target_of("grpc://[::1]:5/x") == "[::1]:5"


class FakeCall:
    """A grpc.aio streaming call that yields given messages, then blocks."""

    def __init__(self, msgs: list[Any]) -> None:
        self.msgs = list(msgs)
        self.cancelled = False

    async def read(self) -> Any:
        if self.msgs:
            return self.msgs.pop(0)
        await asyncio.Event().wait()

    def cancel(self) -> bool:
        self.cancelled = True
        return True


def _stream(call: FakeCall, aborted: list[str], n: int = 1) -> GenerateStream:
    async def abort() -> None:
        aborted.append("rid")

    return GenerateStream(call, lambda m: [m], abort, n)


def test_closing_an_unfinished_stream_cancels_and_aborts() -> None:
    async def run() -> tuple[FakeCall, list[str]]:
        aborted: list[str] = []
        call = FakeCall([GenerateChunk(token_ids=[1])])
        s = _stream(call, aborted)
        assert (await anext(s)).token_ids == [1]
        await s.aclose()
        await asyncio.sleep(0)
        return call, aborted

    call, aborted = asyncio.run(run())
    assert call.cancelled and aborted == ["rid"]


def test_a_cancelled_reader_aborts() -> None:
    async def run() -> tuple[FakeCall, list[str]]:
        aborted: list[str] = []
        call = FakeCall([])
        s = _stream(call, aborted)
        task = asyncio.ensure_future(anext(s))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return call, aborted

    call, aborted = asyncio.run(run())
    assert call.cancelled and aborted == ["rid"]


def test_a_finished_stream_is_not_aborted() -> None:
    async def run() -> tuple[FakeCall, list[str], list[GenerateChunk]]:
        aborted: list[str] = []
        call = FakeCall([GenerateChunk(token_ids=[1]), GenerateChunk(finish_reason="stop")])
        s = _stream(call, aborted)
        got = [c async for c in s]
        await s.aclose()
        await asyncio.sleep(0)
        return call, aborted, got

    call, aborted, got = asyncio.run(run())
    assert len(got) == 2 and not call.cancelled and aborted == []


def test_eof_before_the_finish_is_a_reset() -> None:
    async def run() -> None:
        s = _stream(FakeCall([grpc.aio.EOF]), [])
        with pytest.raises(UpstreamReset):
            await anext(s)

    asyncio.run(run())
