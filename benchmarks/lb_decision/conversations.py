"""Realistic chat traffic for the cache_aware decision benchmark (seeded, cheap to generate).

A population of conversations: each starts from one of a few long system-prompt templates
(apps share them) plus a per-user header, then grows by an assistant answer and a new
user turn per request. New conversations keep arriving, old ones end. Texts are drawn
from pools so that filling a 64 MiB tree does not mean generating 64 MiB of words.
"""

from __future__ import annotations

import random
from typing import Any

_WORDS = (  # noqa: SIM905 - a readable word list
    "the of and to in is it you that he was for on are with as his they be at one have this "
    "from or had by not word but what some we can out other were all there when up use your "
    "how said an each she which do their time if will way about many then them write would "
    "like so these her long make thing see him two has look more day could go come did number"
).split()


def words(rng: random.Random, chars: int) -> str:
    """About ``chars`` characters of word salad."""
    out: list[str] = []
    n = 0
    while n < chars:
        w = rng.choice(_WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


class Conversations:
    """Yields chat request bodies: new conversations and next turns of live ones."""

    def __init__(
        self,
        seed: int = 7,
        templates: int = 64,
        live: int = 5000,
        new_share: float = 0.25,
        max_turns: int = 16,
    ) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.templates = [words(rng, rng.randint(4000, 8000)) for _ in range(templates)]
        self.turns = [words(rng, rng.randint(80, 600)) for _ in range(4096)]
        self.live = live
        self.new_share = new_share
        self.max_turns = max_turns
        self.convs: list[list[dict[str, str]]] = []
        self.users = 0

    def _new(self) -> list[dict[str, str]]:
        rng = self.rng
        self.users += 1
        system = rng.choice(self.templates) + f"\nThe user is #{self.users}."
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": rng.choice(self.turns)},
        ]

    def next_body(self) -> dict[str, Any]:
        """The next request's body."""
        rng = self.rng
        convs = self.convs
        if not convs or rng.random() < self.new_share:
            conv = self._new()
            if len(convs) < self.live:
                convs.append(conv)
            else:
                convs[rng.randrange(len(convs))] = conv
        else:
            i = rng.randrange(len(convs))
            conv = convs[i]
            if len(conv) >= 2 * self.max_turns:
                conv = convs[i] = self._new()
            else:
                conv.append({"role": "assistant", "content": rng.choice(self.turns)})
                conv.append({"role": "user", "content": rng.choice(self.turns)})
        return {"model": "m", "messages": list(conv)}
