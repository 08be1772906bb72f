"""gpt-oss (harmony): calls are ``commentary to=functions.NAME … <|message|>{json}<|call|>``.

``final`` and recipient-less ``commentary`` bodies are content; ``analysis`` bodies are reasoning
and are dropped here (the harmony reasoning parser, run first, turns them into reasoning).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from smg.parsers.harmony import Event, HarmonyScanner
from smg.parsers.tool.base import StreamDelta, ToolParser, UnknownTool, load_object


class HarmonyToolParser(ToolParser):
    """Function calls from harmony messages; the other channels become content."""

    def __init__(
        self,
        tools: Sequence[Mapping[str, Any]] | None = None,
        *,
        id_seed: str = "",
        unknown_tool: UnknownTool = "content",
    ) -> None:
        super().__init__(tools, id_seed=id_seed, unknown_tool=unknown_tool)
        self._scanner = HarmonyScanner()
        self._mode: Literal["content", "drop", "call"] = "content"
        self._name = ""
        self._raw: list[str] = []

    def feed(self, text: str) -> StreamDelta:
        """Consume more decoded text; release what is no longer ambiguous."""
        return self._apply(self._scanner.feed(text))

    def finish(self) -> StreamDelta:
        """End of output: release everything still held."""
        return self._apply(self._scanner.feed("", final=True))

    def _apply(self, events: list[Event]) -> StreamDelta:
        out = StreamDelta()
        content: list[str] = []
        for ev in events:
            if ev.kind == "text":
                content.append(ev.text)
            elif ev.kind == "open":
                if ev.recipient is not None and ev.recipient != "assistant":
                    self._mode = "call"
                    self._name = ev.recipient.removeprefix("functions.")
                    self._raw = [ev.text]
                else:
                    self._mode = "drop" if ev.channel == "analysis" else "content"
            elif ev.kind == "body":
                if self._mode == "content":
                    content.append(ev.text)
                elif self._mode == "call":
                    self._raw.append(ev.text)
            else:
                if self._mode == "call":
                    body = "".join(self._raw[1:])
                    args = load_object(body) if body.strip() else {}
                    deltas = None if args is None else self._emit([(self._name, args)])
                    if deltas is None:
                        content.append("".join(self._raw) + ev.text)
                    else:
                        out.calls.extend(deltas)
                self._mode = "content"
                self._raw = []
        out.content = "".join(content)
        return out
