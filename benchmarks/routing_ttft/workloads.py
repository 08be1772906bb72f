"""Seeded client workloads for the routing/TTFT benchmark.

Every workload is a list of sessions; a session is one closed-loop client that sends its
requests one after the other (streaming, with think time in between). A chat session's
next request carries the whole conversation so far, replies included.

* ``chat`` (a): many users, each with a long system prompt of their own, several turns;
  the history grows by one user turn and one reply per request.
* ``docs`` (b): many tenants asking short questions about long documents that they
  share (the document comes first in the prompt, so its KV can be reused).
* ``unique`` (c): no two requests share more than a few characters (the control).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

MODEL = "sim-model"
_WORDS = (  # noqa: SIM905 - a readable word list
    "the of and to in is it you that he was for on are with as his they be at one have this "
    "from or had by not word but what some we can out other were all there when up use your "
    "how said an each she which do their time if will way about many then them write would "
    "like so these her long make thing see him two has look more day could go come did number "
    "sound no most people my over know water than call first who may down side been now find"
).split()


def words(rng: random.Random, chars: int) -> str:
    """About ``chars`` characters of text."""
    out: list[str] = []
    n = 0
    while n < chars:
        w = rng.choice(_WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


@dataclass
class Session:
    """One client: what it sends, and how long it thinks before each request."""

    key: str
    """Sent as ``x-smg-routing-key`` (user, tenant or request id) for consistent_hash."""
    kind: str
    system: str
    prompts: list[str]
    think: list[float]
    start: float
    max_tokens: int
    model: str = MODEL
    replies: list[str] = field(default_factory=list)

    def body(self, i: int) -> dict[str, Any]:
        """Request ``i`` of this session (for chat: the conversation so far)."""
        messages: list[dict[str, str]] = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        if self.kind == "chat":
            for turn in range(i):
                messages.append({"role": "user", "content": self.prompts[turn]})
                messages.append({"role": "assistant", "content": self.replies[turn]})
        messages.append({"role": "user", "content": self.prompts[i]})
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }


@dataclass(frozen=True)
class Shape:
    """The knobs of a workload."""

    sessions: int = 48
    requests: int = 6
    system_chars: int = 6000
    turn_chars: tuple[int, int] = (200, 400)
    documents: int = 24
    document_chars: int = 12000
    question_chars: tuple[int, int] = (80, 200)
    unique_chars: int = 6000
    think_mean: float = 0.3
    ramp: float = 2.0
    max_tokens: int = 24


def build(kind: str, seed: int, shape: Shape, model: str = MODEL) -> list[Session]:
    """The sessions of workload ``kind`` (chat, docs, unique) for ``seed``."""
    rng = random.Random(f"{kind}:{seed}")
    docs = [f"Document {d}: " + words(rng, shape.document_chars) for d in range(shape.documents)]
    out: list[Session] = []
    for s in range(shape.sessions):
        think = [rng.expovariate(1.0 / shape.think_mean) for _ in range(shape.requests)]
        start = rng.uniform(0.0, shape.ramp)
        if kind == "chat":
            system = f"You are the assistant of user {s}. " + words(rng, shape.system_chars)
            prompts = [words(rng, rng.randint(*shape.turn_chars)) for _ in range(shape.requests)]
            key = f"user-{s}"
        elif kind == "docs":
            system = ""
            prompts = []
            for _ in range(shape.requests):
                doc = rng.choice(docs)
                question = words(rng, rng.randint(*shape.question_chars))
                prompts.append(f"{doc}\n\nTenant {s} asks: {question}")
            key = f"tenant-{s}"
        elif kind == "unique":
            system = ""
            prompts = [
                f"{rng.getrandbits(64):016x} " + words(rng, shape.unique_chars)
                for _ in range(shape.requests)
            ]
            key = f"client-{s}"
        else:
            raise ValueError(f"unknown workload {kind!r}")
        out.append(Session(key, kind, system, prompts, think, start, shape.max_tokens, model))
    return out
