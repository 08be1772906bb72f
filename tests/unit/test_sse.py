"""SSE decoder: WHATWG parsing rules, and round trips split at arbitrary byte positions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smg.protocol.sse import SseDecoder, SseEvent, encode_event


def decode_all(*chunks: bytes) -> list[SseEvent]:
    dec = SseDecoder()
    out: list[SseEvent] = []
    for c in chunks:
        out += dec.feed(c)
    return out


def test_common_case_one_feed() -> None:
    assert decode_all(b'data: {"a":1}\n\n') == [SseEvent(None, '{"a":1}', None, None)]


def test_two_events_in_one_feed_and_done_marker() -> None:
    evs = decode_all(b"data: a\n\ndata: [DONE]\n\n")
    assert [e.data for e in evs] == ["a", "[DONE]"]


def test_incomplete_event_waits_for_blank_line() -> None:
    dec = SseDecoder()
    assert dec.feed(b"data: a\n") == []
    assert dec.feed(b"data: b\n") == []
    assert dec.feed(b"\n") == [SseEvent(None, "a\nb")]


def test_only_one_leading_space_is_removed() -> None:
    assert decode_all(b"data:  two\n\ndata:none\n\n") == [
        SseEvent(None, " two"),
        SseEvent(None, "none"),
    ]


def test_comments_and_unknown_fields_are_ignored() -> None:
    assert decode_all(b": keep-alive\nfoo: bar\ndata: x\n\n") == [SseEvent(None, "x")]


def test_comment_only_block_dispatches_nothing() -> None:
    assert decode_all(b": ping\n\n") == []


def test_field_without_colon() -> None:
    # "data" alone is a data line with an empty value; two of them join with "\n".
    assert decode_all(b"data\ndata\n\n") == [SseEvent(None, "\n")]
    assert decode_all(b"data\n\n") == [SseEvent(None, "")]


def test_event_id_retry() -> None:
    evs = decode_all(b"event: delta\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\n")
    assert evs == [SseEvent("delta", "x", "7", 1500), SseEvent(None, "y", "7", None)]


def test_invalid_retry_and_id_with_nul_are_ignored() -> None:
    dec = SseDecoder()
    assert dec.feed(b"retry: 1.5\nid: a\0b\ndata: x\n\n") == [SseEvent(None, "x", None, None)]
    assert dec.retry is None and dec.last_event_id is None


def test_empty_event_name_means_default() -> None:
    assert decode_all(b"event:\ndata: x\n\n") == [SseEvent(None, "x")]


def test_event_without_data_is_not_dispatched_and_resets_type() -> None:
    assert decode_all(b"event: a\n\ndata: x\n\n") == [SseEvent(None, "x")]


def test_line_endings_cr_lf_crlf() -> None:
    for sep in (b"\n", b"\r", b"\r\n"):
        body = b"event: e" + sep + b"data: 1" + sep + b"data: 2" + sep + sep
        assert decode_all(body) == [SseEvent("e", "1\n2")], sep


def test_crlf_split_across_feeds_is_one_line_end() -> None:
    dec = SseDecoder()
    assert dec.feed(b"data: a\r") == []
    # This LF belongs to the CR above; it must not count as the blank line.
    assert dec.feed(b"\n") == []
    assert dec.feed(b"\r") == [SseEvent(None, "a")]
    assert dec.feed(b"\ndata: b\r\n\r\n") == [SseEvent(None, "b")]


def test_cr_then_other_data() -> None:
    dec = SseDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\r") == [SseEvent(None, "a")]


def test_multibyte_utf8_split() -> None:
    raw = "data: héllo €\n\n".encode()
    for i in range(len(raw) + 1):
        assert decode_all(raw[:i], raw[i:]) == [SseEvent(None, "héllo €")], i


def test_bom_is_skipped_even_when_split() -> None:
    raw = b"\xef\xbb\xbfdata: x\n\n"
    for i in range(len(raw) + 1):
        assert decode_all(raw[:i], raw[i:]) == [SseEvent(None, "x")], i
    # Only at the very start of the stream; later it is part of a (unknown) field name.
    assert decode_all(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [SseEvent(None, "a")]


def test_invalid_utf8_is_replaced() -> None:
    assert decode_all(b"data: \xff\n\n") == [SseEvent(None, "\ufffd")]


def test_encode_event() -> None:
    assert encode_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_event(b"a\nb", "delta") == b"event: delta\ndata: a\ndata: b\n\n"
    assert encode_event(b"a\r\nb\rc") == b"data: a\ndata: b\ndata: c\n\n"
    with pytest.raises(ValueError):
        encode_event(b"x", "a\nb")


# -- properties -----------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
_names = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n\x00"), min_size=1, max_size=10
)
_event = st.tuples(st.one_of(st.none(), _names), _text)


def _normalise(data: str) -> str:
    return data.replace("\r\n", "\n").replace("\r", "\n")


def _with_ending(raw: bytes, ending: bytes) -> bytes:
    return raw.replace(b"\n", ending) if ending != b"\n" else raw


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(_event, max_size=6),
    ending=st.sampled_from([b"\n", b"\r", b"\r\n"]),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_roundtrip_at_arbitrary_splits(
    events: list[tuple[str | None, str]], ending: bytes, cuts: list[int]
) -> None:
    stream = b"".join(
        _with_ending(encode_event(_normalise(d).encode(), e), ending) for e, d in events
    )
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    got = decode_all(*chunks)
    assert got == [SseEvent(e, _normalise(d)) for e, d in events]


@settings(max_examples=200, deadline=None)
@given(
    blocks=st.lists(
        st.tuples(
            st.one_of(st.none(), _names),
            st.lists(_text.map(_normalise), min_size=1, max_size=3),
            st.one_of(st.none(), _names),
            st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
        ),
        max_size=5,
    ),
    ending=st.sampled_from([b"\n", b"\r", b"\r\n"]),
    data=st.data(),
)
def test_hand_framed_fields_byte_by_byte_and_random(
    blocks: list[tuple[str | None, list[str], str | None, int | None]],
    ending: bytes,
    data: st.DataObject,
) -> None:
    parts: list[bytes] = []
    expected: list[SseEvent] = []
    last_id: str | None = None
    for event, lines, ev_id, retry in blocks:
        parts.append(b": comment" + ending)
        if event is not None:
            parts.append(b"event: " + event.encode() + ending)
        if ev_id is not None:
            parts.append(b"id: " + ev_id.encode() + ending)
            last_id = ev_id
        if retry is not None:
            parts.append(b"retry: %d" % retry + ending)
        joined = "\n".join(lines)
        for line in joined.split("\n"):
            parts.append(b"data: " + line.encode() + ending)
        parts.append(ending)
        expected.append(SseEvent(event, joined, last_id, retry))
    stream = b"".join(parts)
    # Byte by byte: every split position at once, including inside CRLF and UTF-8.
    assert decode_all(*[stream[i : i + 1] for i in range(len(stream))]) == expected
    cut = data.draw(st.integers(min_value=0, max_value=len(stream)))
    assert decode_all(stream[:cut], stream[cut:]) == expected
