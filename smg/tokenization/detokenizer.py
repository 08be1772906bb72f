"""Incremental detokenization with prefix/read offsets that never emits broken UTF-8."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

REPLACEMENT_CHAR = "\ufffd"


class SupportsDecode(Protocol):
    """Anything with a backend decode over an id window (smg Tokenizer.decode_raw)."""

    def decode_raw(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...


class IncrementalDetokenizer:
    """Turns a stream of token ids into text deltas whose concatenation equals decode(ids)."""

    # Each step decodes only ids[prefix_offset:], where ids[prefix_offset:read_offset] are the
    # last emitted tokens kept as context: byte-level and metaspace decoders need a left
    # neighbour to render spaces and merged bytes the same way a full decode does.

    def __init__(
        self,
        tokenizer: SupportsDecode,
        *,
        skip_special_tokens: bool = True,
    ) -> None:
        self._tok = tokenizer
        self._skip = skip_special_tokens
        self.ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0
        self._prefix_text = ""
        self._emitted: list[str] = []

    @property
    def text(self) -> str:
        """Everything emitted so far."""
        return "".join(self._emitted)

    def push(self, token_ids: int | Iterable[int]) -> str:
        """Add one or more ids; return the newly decodable text (possibly empty)."""
        if isinstance(token_ids, int):
            self.ids.append(token_ids)
        else:
            self.ids.extend(token_ids)
        if len(self.ids) == self._read_offset:
            return ""
        window = self._tok.decode_raw(self.ids[self._prefix_offset :], self._skip)
        # Hold back while the tail is an incomplete UTF-8 sequence (decoded as U+FFFD), and when
        # nothing visible was added (e.g. a skipped special token) so context is kept.
        if window.endswith(REPLACEMENT_CHAR) or len(window) <= len(self._prefix_text):
            return ""
        if not window.startswith(self._prefix_text):
            # A decoder rewrote the context (rare: normalising decoders); resync on a wider window
            # rather than emit text that disagrees with a full decode.
            return self._resync()
        delta = window[len(self._prefix_text) :]
        self._advance(delta)
        return delta

    def _advance(self, delta: str) -> None:
        self._emitted.append(delta)
        self._prefix_offset = self._read_offset
        self._read_offset = len(self.ids)
        self._prefix_text = self._tok.decode_raw(
            self.ids[self._prefix_offset : self._read_offset], self._skip
        )

    def _resync(self) -> str:
        full = self._tok.decode_raw(self.ids, self._skip)
        done = self.text
        if full.endswith(REPLACEMENT_CHAR) or not full.startswith(done):
            return ""
        delta = full[len(done) :]
        self._advance(delta)
        return delta

    def flush(self) -> str:
        """Emit whatever is held back (call once the stream has ended)."""
        if len(self.ids) == self._read_offset:
            return ""
        window = self._tok.decode_raw(self.ids[self._prefix_offset :], self._skip)
        if window.startswith(self._prefix_text):
            delta = window[len(self._prefix_text) :]
        else:
            full = self._tok.decode_raw(self.ids, self._skip)
            delta = full[len(self.text) :] if full.startswith(self.text) else ""
        self._advance(delta)
        return delta
