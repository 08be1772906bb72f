"""Incremental Server-Sent Events decoding and encoding (WHATWG event-stream rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["SseDecoder", "SseEvent", "encode_event"]

_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event.

    ``event`` is None for the default ("message") type. ``id`` is the stream's last
    event ID at dispatch time (it persists across events, as the spec says), None if
    no ``id`` field was seen yet. ``retry`` is the ``retry`` field given in this
    event's own block, if any.
    """

    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None


# The frozen dataclass __init__ goes through object.__setattr__ per field (~1.5 µs an
# event); filling the slots through their descriptors builds the same object in half.
_new_event = object.__new__
_set_event, _set_data, _set_id, _set_retry = (
    SseEvent.__dict__[name].__set__ for name in ("event", "data", "id", "retry")
)


class SseDecoder:
    """Feed bytes as they arrive, get back the events they complete."""

    __slots__ = ("_cr", "_data", "_event", "_last_id", "_reconnect", "_retry", "_start", "_tail")

    def __init__(self) -> None:
        self._tail = b""  # an incomplete line (never holds a line terminator)
        self._cr = False  # the last chunk ended in CR: a leading LF next is its CRLF partner
        self._start = True  # a UTF-8 BOM may still have to be skipped
        self._data: list[bytes] = []
        self._event = b""
        self._retry: int | None = None
        self._last_id: str | None = None
        self._reconnect: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The last ``id`` field value of the stream."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The reconnection time (ms) the server asked for most recently."""
        return self._reconnect

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Consume ``chunk``; return the events completed by it (possibly none)."""
        buf = self._tail + chunk if self._tail else chunk
        if self._start:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._tail = buf
                return []
            self._start = False
            if buf.startswith(_BOM):
                buf = buf[3:]
        if not buf:
            self._tail = b""
            return []
        if self._cr:
            self._cr = False
            if buf[0] == 0x0A:
                buf = buf[1:]
        if b"\r" in buf:
            # Rare in practice; normalise so a single split serves all three endings.
            self._cr = buf[-1] == 0x0D
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._tail = lines.pop()
        if not lines:
            return []
        events: list[SseEvent] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(self._dispatch())
                else:
                    self._event = b""
                    self._retry = None
            elif line.startswith(b"data:"):
                if line.startswith(b"data: "):
                    data.append(line[6:])
                else:
                    data.append(line[5:])
            elif line[0] != 0x3A:  # lines starting with ':' are comments
                self._field(line)
        return events

    def _field(self, line: bytes) -> None:
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            self._retry = self._reconnect = int(value)

    def _dispatch(self) -> SseEvent:
        data = self._data
        raw = data[0] if len(data) == 1 else b"\n".join(data)
        ev = _new_event(SseEvent)
        _set_event(ev, self._event.decode("utf-8", "replace") if self._event else None)
        _set_data(ev, raw.decode("utf-8", "replace"))
        _set_id(ev, self._last_id)
        _set_retry(ev, self._retry)
        data.clear()
        self._event = b""
        self._retry = None
        return ev


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """Frame ``data`` as one event; every line of it becomes a ``data:`` line."""
    head = b""
    if event:
        if "\n" in event or "\r" in event:
            raise ValueError("an SSE event name cannot contain line breaks")
        head = b"event: " + event.encode() + b"\n"
    if b"\n" not in data and b"\r" not in data:
        return head + b"data: " + data + b"\n\n"
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return head + b"".join([b"data: " + line + b"\n" for line in lines]) + b"\n"
