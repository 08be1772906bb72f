"""What the provider simulators share: faults, the request record, scripted answers, usage.

Every simulator is an aiohttp app with the same control endpoints (no key needed):

* ``POST /sim/fault`` ``{"status": 429, "retry_after": 2, "times": 1}`` answers the next
  ``times`` model calls (all of them when ``times`` is null) with that status in the
  provider's error shape; ``{"hang": true, "times": 1}`` accepts and never answers;
  ``{}`` clears the fault. ``--fail-rate`` / ``--fail-status`` / ``--hang-rate`` do the
  same at random (seeded).
* ``GET /sim/last_request``: method, path, query, headers and JSON body of the last model
  call (for assertions on what the gateway sent); ``GET /sim/stats``; ``POST /sim/reset``.

Answers are deterministic: the text is drawn from a fixed vocabulary seeded by the
conversation, one word per token. Tool calls are scripted by the last user text:
``call NAME {json args}`` calls NAME with exactly those arguments (several ``call``
phrases: parallel calls); a forced tool choice calls the function even without a
phrase, with arguments made from its schema. After a tool result the answer is
``Tool NAME returned: <result>``. Prompt caching is simulated the way OpenAI and Gemini
report it: prompts of 1024+ tokens cache in 128-token blocks once seen.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web

_VOCAB: Final = [
    "the",
    "gateway",
    "routes",
    "every",
    "request",
    "to",
    "a",
    "healthy",
    "worker",
    "while",
    "streams",
    "keep",
    "flowing",
    "and",
    "tokens",
    "arrive",
    "in",
    "order",
    "so",
    "clients",
    "see",
    "answers",
    "quickly",
    "under",
    "load",
    "with",
    "fallback",
    "ready",
]
CACHE_MIN_TOKENS: Final = 1024
CACHE_BLOCK_TOKENS: Final = 128
_CHARS_PER_TOKEN: Final = 4
_CALL_RE: Final = re.compile(r"\bcall\s+([A-Za-z_][\w.\-:]{0,63})")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorRenderer = Callable[[int, str, dict[str, str]], web.Response]


@dataclass(slots=True)
class Fault:
    """An injected failure for the next ``times`` model calls (None: every one)."""

    status: int = 0
    retry_after: float | None = None
    hang: bool = False
    times: int | None = None
    message: str = "simulated failure"


@dataclass(slots=True)
class SimState:
    """One simulator's mutable state."""

    models: tuple[str, ...]
    api_key: str
    seed: int = 0
    fail_rate: float = 0.0
    fail_status: int = 503
    hang_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    fault: Fault | None = None
    last: dict[str, Any] | None = None
    requests: int = 0
    seen_blocks: set[bytes] = field(default_factory=set)

    def take_fault(self) -> Fault | None:
        """The fault this call suffers, if any (consumes one of a counted fault)."""
        f = self.fault
        if f is not None:
            if f.times is not None:
                f.times -= 1
                if f.times <= 0:
                    self.fault = None
            return f
        if self.hang_rate and self.rng.random() < self.hang_rate:
            return Fault(hang=True)
        if self.fail_rate and self.rng.random() < self.fail_rate:
            return Fault(status=self.fail_status)
        return None


STATE: web.AppKey[SimState] = web.AppKey("sim_state", SimState)


def tokens_of(text: str) -> int:
    """Token estimate of ``text`` (about four characters a token, at least one)."""
    return max(1, (len(text) + _CHARS_PER_TOKEN - 1) // _CHARS_PER_TOKEN)


def cached_tokens(state: SimState, prompt: str) -> int:
    """Tokens of ``prompt`` served from the simulated prompt cache; remembers its blocks."""
    total = tokens_of(prompt)
    if total < CACHE_MIN_TOKENS:
        return 0
    step = CACHE_BLOCK_TOKENS * _CHARS_PER_TOKEN
    h = hashlib.blake2b(digest_size=16)
    hits = 0
    missing = False
    for start in range(0, len(prompt) - step + 1, step):
        h.update(prompt[start : start + step].encode())
        key = h.copy().digest()
        if not missing and key in state.seen_blocks:
            hits += 1
        else:
            missing = True
            state.seen_blocks.add(key)
    return hits * CACHE_BLOCK_TOKENS


def words(seed_text: str, n: int, seed: int) -> list[str]:
    """``n`` deterministic words for a conversation."""
    digest = hashlib.sha256(f"{seed}:{seed_text}".encode()).digest()
    rng = random.Random(digest)
    return [rng.choice(_VOCAB) for _ in range(n)]


def scripted_calls(text: str, declared: list[str]) -> list[tuple[str, dict[str, Any] | None]]:
    """``call NAME {args}`` phrases in ``text`` naming declared functions, in order."""
    out: list[tuple[str, dict[str, Any] | None]] = []
    for m in _CALL_RE.finditer(text):
        name = m.group(1)
        if name not in declared:
            continue
        args: dict[str, Any] | None = None
        rest = text[m.end() :].lstrip()
        if rest.startswith("{"):
            args = _leading_json(rest)
        out.append((name, args))
    return out


def _leading_json(text: str) -> dict[str, Any] | None:
    """The JSON object at the start of ``text`` (balanced braces, strings respected)."""
    depth = 0
    in_str = False
    esc = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                try:
                    doc = orjson.loads(text[: i + 1])
                except orjson.JSONDecodeError:
                    return None
                return doc if isinstance(doc, dict) else None
    return None


def args_from_schema(schema: Any, name: str = "value", depth: int = 0) -> Any:
    """Deterministic arguments that satisfy a (JSON / Gemini) schema."""
    if not isinstance(schema, dict) or depth > 8:
        return {}
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        return {k: args_from_schema(v, k, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [args_from_schema(schema.get("items"), name, depth + 1)]
    if kind == "integer":
        return 7
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return f"sim-{name}"


def record(state: SimState, request: web.Request, body: Any) -> None:
    """Remember a model call for ``GET /sim/last_request``."""
    state.requests += 1
    state.last = {
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": body,
    }


async def apply_fault(state: SimState, render: ErrorRenderer) -> web.Response | None:
    """The injected failure's answer (a hang never returns), or None to go on."""
    f = state.take_fault()
    if f is None:
        return None
    if f.hang:
        await asyncio.Event().wait()  # until the client gives up (the handler is cancelled)
    headers = {"retry-after": f"{f.retry_after:g}"} if f.retry_after is not None else {}
    return render(f.status, f.message, headers)


async def _set_fault(request: web.Request) -> web.Response:
    state = request.app[STATE]
    doc = await request.json() if request.can_read_body else {}
    if not isinstance(doc, dict) or not doc:
        state.fault = None
    else:
        state.fault = Fault(
            status=int(doc.get("status") or 0),
            retry_after=doc.get("retry_after"),
            hang=bool(doc.get("hang")),
            times=doc.get("times"),
            message=str(doc.get("message") or "simulated failure"),
        )
    return web.json_response({"ok": True})


async def _last(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].last)


async def _stats(request: web.Request) -> web.Response:
    s = request.app[STATE]
    return web.json_response({"requests": s.requests, "models": list(s.models)})


async def _reset(request: web.Request) -> web.Response:
    s = request.app[STATE]
    s.fault, s.last, s.requests = None, None, 0
    s.seen_blocks.clear()
    return web.json_response({"ok": True})


def control_routes(app: web.Application) -> None:
    """The ``/sim/*`` endpoints every provider simulator has."""
    app.router.add_post("/sim/fault", _set_fault)
    app.router.add_get("/sim/last_request", _last)
    app.router.add_get("/sim/stats", _stats)
    app.router.add_post("/sim/reset", _reset)
    app.router.add_get("/health", lambda _r: _ok())


async def _ok() -> web.Response:
    return web.Response(text="ok")


def sse(data: dict[str, Any] | str, sep: bytes = b"\n\n") -> bytes:
    """One ``data:`` event."""
    raw = data.encode() if isinstance(data, str) else orjson.dumps(data)
    return b"data: " + raw + sep


async def run_app(app: web.Application, host: str, port: int, label: str) -> int:
    """Serve ``app`` until SIGINT/SIGTERM; prints the address like ``smg sim`` does."""
    import signal

    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        print(f"smg-sim: cannot listen on {host}:{port}: {exc}", flush=True)
        await runner.cleanup()
        return 1
    bound = port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        bound = server.sockets[0].getsockname()[1]
    print(f"smg-sim: {label} listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0
