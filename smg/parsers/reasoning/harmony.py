"""gpt-oss (harmony): ``analysis`` bodies are reasoning, ``final`` bodies content.

Messages addressed to a recipient (tool calls) pass through with their markup, as
content, so the harmony tool parser that runs next still sees them.
"""

from __future__ import annotations

from typing import Literal

from smg.parsers.harmony import HarmonyScanner
from smg.parsers.reasoning.base import ReasoningDelta, ReasoningParser


class HarmonyReasoningParser(ReasoningParser):
    """Splits harmony channels into reasoning and content."""

    def __init__(self, *, enable_thinking: bool = True, in_reasoning: bool | None = None) -> None:
        super().__init__(enable_thinking=enable_thinking, in_reasoning=in_reasoning)
        self._scanner = HarmonyScanner()
        self._mode: Literal["reasoning", "content", "raw"] = "content"

    def feed(self, text: str) -> ReasoningDelta:
        """Consume more decoded text; release what is no longer ambiguous."""
        return self._apply(text, False)

    def finish(self) -> ReasoningDelta:
        """End of output: release everything still held."""
        return self._apply("", True)

    def _apply(self, text: str, final: bool) -> ReasoningDelta:
        reasoning: list[str] = []
        content: list[str] = []
        for ev in self._scanner.feed(text, final):
            if ev.kind == "text":
                content.append(ev.text)
            elif ev.kind == "open":
                if ev.recipient is not None and ev.recipient != "assistant":
                    self._mode = "raw"
                    content.append(ev.text)
                elif ev.channel == "analysis":
                    self._mode = "reasoning"
                else:
                    self._mode = "content"
            elif ev.kind == "body":
                (reasoning if self._mode == "reasoning" else content).append(ev.text)
            else:
                if self._mode == "raw":
                    content.append(ev.text)
                self._mode = "content"
        return ReasoningDelta("".join(reasoning), "".join(content))
