"""Prefix KV cache: fixed-size token blocks named by chained hashes, evicted LRU."""

from __future__ import annotations

from collections import OrderedDict

from smg.sim.tokens import BYTES_PER_TOKEN


class PrefixCache:
    """An LRU set of KV blocks; a block's key covers the whole prefix up to its end."""

    __slots__ = ("_blocks", "block_bytes", "block_size", "capacity")

    def __init__(self, block_size: int, capacity: int) -> None:
        self.block_size = block_size
        self.block_bytes = block_size * BYTES_PER_TOKEN
        self.capacity = capacity
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def block_hashes(self, prompt: bytes) -> list[int]:
        """Chained hashes of the prompt's full blocks (in-process only: hash() is salted)."""
        step = self.block_bytes
        h = 0
        out: list[int] = []
        for i in range(0, len(prompt) - step + 1, step):
            h = hash((h, prompt[i : i + step]))
            out.append(h)
        return out

    def match(self, hashes: list[int], limit: int) -> int:
        """Count leading blocks present (at most ``limit``) and mark them recently used."""
        blocks = self._blocks
        n = 0
        for h in hashes[:limit]:
            if h not in blocks:
                break
            blocks.move_to_end(h)
            n += 1
        return n

    def insert(self, hashes: list[int]) -> None:
        """Store a prefilled prompt's blocks, evicting the least recently used beyond capacity."""
        if self.capacity <= 0:
            return
        blocks = self._blocks
        for h in hashes:
            if h in blocks:
                blocks.move_to_end(h)
            else:
                blocks[h] = None
        while len(blocks) > self.capacity:
            blocks.popitem(last=False)

    def clear(self) -> None:
        """Drop every block."""
        self._blocks.clear()
