"""Per-sequence output pipeline: detokenize, then apply stop tokens and stop strings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from smg.tokenization.detokenizer import IncrementalDetokenizer, SupportsDecode
from smg.tokenization.stops import StopStringMatcher, StopTokenChecker


@dataclass(frozen=True)
class StreamStep:
    """Text to send for one engine chunk, and why the sequence finished (if it did)."""

    text: str
    finished: bool = False
    # "stop" for a stop string / stop token / eos, None while running.
    finish_reason: str | None = None
    # The stop string or token id that ended the sequence, as OpenAI-compatible servers report.
    stop_reason: str | int | None = None


class OutputStream:
    """Feeds engine token ids through detokenization and stop handling for one sequence."""

    def __init__(
        self,
        tokenizer: SupportsDecode,
        *,
        stop: Sequence[str] = (),
        stop_token_ids: Iterable[int] = (),
        eos_token_ids: Iterable[int] = (),
        ignore_eos: bool = False,
        include_stop_str_in_output: bool = False,
        skip_special_tokens: bool = True,
    ) -> None:
        self.detok = IncrementalDetokenizer(tokenizer, skip_special_tokens=skip_special_tokens)
        self.stops = StopStringMatcher(stop, include_stop_str_in_output)
        self.stop_tokens = StopTokenChecker(stop_token_ids, eos_token_ids, ignore_eos=ignore_eos)
        self.finished = False
        self.output_ids: list[int] = []

    def push(self, token_ids: Iterable[int]) -> StreamStep:
        """Consume ids from the engine; ids after a stop are ignored."""
        if self.finished:
            return StreamStep("", True, "stop")
        keep: list[int] = []
        stop_id: int | None = None
        for tid in token_ids:
            if self.stop_tokens.is_stop(tid):
                stop_id = tid
                break
            keep.append(tid)
        self.output_ids.extend(keep)
        text = self.stops.push(self.detok.push(keep)) if keep else ""
        if self.stops.stopped:
            self.finished = True
            return StreamStep(text, True, "stop", self.stops.matched)
        if stop_id is not None:
            self.finished = True
            # The stream ended: release held-back bytes and any possible-stop prefix.
            tail = self.stops.push(self.detok.flush())
            if self.stops.stopped:
                return StreamStep(text + tail, True, "stop", self.stops.matched)
            return StreamStep(text + tail + self.stops.flush(), True, "stop", stop_id)
        return StreamStep(text)

    def finish(self) -> str:
        """The engine ended the sequence (e.g. length): return the remaining text."""
        if self.finished:
            return ""
        self.finished = True
        tail = self.stops.push(self.detok.flush())
        return tail if self.stops.stopped else tail + self.stops.flush()
