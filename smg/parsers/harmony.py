"""Streaming splitter for OpenAI harmony output (gpt-oss), shared by its tool and reasoning parsers.

A message is ``[<|start|>ROLE [to=R]]<|channel|>CHANNEL [to=R] [<|constrain|>json]<|message|>BODY``
ended by ``<|end|>``, ``<|call|>`` or ``<|return|>`` (or the end of output). Special tokens must be
kept by the detokenizer (``skip_special_tokens=False``) for this to be parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from smg.parsers._text import find_first, partial_suffix

START = "<|start|>"
CHANNEL = "<|channel|>"
MESSAGE = "<|message|>"
ENDS = ("<|end|>", "<|call|>", "<|return|>")
OPENERS = (START, CHANNEL)
_RECIPIENT = re.compile(r"to=([^\s<]+)")
_CHANNEL = re.compile(re.escape(CHANNEL) + r"\s*([A-Za-z_]+)")

Kind = Literal["text", "open", "body", "close"]


@dataclass(frozen=True, slots=True)
class Event:
    """``text``: outside any message; ``open``: a header; ``body``; ``close``: its end token."""

    kind: Kind
    text: str
    channel: str = ""
    recipient: str | None = None


class HarmonyScanner:
    """Turns harmony text, chunked anyhow, into the same event texts in order."""

    def __init__(self) -> None:
        self._buf = ""
        self._state: Literal["outside", "header", "body"] = "outside"

    def feed(self, text: str, final: bool = False) -> list[Event]:
        """Scan more text; with ``final`` flush everything."""
        buf = self._buf + text
        events: list[Event] = []
        while buf:
            if self._state == "outside":
                pos, _ = find_first(buf, OPENERS)
                if pos == -1:
                    keep = 0 if final else partial_suffix(buf, OPENERS)
                    if len(buf) > keep:
                        events.append(Event("text", buf[: len(buf) - keep]))
                        buf = buf[len(buf) - keep :]
                    break
                if pos:
                    events.append(Event("text", buf[:pos]))
                buf = buf[pos:]
                self._state = "header"
            elif self._state == "header":
                m = buf.find(MESSAGE)
                if m == -1:
                    if final:
                        # A header that never completed is not a message: plain text.
                        events.append(Event("text", buf))
                        buf = ""
                    break
                header = buf[: m + len(MESSAGE)]
                channel = _CHANNEL.search(header)
                recipient = _RECIPIENT.search(header)
                events.append(
                    Event(
                        "open",
                        header,
                        channel.group(1) if channel else "",
                        recipient.group(1) if recipient else None,
                    )
                )
                buf = buf[len(header) :]
                self._state = "body"
            else:
                pos, marker = find_first(buf, ENDS)
                if pos == -1:
                    keep = 0 if final else partial_suffix(buf, ENDS)
                    if len(buf) > keep:
                        events.append(Event("body", buf[: len(buf) - keep]))
                        buf = buf[len(buf) - keep :]
                    break
                if pos:
                    events.append(Event("body", buf[:pos]))
                events.append(Event("close", marker))
                buf = buf[pos + len(marker) :]
                self._state = "outside"
        if final and self._state == "body":
            events.append(Event("close", ""))
            self._state = "outside"
        self._buf = buf
        return events
