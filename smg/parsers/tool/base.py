"""Tool-call parser types and the chunking-invariant streaming driver shared by families."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from smg.parsers._text import find_first, partial_suffix, skip_ws

UnknownTool = Literal["content", "call"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One complete call; ``arguments`` is JSON text of an object."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """OpenAI streaming fragment: the first for an index carries id and name."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(slots=True)
class StreamDelta:
    """What one ``feed``/``finish`` released: plain content and call fragments."""

    content: str = ""
    calls: list[ToolCallDelta] = field(default_factory=list)


@dataclass(slots=True)
class ToolParseResult:
    """Non-streaming result: content with the calls taken out, and the calls."""

    content: str
    calls: list[ToolCall]


@dataclass(frozen=True, slots=True)
class Block:
    """A block parser's verdict: ``consumed`` chars, and calls (None means malformed)."""

    consumed: int
    calls: list[tuple[str, Any]] | None


def tool_schemas(tools: Sequence[Mapping[str, Any]] | None) -> dict[str, Mapping[str, Any]]:
    """Function name → JSON schema of its parameters, from an OpenAI ``tools`` list."""
    out: dict[str, Mapping[str, Any]] = {}
    for tool in tools or ():
        fn = tool.get("function", tool)
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            out[fn["name"]] = params if isinstance(params, Mapping) else {}
    return out


def call_id(seed: str, index: int) -> str:
    """Deterministic id for call ``index`` of the request seeded by ``seed``."""
    digest = hashlib.sha256(f"{seed}\x00{index}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def load_object(text: str) -> dict[str, Any] | None:
    """``text`` decoded as a JSON object, or None when it is not one."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


class ToolParser(ABC):
    """Streaming tool-call parser for one response; ``parse`` works on a fresh copy."""

    def __init__(
        self,
        tools: Sequence[Mapping[str, Any]] | None = None,
        *,
        id_seed: str = "",
        unknown_tool: UnknownTool = "content",
    ) -> None:
        self._tools_arg = tools
        # None means "no tools given": names are then not checked.
        self.schemas: dict[str, Mapping[str, Any]] | None = (
            None if tools is None else tool_schemas(tools)
        )
        self.id_seed = id_seed
        self.unknown_tool: UnknownTool = unknown_tool
        self._n_calls = 0

    @abstractmethod
    def feed(self, text: str) -> StreamDelta:
        """Consume more decoded text; release what is no longer ambiguous."""

    @abstractmethod
    def finish(self) -> StreamDelta:
        """End of output: release everything still held."""

    def fresh(self) -> ToolParser:
        """A new parser with the same configuration and no state."""
        return type(self)(self._tools_arg, id_seed=self.id_seed, unknown_tool=self.unknown_tool)

    def parse(self, text: str) -> ToolParseResult:
        """Non-streaming parse of a whole output (same result as any streaming split)."""
        parser = self.fresh()
        first, last = parser.feed(text), parser.finish()
        return assemble([first, last])

    def schema_for(self, name: str) -> Mapping[str, Any]:
        """Parameters schema of ``name`` (empty when unknown)."""
        return (self.schemas or {}).get(name, {})

    def _known(self, name: str) -> bool:
        return self.schemas is None or self.unknown_tool == "call" or name in self.schemas

    def _emit(self, calls: list[tuple[str, Any]] | None) -> list[ToolCallDelta] | None:
        """Deltas for a block's calls, or None when the block must degrade to content."""
        if not calls:
            return None
        deltas: list[ToolCallDelta] = []
        for name, args in calls:
            if not isinstance(name, str) or not name or not isinstance(args, dict):
                return None
            if not self._known(name):
                return None
            try:
                text = json.dumps(args, ensure_ascii=False)
            except (TypeError, ValueError):
                return None
            index = self._n_calls + len(deltas)
            deltas.append(ToolCallDelta(index, call_id(self.id_seed, index), name, text))
        self._n_calls += len(deltas)
        return deltas


def assemble(deltas: Sequence[StreamDelta]) -> ToolParseResult:
    """Fold streamed deltas into the non-streaming shape."""
    content: list[str] = []
    calls: dict[int, list[str]] = {}
    heads: dict[int, tuple[str, str]] = {}
    for delta in deltas:
        content.append(delta.content)
        for c in delta.calls:
            if c.id is not None and c.name is not None:
                heads[c.index] = (c.id, c.name)
            calls.setdefault(c.index, []).append(c.arguments)
    out = [ToolCall(heads[i][0], heads[i][1], "".join(calls[i])) for i in sorted(calls)]
    return ToolParseResult("".join(content), out)


class BlockToolParser(ToolParser):
    """Content with call blocks opened by markers; subclasses parse one block.

    Whitespace next to an accepted block is dropped, so it is held back until
    the next non-space character decides; any suffix that could still become a
    start marker is held back too, and nothing else.
    """

    start_markers: tuple[str, ...] = ()
    # Characters that open a block only at the very start of the output (after spaces).
    lead_chars: str = ""

    def __init__(
        self,
        tools: Sequence[Mapping[str, Any]] | None = None,
        *,
        id_seed: str = "",
        unknown_tool: UnknownTool = "content",
    ) -> None:
        super().__init__(tools, id_seed=id_seed, unknown_tool=unknown_tool)
        self._buf = ""
        self._in_block = False
        self._at_start = bool(self.lead_chars)
        self._trim = False
        # Whitespace before an open block: dropped if it is a call, kept if it degrades.
        self._ws = ""

    @abstractmethod
    def parse_block(self, buf: str, final: bool) -> Block | None:
        """Parse the block at the start of ``buf``; None means "need more text".

        Must not return None when ``final``; a verdict given on a prefix must be the
        verdict for every extension of it (that is what makes chunking irrelevant).
        """

    def feed(self, text: str) -> StreamDelta:
        """Consume more decoded text; release what is no longer ambiguous."""
        self._buf += text
        return self._drain(False)

    def finish(self) -> StreamDelta:
        """End of output: release everything still held."""
        return self._drain(True)

    def _block(self, buf: str, final: bool) -> Block | None:
        try:
            return self.parse_block(buf, final)
        except Exception:
            # Last resort so a parser bug degrades to content instead of failing the request.
            return Block(len(buf), None) if final else None

    def _drain(self, final: bool) -> StreamDelta:
        out = StreamDelta()
        content: list[str] = []
        buf = self._buf
        while buf:
            if self._in_block:
                block = self._block(buf, final)
                if block is None:
                    break
                n = max(1, block.consumed)
                raw, buf = buf[:n], buf[n:]
                self._in_block = False
                deltas = self._emit(block.calls)
                if deltas is None:
                    content.append(self._ws + raw)
                    self._trim = False
                else:
                    out.calls.extend(deltas)
                    self._trim = True
                self._ws = ""
                continue
            if self._trim or self._at_start:
                i = skip_ws(buf, 0)
                if i == len(buf):
                    if final and not self._trim:
                        content.append(buf)
                        buf = ""
                    break
                if self._trim:
                    buf, i = buf[i:], 0
                    self._trim = False
                if self._at_start:
                    self._at_start = False
                    if buf[i] in self.lead_chars:
                        self._ws, buf = buf[:i], buf[i:]
                        self._in_block = True
                        continue
            pos, _ = find_first(buf, self.start_markers)
            if pos != -1:
                pre = buf[:pos].rstrip()
                if pre:
                    content.append(pre)
                self._ws = buf[len(pre) : pos]
                buf = buf[pos:]
                self._in_block = True
                continue
            if final:
                content.append(buf)
                buf = ""
                break
            end = len(buf) - partial_suffix(buf, self.start_markers)
            while end > 0 and buf[end - 1].isspace():
                end -= 1
            if end:
                content.append(buf[:end])
                buf = buf[end:]
            break
        self._buf = buf
        out.content = "".join(content)
        return out
