"""Streams both ways, cut at random byte positions: tool arguments are never dropped or repeated.

OpenAI chunks → Anthropic events (the ``/v1/messages`` writer) is checked with the
``anthropic`` SDK's own event accumulator; Anthropic events → OpenAI chunks (the
``anthropic`` cluster protocol) by accumulating deltas the way the ``openai`` SDK does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from hypothesis import given, settings
from hypothesis import strategies as st

from smg.errors import UpstreamError, UpstreamStatus
from smg.protocol.anthropic.codec import chunks_to_events
from smg.protocol.anthropic.stream_in import DONE, MessagesToChunks
from smg.protocol.request import GatewayRequest
from smg.protocol.sse import SseDecoder

# Text that stresses JSON and UTF-8 framing: quotes, escapes, braces, emoji, CJK.
_TEXT = st.text(
    alphabet=st.sampled_from(list('ab {}[]":,\\\n\tÄé中文🌍xyz0123')), min_size=0, max_size=24
)
_ARGS = st.dictionaries(
    st.text(alphabet="abcxyz_", min_size=1, max_size=6),
    st.one_of(_TEXT, st.integers(-5, 10**6), st.booleans(), st.lists(_TEXT, max_size=3)),
    max_size=4,
)
_CALLS = st.lists(
    st.tuples(st.sampled_from(["get_weather", "get_time", "search"]), _ARGS), max_size=3
)


def _cuts(draw: st.DrawFn, text: str) -> list[str]:
    """``text`` split at random positions (empty pieces allowed)."""
    points = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
    pieces, last = [], 0
    for p in points:
        pieces.append(text[last:p])
        last = p
    pieces.append(text[last:])
    return pieces


def _split_bytes(draw: st.DrawFn, data: bytes) -> list[bytes]:
    points = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=30))))
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return [b for b in out if b]


def _request(stream: bool = True) -> GatewayRequest:
    return GatewayRequest(
        "POST", "/v1/messages", "chat", {}, b"", {}, "claude-x", stream, dialect="anthropic"
    )


async def _aiter(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for p in pieces:
        yield p


def _translate_out(pieces: list[bytes]) -> bytes:
    async def run() -> bytes:
        return b"".join([c async for c in chunks_to_events(_request(), _aiter(pieces))])

    return asyncio.run(run())


def _openai_sse(draw: st.DrawFn, reasoning: str, text: str, calls: list[Any]) -> bytes:
    """An OpenAI chunk stream as vLLM / OpenAI send it, deltas cut at random."""
    chunks: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    chunks += [{"reasoning_content": p} for p in _cuts(draw, reasoning) if p]
    chunks += [{"content": p} for p in _cuts(draw, text) if p]
    for i, (name, args) in enumerate(calls):
        raw = orjson.dumps(args).decode()
        pieces = _cuts(draw, raw)
        if draw(st.booleans()):
            # id first, the name in a later delta, arguments before the name.
            chunks.append({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function"}]})
            chunks.append({"tool_calls": [{"index": i, "function": {"arguments": pieces[0]}}]})
            chunks.append({"tool_calls": [{"index": i, "function": {"name": name}}]})
        else:
            head = {"name": name, "arguments": pieces[0]}
            chunks.append(
                {
                    "tool_calls": [
                        {"index": i, "id": f"call_{i}", "type": "function", "function": head}
                    ]
                }
            )
        chunks += [{"tool_calls": [{"index": i, "function": {"arguments": p}}]} for p in pieces[1:]]
    finish = "tool_calls" if calls else "stop"
    out = b""
    for delta in chunks:
        doc = {
            "id": "chatcmpl-7",
            "object": "chat.completion.chunk",
            "model": "qwen",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        out += b"data: " + orjson.dumps(doc) + b"\n\n"
    doc = {"id": "chatcmpl-7", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    out += b"data: " + orjson.dumps(doc) + b"\n\n"
    usage = {
        "prompt_tokens": 40,
        "completion_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 8},
    }
    out += b"data: " + orjson.dumps({"id": "chatcmpl-7", "choices": [], "usage": usage}) + b"\n\n"
    return out + DONE


def _events(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    return [(ev.event, orjson.loads(ev.data)) for ev in SseDecoder().feed(data)]


def _check_sequence(events: list[tuple[str | None, dict[str, Any]]]) -> None:
    """The Messages API's event grammar: names match types, one block open at a time."""
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    open_index: int | None = None
    expected = 0
    for name, doc in events:
        assert doc["type"] == name
        if name == "content_block_start":
            assert open_index is None and doc["index"] == expected
            open_index = doc["index"]
        elif name == "content_block_delta":
            assert doc["index"] == open_index
        elif name == "content_block_stop":
            assert doc["index"] == open_index
            open_index, expected = None, expected + 1
    assert open_index is None


@settings(max_examples=100, deadline=None)
@given(data=st.data(), reasoning=_TEXT, text=_TEXT, calls=_CALLS)
def test_openai_stream_to_anthropic_events_is_exact_for_any_chunking(
    data: st.DataObject, reasoning: str, text: str, calls: list[Any]
) -> None:
    sse = _openai_sse(data.draw, reasoning, text, calls)
    out = _translate_out(_split_bytes(data.draw, sse))
    events = _events(out)
    _check_sequence(events)
    # Each tool_use block's partial_json concatenates to exactly the arguments sent.
    partial: dict[int, str] = {}
    for name, doc in events:
        if name == "content_block_delta" and doc["delta"]["type"] == "input_json_delta":
            partial[doc["index"]] = partial.get(doc["index"], "") + doc["delta"]["partial_json"]
    snap: Any = None
    bufs: dict[int, bytes] = {}
    for _, doc in events:
        snap = accumulate_event(event=doc, current_snapshot=snap, json_bufs=bufs)  # type: ignore[arg-type]
    blocks = [b.to_dict() for b in snap.content]
    want: list[dict[str, Any]] = []
    if reasoning:
        want.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if text:
        want.append({"type": "text", "text": text})
    for i, (name, args) in enumerate(calls):
        want.append({"type": "tool_use", "id": f"call_{i}", "name": name, "input": args})
    assert blocks == want
    tool_indexes = [i for i, b in enumerate(want) if b["type"] == "tool_use"]
    assert [partial.get(i, "") for i in tool_indexes] == [
        orjson.dumps(args).decode() for _, args in calls
    ]
    assert snap.stop_reason == ("tool_use" if calls else "end_turn")
    assert (snap.usage.input_tokens, snap.usage.output_tokens) == (32, 12)
    assert snap.usage.cache_read_input_tokens == 8


def _anthropic_sse(draw: st.DrawFn, reasoning: str, text: str, calls: list[Any]) -> bytes:
    def ev(kind: str, **doc: Any) -> bytes:
        return (
            b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **doc}) + b"\n\n"
        )

    msg = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "usage": {
            "input_tokens": 20,
            "output_tokens": 1,
            "cache_read_input_tokens": 5,
            "cache_creation_input_tokens": 3,
        },
    }
    out = ev("message_start", message=msg) + ev("ping")
    index = 0
    if reasoning:
        out += ev(
            "content_block_start",
            index=index,
            content_block={"type": "thinking", "thinking": "", "signature": ""},
        )
        for p in _cuts(draw, reasoning):
            out += ev(
                "content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": p}
            )
        out += ev(
            "content_block_delta", index=index, delta={"type": "signature_delta", "signature": "x"}
        )
        out += ev("content_block_stop", index=index)
        index += 1
    if text:
        out += ev("content_block_start", index=index, content_block={"type": "text", "text": ""})
        for p in _cuts(draw, text):
            out += ev("content_block_delta", index=index, delta={"type": "text_delta", "text": p})
        out += ev("content_block_stop", index=index)
        index += 1
    for i, (name, args) in enumerate(calls):
        block = {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {}}
        out += ev("content_block_start", index=index, content_block=block)
        for p in _cuts(draw, orjson.dumps(args).decode()):
            out += ev(
                "content_block_delta",
                index=index,
                delta={"type": "input_json_delta", "partial_json": p},
            )
        out += ev("content_block_stop", index=index)
        index += 1
    stop = "tool_use" if calls else "end_turn"
    out += ev(
        "message_delta",
        delta={"stop_reason": stop, "stop_sequence": None},
        usage={"output_tokens": 15},
    )
    return out + ev("message_stop")


@settings(max_examples=100, deadline=None)
@given(data=st.data(), reasoning=_TEXT, text=_TEXT, calls=_CALLS)
def test_anthropic_events_to_openai_chunks_is_exact_for_any_chunking(
    data: st.DataObject, reasoning: str, text: str, calls: list[Any]
) -> None:
    sse = _anthropic_sse(data.draw, reasoning, text, calls)
    tr = MessagesToChunks(include_usage=True)
    decoder = SseDecoder()
    out = b"".join(
        tr.feed(ev.data) for piece in _split_bytes(data.draw, sse) for ev in decoder.feed(piece)
    )
    assert tr.done and out.endswith(DONE)
    content = thinking = ""
    tools: dict[int, dict[str, str]] = {}
    finish, usage = None, None
    for ev in SseDecoder().feed(out):
        if ev.data == "[DONE]":
            continue
        doc = orjson.loads(ev.data)
        assert doc["object"] == "chat.completion.chunk" and doc["id"] == "msg_1"
        usage = doc.get("usage") or usage
        for c in doc["choices"]:
            d = c["delta"]
            content += d.get("content") or ""
            thinking += d.get("reasoning_content") or ""
            for tc in d.get("tool_calls") or ():
                slot = tools.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] += tc.get("id") or ""
                slot["name"] += (tc.get("function") or {}).get("name") or ""
                slot["arguments"] += (tc.get("function") or {}).get("arguments") or ""
            finish = c["finish_reason"] or finish
    assert content == text and thinking == reasoning
    assert [tools[i] for i in sorted(tools)] == [
        {"id": f"toolu_{i}", "name": name, "arguments": orjson.dumps(args).decode()}
        for i, (name, args) in enumerate(calls)
    ]
    assert finish == ("tool_calls" if calls else "stop")
    assert usage is not None
    assert usage["prompt_tokens"] == 28 and usage["completion_tokens"] == 15
    assert usage["prompt_tokens_details"] == {"cached_tokens": 5}


def test_an_error_event_raises_an_anthropic_shaped_upstream_status() -> None:
    tr = MessagesToChunks(include_usage=False)
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    with pytest.raises(UpstreamStatus) as ei:
        tr.feed(body)
    assert ei.value.status == 529 and ei.value.dialect == "anthropic" and ei.value.body == body
    assert ei.value.retryable


def test_interleaved_tool_calls_end_the_stream_with_an_error_not_a_wrong_answer() -> None:
    def chunk(tc: dict[str, Any]) -> bytes:
        doc = {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [tc]}}]}
        return b"data: " + orjson.dumps(doc) + b"\n\n"

    pieces = [
        chunk({"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}),
        chunk({"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}),
        chunk({"index": 0, "function": {"arguments": "}"}}),
    ]
    with pytest.raises(UpstreamError):
        _translate_out(pieces)


def test_an_openai_error_chunk_becomes_an_upstream_error() -> None:
    pieces = [b'data: {"error": {"message": "engine died", "type": "server_error"}}\n\n']
    with pytest.raises(UpstreamStatus) as ei:
        _translate_out(pieces)
    assert ei.value.dialect == "openai" and b"engine died" in ei.value.body


def test_a_stream_that_ends_without_done_is_still_closed() -> None:
    doc = {
        "id": "x",
        "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "length"}],
    }
    out = _translate_out([b"data: " + orjson.dumps(doc) + b"\n\n"])
    names = [name for name, _ in _events(out)]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert _events(out)[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_what_came_before_an_error_in_the_same_piece_is_still_delivered() -> None:
    content = {"id": "x", "choices": [{"index": 0, "delta": {"content": "partial"}}]}
    error = {"error": {"message": "engine died", "type": "server_error"}}
    piece = b"data: " + orjson.dumps(content) + b"\n\ndata: " + orjson.dumps(error) + b"\n\n"
    got: list[bytes] = []

    async def run() -> None:
        async for out in chunks_to_events(_request(), _aiter([piece])):
            got.append(out)

    with pytest.raises(UpstreamStatus):
        asyncio.run(run())
    deltas = [d for n, d in _events(b"".join(got)) if n == "content_block_delta"]
    assert [d["delta"]["text"] for d in deltas] == ["partial"]
