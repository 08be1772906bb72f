"""Reasoning first, then tool calls on the content: OpenAI-shaped deltas for one choice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smg.parsers.reasoning import ReasoningParser, create_reasoning_parser
from smg.parsers.tool import ToolParser, create_tool_parser
from smg.parsers.tool.base import StreamDelta, ToolCall, ToolCallDelta, assemble


@dataclass(slots=True)
class ChatDelta:
    """One streamed step: ``delta.content``, ``delta.reasoning_content``, ``delta.tool_calls``."""

    content: str = ""
    reasoning_content: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.content or self.reasoning_content or self.tool_calls)

    def to_openai(self) -> dict[str, Any]:
        """The ``choices[i].delta`` object (only non-empty fields)."""
        out: dict[str, Any] = {}
        if self.reasoning_content:
            out["reasoning_content"] = self.reasoning_content
        if self.content:
            out["content"] = self.content
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "index": c.index,
                    **({"id": c.id, "type": "function"} if c.id is not None else {}),
                    "function": {
                        **({"name": c.name} if c.name is not None else {}),
                        "arguments": c.arguments,
                    },
                }
                for c in self.tool_calls
            ]
        return out


@dataclass(slots=True)
class ChatResult:
    """Non-streaming ``choices[i].message`` parts."""

    content: str
    reasoning_content: str
    tool_calls: list[ToolCall]

    def to_openai(self) -> dict[str, Any]:
        """The ``choices[i].message`` object (``content`` is None when empty)."""
        out: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.reasoning_content:
            out["reasoning_content"] = self.reasoning_content
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        return out


class OutputParser:
    """Chains an optional reasoning parser and an optional tool-call parser."""

    def __init__(self, reasoning: ReasoningParser | None, tools: ToolParser | None) -> None:
        self.reasoning = reasoning
        self.tools = tools

    def feed(self, text: str) -> ChatDelta:
        """Consume more decoded text."""
        return self._step(text, False)

    def finish(self) -> ChatDelta:
        """End of output: release everything still held."""
        return self._step("", True)

    def _step(self, text: str, final: bool) -> ChatDelta:
        reasoning = ""
        content = text
        if self.reasoning is not None:
            reasoning, content = self.reasoning.finish() if final else self.reasoning.feed(text)
            if final and text:
                raise ValueError("finish() takes no text")
        if self.tools is None:
            return ChatDelta(content, reasoning)
        tool_delta = self.tools.feed(content) if content else StreamDelta()
        if final:
            tail = self.tools.finish()
            tool_delta = StreamDelta(
                tool_delta.content + tail.content, tool_delta.calls + tail.calls
            )
        return ChatDelta(tool_delta.content, reasoning, tool_delta.calls)

    def parse(self, text: str) -> ChatResult:
        """Non-streaming parse (equal to any streamed split of ``text``)."""
        reasoning = self.reasoning.fresh() if self.reasoning is not None else None
        tools = self.tools.fresh() if self.tools is not None else None
        parser = OutputParser(reasoning, tools)
        first, last = parser.feed(text), parser.finish()
        folded = assemble(
            [
                StreamDelta(first.content, first.tool_calls),
                StreamDelta(last.content, last.tool_calls),
            ]
        )
        return ChatResult(
            folded.content, first.reasoning_content + last.reasoning_content, folded.calls
        )


def create_output_parser(
    model: str = "",
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_parser: str | None = None,
    reasoning_parser: str | None = None,
    id_seed: str = "",
    enable_thinking: bool = True,
    in_reasoning: bool | None = None,
    parse_tools: bool = True,
) -> OutputParser:
    """The pipeline for ``model`` (parser names override auto-selection).

    ``parse_tools=False`` (e.g. the request has no ``tools``) skips tool-call parsing.
    """
    reasoning = create_reasoning_parser(
        reasoning_parser, model=model, enable_thinking=enable_thinking, in_reasoning=in_reasoning
    )
    tool = (
        create_tool_parser(tool_parser, model=model, tools=tools, id_seed=id_seed)
        if parse_tools
        else None
    )
    return OutputParser(reasoning, tool)
