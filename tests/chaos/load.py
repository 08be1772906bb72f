"""Concurrent OpenAI-style clients for chaos tests, and a strict reading of what they got back.

Every request ends in exactly one ``Outcome.kind``:

* ``completed``     200 with a full answer (non-stream: JSON with a finish_reason on every
                    choice; stream: a finish_reason and a final ``data: [DONE]``)
* ``error``         a non-200 answer whose body is an OpenAI error object
* ``stream_error``  a 200 stream that ended with an SSE ``data: {"error": {...}}`` event
* ``malformed``     anything else the gateway sent (truncated stream, non-OpenAI body, ...)
* ``transport``     the connection broke with no OpenAI-shaped ending
* ``hung``          nothing conclusive within the client's own timeout

The first three are acceptable under faults; the last three are gateway bugs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

ACCEPTABLE = frozenset({"completed", "error", "stream_error"})


@dataclass
class Outcome:
    """What one request ended with, as seen by the client."""

    index: int
    stream: bool
    kind: str
    status: int = 0
    code: Any = None
    elapsed: float = 0.0
    chunks: int = 0
    detail: str = ""


@dataclass
class Request:
    """One request to send: ``chat`` picks the endpoint, ``delay`` staggers its start."""

    index: int
    stream: bool
    chat: bool
    max_tokens: int
    delay: float = 0.0

    def path(self) -> str:
        return "/v1/chat/completions" if self.chat else "/v1/completions"

    def body(self, model: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"model": model, "max_tokens": self.max_tokens}
        if self.chat:
            doc["messages"] = [{"role": "user", "content": f"chaos request {self.index}"}]
        else:
            doc["prompt"] = f"chaos request {self.index}"
        if self.stream:
            doc["stream"] = True
        return doc


def is_openai_error(doc: Any) -> bool:
    """``{"error": {"message": str, "type": str, "code": ...}}`` (code may be null or int)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("error"), dict):
        return False
    err = doc["error"]
    return (
        isinstance(err.get("message"), str)
        and bool(err["message"])
        and isinstance(err.get("type"), str)
        and "code" in err
    )


def read_body(req: Request, status: int, raw: bytes, events: list[bytes]) -> Outcome:
    """Classify a finished exchange (``events`` holds the SSE data payloads of a stream)."""
    out = Outcome(req.index, req.stream, "malformed", status=status)
    if status != 200 or not req.stream:
        try:
            doc = json.loads(raw)
        except ValueError:
            out.detail = f"status {status}, body not JSON: {raw[:200]!r}"
            return out
        if status != 200:
            if is_openai_error(doc):
                out.kind, out.code = "error", doc["error"]["code"]
            else:
                out.detail = f"status {status}, not an OpenAI error: {raw[:200]!r}"
            return out
        choices = doc.get("choices") if isinstance(doc, dict) else None
        if choices and all(c.get("finish_reason") for c in choices):
            out.kind = "completed"
        else:
            out.detail = f"200 without finished choices: {raw[:200]!r}"
        return out
    out.chunks = len(events)
    finished = False
    for i, ev in enumerate(events):
        if ev == b"[DONE]":
            continue
        try:
            doc = json.loads(ev)
        except ValueError:
            out.detail = f"unparsable SSE event {ev[:200]!r}"
            return out
        if "error" in doc:
            if is_openai_error(doc) and i == len(events) - 1:
                out.kind, out.code = "stream_error", doc["error"]["code"]
            else:
                out.detail = f"bad or non-final error event {ev[:200]!r}"
            return out
        finished = finished or any(c.get("finish_reason") for c in doc.get("choices") or ())
    if events and events[-1] == b"[DONE]" and finished:
        out.kind = "completed"
    else:
        out.detail = f"stream ended after {len(events)} events without [DONE] or error"
    return out


async def send(
    session: aiohttp.ClientSession,
    base_url: str,
    req: Request,
    *,
    timeout: float,
    model: str = "sim-model",
    on_first_chunk: Callable[[int], None] | None = None,
) -> Outcome:
    """Send ``req`` after its delay; never raises, the outcome says what happened."""
    if req.delay:
        await asyncio.sleep(req.delay)
    t0 = time.monotonic()
    status = 0
    events: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            async with session.post(base_url + req.path(), json=req.body(model)) as r:
                status = r.status
                if status == 200 and req.stream:
                    async for line in r.content:
                        if line.startswith(b"data:"):
                            events.append(line[5:].strip())
                            if len(events) == 1 and on_first_chunk is not None:
                                on_first_chunk(req.index)
                    raw = b""
                else:
                    raw = await r.read()
    except TimeoutError:
        return Outcome(
            req.index, req.stream, "hung", status, elapsed=time.monotonic() - t0, chunks=len(events)
        )
    except aiohttp.ClientError as exc:
        return Outcome(
            req.index,
            req.stream,
            "transport",
            status,
            elapsed=time.monotonic() - t0,
            chunks=len(events),
            detail=repr(exc),
        )
    out = read_body(req, status, raw, events)
    out.elapsed = time.monotonic() - t0
    return out


def session(limit: int = 0) -> aiohttp.ClientSession:
    """A client session with no connection cap (each concurrent request gets its own)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))


def summary(outcomes: list[Outcome]) -> dict[str, int]:
    """Counts by kind, plus by ``status/code`` for the errors (for assertion messages)."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.kind] = counts.get(o.kind, 0) + 1
        if o.kind != "completed":
            key = f"{o.kind}:{o.status}/{o.code}"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
