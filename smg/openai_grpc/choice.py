"""One output sequence (choice) in gRPC mode: ids → text → stops → reasoning / tool calls."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from smg.openai_grpc.tool_choice import Forced, forced_calls
from smg.parsers import ChatDelta, OutputParser
from smg.parsers.tool.base import ToolCallDelta
from smg.tokenization import OutputStream, Tokenizer
from smg.upstreams.grpc.sampling import SamplingParams
from smg.upstreams.grpc.types import GenerateChunk, TokenLogprob


@dataclass(slots=True)
class Settings:
    """Per-request output settings shared by every choice."""

    tokenizer: Tokenizer
    sampling: SamplingParams
    eos_token_ids: tuple[int, ...]
    skip_special_tokens: bool
    forced: Forced | None = None
    """Set when the output is a constrained (forced) tool call."""
    seed: str = ""


def _merge(a: ChatDelta, b: ChatDelta) -> ChatDelta:
    return ChatDelta(
        a.content + b.content,
        a.reasoning_content + b.reasoning_content,
        a.tool_calls + b.tool_calls,
    )


@dataclass(slots=True)
class Step:
    """What one engine chunk adds to a choice."""

    delta: ChatDelta
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None


class Choice:
    """The running state of choice ``index``; fed token by token so any chunking agrees."""

    def __init__(self, index: int, s: Settings, parser: OutputParser | None) -> None:
        self.index = index
        self.s = s
        sp = s.sampling
        self.out = OutputStream(
            s.tokenizer,
            stop=sp.stop,
            stop_token_ids=sp.stop_token_ids,
            eos_token_ids=() if sp.ignore_eos else s.eos_token_ids,
            ignore_eos=sp.ignore_eos,
            skip_special_tokens=s.skip_special_tokens,
        )
        self.parser = parser
        self.finish_reason: str | None = None
        self.stop_reason: str | int | None = None
        self.completion_tokens = 0
        self.prompt_tokens = 0
        self.cached_tokens = 0
        self.engine_reasoning_tokens = 0
        self.reasoning = ""
        self.content = ""
        self.tool_calls: list[ToolCallDelta] = []
        self.logprobs: list[TokenLogprob] = []
        self._forced_text = ""

    @property
    def done(self) -> bool:
        """The sequence ended (by the engine, or by a stop the gateway matched)."""
        return self.finish_reason is not None

    def step(self, chunk: GenerateChunk) -> Step:
        """Consume one engine chunk for this choice."""
        if self.done:
            return Step(ChatDelta())  # tokens after a stop the gateway matched
        self.prompt_tokens = chunk.prompt_tokens or self.prompt_tokens
        self.cached_tokens = max(self.cached_tokens, chunk.cached_tokens)
        self.engine_reasoning_tokens = max(self.engine_reasoning_tokens, chunk.reasoning_tokens)
        text, lps, reason = self._detokenize(chunk.token_ids, chunk.logprobs)
        if reason is None and chunk.finished:
            text += self.out.finish()
            reason = chunk.finish_reason
        delta = self._parse(text, reason is not None)
        if reason is not None:
            if reason == "stop" and self.tool_calls:
                reason = "tool_calls"
            self.finish_reason = reason
            if chunk.finished and chunk.matched_stop is not None and self.stop_reason is None:
                self.stop_reason = chunk.matched_stop
        self.logprobs.extend(lps)
        return Step(delta, lps, self.finish_reason)

    def _detokenize(
        self, ids: Iterable[int], lps: list[TokenLogprob]
    ) -> tuple[str, list[TokenLogprob], str | None]:
        parts: list[str] = []
        kept: list[TokenLogprob] = []
        for i, tid in enumerate(ids):
            before = len(self.out.output_ids)
            st = self.out.push((tid,))
            self.completion_tokens += 1
            parts.append(st.text)
            if len(self.out.output_ids) > before and i < len(lps):
                kept.append(lps[i])
            if st.finished:
                self.stop_reason = st.stop_reason
                return "".join(parts), kept, "stop"
        return "".join(parts), kept, None

    def _parse(self, text: str, final: bool) -> ChatDelta:
        if self.parser is None:
            delta = ChatDelta(text)
        else:
            delta = self.parser.feed(text) if text else ChatDelta()
            if final:
                delta = _merge(delta, self.parser.finish())
        if self.s.forced is not None:
            delta = self._force(self.s.forced, delta, final)
        self.reasoning += delta.reasoning_content
        self.content += delta.content
        self.tool_calls.extend(delta.tool_calls)
        return delta

    def _force(self, forced: Forced, delta: ChatDelta, final: bool) -> ChatDelta:
        # The constrained output is the arguments: hold it back until it is complete.
        self._forced_text += delta.content
        if not final:
            return ChatDelta("", delta.reasoning_content)
        calls = forced_calls(forced, self._forced_text, f"{self.s.seed}-{self.index}")
        if calls is None:
            return ChatDelta(self._forced_text, delta.reasoning_content)
        return ChatDelta("", delta.reasoning_content, calls)

    def reasoning_tokens(self) -> int:
        """Reasoning tokens: the engine's count, else our count of the reasoning text."""
        if self.engine_reasoning_tokens or not self.reasoning:
            return self.engine_reasoning_tokens
        return len(self.s.tokenizer.encode_batch([self.reasoning])[0])


def usage(choices: list[Choice], prompt_len: int) -> dict[str, Any]:
    """The OpenAI ``usage`` object over all choices (prompt: the engine's count, else ours)."""
    prompt = max((c.prompt_tokens for c in choices), default=0) or prompt_len
    completion = sum(c.completion_tokens for c in choices)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": max(c.cached_tokens for c in choices)},
    }
    reasoning = sum(c.reasoning_tokens() for c in choices)
    out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def logprobs_json(tok: Tokenizer, lps: list[TokenLogprob], top: bool) -> dict[str, Any]:
    """The chat ``logprobs`` object (``content`` entries with token text and bytes)."""

    def entry(tid: int, lp: float) -> dict[str, Any]:
        text = tok.decode((tid,), skip_special_tokens=False)
        return {"token": text, "logprob": lp, "bytes": list(text.encode("utf-8"))}

    content = []
    for lp in lps:
        e = entry(lp.token_id, lp.logprob)
        e["top_logprobs"] = [entry(t, v) for t, v in lp.top] if top else []
        content.append(e)
    return {"content": content}
