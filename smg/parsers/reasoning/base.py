"""Reasoning parser types and the streaming ``<think>…</think>``-style state machine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal, NamedTuple

from smg.parsers._text import partial_suffix, skip_ws


class ReasoningDelta(NamedTuple):
    """What one ``feed``/``finish`` released."""

    reasoning: str
    content: str


class ReasoningResult(NamedTuple):
    """Non-streaming result."""

    reasoning: str
    content: str


class ReasoningParser(ABC):
    """Streaming reasoning/content splitter for one response; ``parse`` works on a fresh copy.

    ``enable_thinking=False`` makes everything content (the request turned thinking off).
    ``in_reasoning`` says whether the output starts inside the reasoning block because the
    prompt already opened it (None: the family's default).
    """

    def __init__(self, *, enable_thinking: bool = True, in_reasoning: bool | None = None) -> None:
        self.enable_thinking = enable_thinking
        self.in_reasoning = in_reasoning

    @abstractmethod
    def feed(self, text: str) -> ReasoningDelta:
        """Consume more decoded text; release what is no longer ambiguous."""

    @abstractmethod
    def finish(self) -> ReasoningDelta:
        """End of output: release everything still held."""

    def fresh(self) -> ReasoningParser:
        """A new parser with the same configuration and no state."""
        return type(self)(enable_thinking=self.enable_thinking, in_reasoning=self.in_reasoning)

    def parse(self, text: str) -> ReasoningResult:
        """Non-streaming parse of a whole output (same result as any streaming split)."""
        parser = self.fresh()
        a, b = parser.feed(text), parser.finish()
        return ReasoningResult(a.reasoning + b.reasoning, a.content + b.content)


State = Literal["open?", "reasoning", "after", "content"]


class ThinkTagReasoningParser(ReasoningParser):
    """Reasoning between ``start_tag`` and ``end_tag`` at the start of the output.

    The start tag counts only as the first non-space text (later ones are prose);
    spaces after the end tag are dropped; without an end tag, everything after an
    opened block is reasoning.
    """

    start_tag = "<think>"
    end_tag = "</think>"
    starts_in_reasoning = False

    def __init__(self, *, enable_thinking: bool = True, in_reasoning: bool | None = None) -> None:
        super().__init__(enable_thinking=enable_thinking, in_reasoning=in_reasoning)
        self._default = self.starts_in_reasoning if in_reasoning is None else in_reasoning
        self._state: State = "open?" if enable_thinking else "content"
        self._buf = ""

    def feed(self, text: str) -> ReasoningDelta:
        """Consume more decoded text; release what is no longer ambiguous."""
        self._buf += text
        return self._drain(False)

    def finish(self) -> ReasoningDelta:
        """End of output: release everything still held."""
        return self._drain(True)

    def _drain(self, final: bool) -> ReasoningDelta:
        reasoning: list[str] = []
        content: list[str] = []
        buf = self._buf
        while buf:
            state = self._state
            if state == "content":
                content.append(buf)
                buf = ""
            elif state == "reasoning":
                pos = buf.find(self.end_tag)
                if pos != -1:
                    reasoning.append(buf[:pos])
                    buf = buf[pos + len(self.end_tag) :]
                    self._state = "after"
                    continue
                keep = 0 if final else partial_suffix(buf, (self.end_tag,))
                reasoning.append(buf[: len(buf) - keep])
                buf = buf[len(buf) - keep :]
                break
            elif state == "after":
                i = skip_ws(buf, 0)
                if i == len(buf):
                    if final:
                        buf = ""
                    break
                buf = buf[i:]
                self._state = "content"
            else:
                rest = buf[skip_ws(buf, 0) :]
                if rest.startswith(self.start_tag):
                    buf = rest[len(self.start_tag) :]
                    self._state = "reasoning"
                elif not final and self.start_tag.startswith(rest):
                    break
                else:
                    self._state = "reasoning" if self._default else "content"
        self._buf = buf
        return ReasoningDelta("".join(reasoning), "".join(content))
