"""KV handoff between simulated prefill and decode engines, checked end to end.

A prefill engine keeps a ``TransferRegistry``: a PD prefill request registers one
transfer per KV it will hand over (SGLang: one per ``bootstrap_room``; vLLM: one per
request, under the ``transfer_id`` it returns in ``kv_transfer_params``), the transfer
turns ready when the prompt's KV exists (end of prefill) and failed when the request
ends before that (error, abort, disconnect).

The registry is served on the prefill engine's transfer port (SGLang's bootstrap port,
vLLM's NIXL side channel): ``GET /kv/<key>`` waits up to ``--kv-timeout`` for the
transfer to be ready and answers its facts (prompt digest, tokens, block ids) once. A
second pull of the same key, a key nobody registered and a transfer that failed are
refused. A decode engine pulls from the host and port its own request names, so a
gateway that sends mismatched rooms, the wrong bootstrap host or port, or
``kv_transfer_params`` that no prefill engine issued makes the decode leg fail.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from smg.sim.http import HttpConnection, Request
from smg.sim.params import error_body

PENDING = "pending"
READY = "ready"
FAILED = "failed"
PULLED = "pulled"

# Finished transfers remembered (to refuse a second pull); pending ones are never dropped.
_KEEP = 10_000


@dataclass(slots=True, eq=False)
class Transfer:
    """One KV handoff: what the decode side may check, and where it stands."""

    key: str
    digest: int
    tokens: int
    blocks: list[int]
    state: str = PENDING
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def facts(self) -> dict[str, Any]:
        """What a successful pull returns."""
        return {
            "key": self.key,
            "digest": self.digest,
            "tokens": self.tokens,
            "blocks": self.blocks,
        }


class TransferRegistry:
    """The transfers of one prefill engine, by key, with counters for ``/sim/stats``."""

    def __init__(self) -> None:
        self._transfers: OrderedDict[str, Transfer] = OrderedDict()
        self._arrival = asyncio.Event()
        self.registered = 0
        self.ready_count = 0
        self.failed_count = 0
        self.pulled = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._transfers)

    def register(self, key: str, digest: int, tokens: int, blocks: list[int]) -> Transfer:
        """A new pending transfer; raises ValueError if ``key`` is in use."""
        if key in self._transfers:
            raise ValueError(f"KV transfer key {key} is already in use")
        t = Transfer(key, digest, tokens, blocks)
        self._transfers[key] = t
        self.registered += 1
        self._trim()
        # Wake pulls that came before their prefill leg (both legs are sent at once).
        arrival, self._arrival = self._arrival, asyncio.Event()
        arrival.set()
        return t

    def _trim(self) -> None:
        extra = len(self._transfers) - _KEEP
        if extra <= 0:
            return
        for key in [k for k, t in self._transfers.items() if t.state != PENDING][:extra]:
            del self._transfers[key]

    def ready(self, t: Transfer) -> None:
        """The KV of ``t`` exists now."""
        if t.state == PENDING:
            t.state = READY
            self.ready_count += 1
            t.changed.set()

    def discard(self, t: Transfer) -> None:
        """Forget ``t``, as if it never was registered (a request refused on arrival)."""
        if self._transfers.get(t.key) is t:
            del self._transfers[t.key]
            self.registered -= 1

    def fail(self, t: Transfer) -> None:
        """``t``'s request ended before its KV existed."""
        if t.state == PENDING:
            t.state = FAILED
            self.failed_count += 1
            t.changed.set()

    async def take(self, key: str, timeout: float) -> tuple[int, dict[str, Any]]:
        """Wait for transfer ``key`` and hand it over once: (HTTP status, body)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        t = self._transfers.get(key)
        while t is None:
            # The decode leg may ask before the prefill leg arrived: wait for it.
            left = deadline - loop.time()
            if left <= 0:
                self.refused += 1
                return 404, {"error": f"no KV transfer {key} was registered here"}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrival.wait(), left)
            t = self._transfers.get(key)
        if t.state == PENDING:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(t.changed.wait(), max(deadline - loop.time(), 0.0))
        if t.state == READY:
            t.state = PULLED
            self.pulled += 1
            return 200, t.facts()
        self.refused += 1
        if t.state == PULLED:
            return 409, {"error": f"KV transfer {key} was already pulled"}
        if t.state == FAILED:
            return 410, {"error": f"the prefill request of KV transfer {key} failed"}
        return 504, {"error": f"KV transfer {key} was not ready within {timeout:g}s"}

    def stats(self) -> dict[str, int]:
        """Counters of the registry."""
        return {
            "registered": self.registered,
            "ready": self.ready_count,
            "failed": self.failed_count,
            "pulled": self.pulled,
            "refused": self.refused,
            "pending": sum(1 for t in self._transfers.values() if t.state == PENDING),
        }


class TransferServer:
    """Serves ``GET /kv/<key>`` of a registry on the prefill engine's transfer port."""

    def __init__(self, registry: TransferRegistry, timeout: float) -> None:
        self.registry = registry
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    def dispatch(self, req: Request, conn: HttpConnection) -> None:
        """Answer one pull (asynchronously: it may wait for the prefill to finish)."""
        key = req.path.removeprefix("/kv/")
        if req.method != "GET" or key == req.path or not key:
            conn.send(404, error_body(404, f"Not found: {req.path}", code=404))
            return
        task = asyncio.get_running_loop().create_task(self._answer(key, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, key: str, conn: HttpConnection) -> None:
        status, doc = await self.registry.take(key, self.timeout)
        conn.send(status, orjson.dumps(doc))


async def serve_transfers(
    host: str, port: int, registry: TransferRegistry, timeout: float
) -> asyncio.Server:
    """Listen for pulls on ``host:port`` (0: any free port)."""
    loop = asyncio.get_running_loop()
    server = TransferServer(registry, timeout)
    return await loop.create_server(
        lambda: HttpConnection(server, loop), host, port, reuse_address=True
    )


async def pull(host: str, port: int, key: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """Ask the prefill engine at ``host:port`` for transfer ``key``: (status, body).

    Status 0 means the transfer port could not be reached or answered garbage.
    """
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return 0, {"error": f"cannot reach the KV transfer port {host}:{port}: {exc!r}"}
    try:
        writer.write(
            f"GET /kv/{key} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        raw = await asyncio.wait_for(reader.read(), timeout + 1.0)
    except (OSError, TimeoutError) as exc:
        return 0, {"error": f"KV transfer from {host}:{port} failed: {exc!r}"}
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
        doc = orjson.loads(body)
    except (IndexError, ValueError):
        return 0, {"error": f"the KV transfer port {host}:{port} answered garbage"}
    return status, doc if isinstance(doc, dict) else {"error": "not an object"}
