"""Stop strings and stop token ids for streamed and non-streamed generation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StopHit:
    """Where a stop string occurs in a text: [start, end)."""

    start: int
    end: int
    stop: str


def find_stop(text: str, stops: Sequence[str], start: int = 0) -> StopHit | None:
    """The occurrence that completes first (earliest end; longest on ties), as generation would."""
    best: StopHit | None = None
    for stop in stops:
        if not stop:
            continue
        idx = text.find(stop, start)
        if idx < 0:
            continue
        end = idx + len(stop)
        if best is None or end < best.end or (end == best.end and idx < best.start):
            best = StopHit(idx, end, stop)
    return best


def truncate_at_stop(
    text: str, stops: Sequence[str], include_stop_str_in_output: bool = False
) -> tuple[str, str | None]:
    """Non-streamed reference: the output text and the stop string that ended it (or None)."""
    hit = find_stop(text, stops)
    if hit is None:
        return text, None
    return text[: hit.end if include_stop_str_in_output else hit.start], hit.stop


class StopStringMatcher:
    """Streaming stop-string matcher that holds back only a possible stop prefix."""

    def __init__(self, stops: Iterable[str], include_stop_str_in_output: bool = False) -> None:
        self.stops: tuple[str, ...] = tuple(dict.fromkeys(s for s in stops if s))
        self.include_stop_str_in_output = include_stop_str_in_output
        self._prefixes = frozenset(s[:k] for s in self.stops for k in range(1, len(s)))
        self._max_hold = max((len(s) - 1 for s in self.stops), default=0)
        self._pending = ""
        self.matched: str | None = None

    @property
    def stopped(self) -> bool:
        """True once a stop string has matched; later input is ignored."""
        return self.matched is not None

    @property
    def pending(self) -> str:
        """Text held back because it may begin a stop string."""
        return self._pending

    def push(self, delta: str) -> str:
        """Feed new text; return the part that is safe to emit now."""
        if self.matched is not None or not delta:
            return ""
        if not self.stops:
            return delta
        buf = self._pending + delta
        # Earlier text was checked already, so a new occurrence must end inside `delta`; it
        # can start no earlier than len(stop)-1 chars before it, all of which are pending.
        hit = find_stop(buf, self.stops)
        if hit is not None:
            self.matched = hit.stop
            self._pending = ""
            return buf[: hit.end if self.include_stop_str_in_output else hit.start]
        hold = self._hold_length(buf)
        self._pending = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold]

    def _hold_length(self, buf: str) -> int:
        for k in range(min(self._max_hold, len(buf)), 0, -1):
            if buf[-k:] in self._prefixes:
                return k
        return 0

    def flush(self) -> str:
        """End of stream without a stop: release the held-back text."""
        out, self._pending = self._pending, ""
        return "" if self.matched is not None else out


class StopTokenChecker:
    """Decides whether a generated token id ends the sequence."""

    def __init__(
        self,
        stop_token_ids: Iterable[int] = (),
        eos_token_ids: Iterable[int] = (),
        *,
        ignore_eos: bool = False,
    ) -> None:
        ids = set(stop_token_ids)
        self.eos_ids = frozenset(eos_token_ids)
        self.ignore_eos = ignore_eos
        if not ignore_eos:
            ids |= self.eos_ids
        self.ids = frozenset(ids)

    def add_eos(self, eos_token_ids: Iterable[int]) -> None:
        """More ids that end generation (e.g. the engine's own eos ids from GetModelInfo)."""
        self.eos_ids |= frozenset(eos_token_ids)
        if not self.ignore_eos:
            self.ids |= self.eos_ids

    def is_stop(self, token_id: int) -> bool:
        """True if `token_id` is an eos or a requested stop token."""
        return token_id in self.ids
