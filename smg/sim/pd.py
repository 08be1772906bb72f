"""Prefill and decode roles of the simulated engine, and what each checks on its leg.

``--role prefill|decode`` with ``--pd-style sglang|vllm`` (HTTP and gRPC alike):

- **SGLang (bootstrap).** Both legs carry ``bootstrap_host``, ``bootstrap_port`` and
  ``bootstrap_room`` (lists with one entry per sequence for batches and ``n`` > 1; gRPC
  carries one room). The prefill engine checks that host and port name itself (a null
  port is SGLang's default 8998), registers every room and answers one token. The
  decode engine pulls every room from ``bootstrap_host:bootstrap_port`` and checks the
  KV is that of its own prompt before decoding.
- **vLLM (kv_transfer_params, NIXL).** The prefill leg must carry ``kv_transfer_params``
  with ``do_remote_decode: true``, ask for one token and not stream; its answer carries
  ``kv_transfer_params`` (``do_remote_prefill``, ``remote_engine_id``,
  ``remote_block_ids``, ``remote_host``, ``remote_port``, ``transfer_id``). The decode
  leg must carry exactly those: the decode engine pulls ``transfer_id`` from
  ``remote_host:remote_port`` and checks the prompt and the block ids.

A leg that fails these checks gets 400 (malformed fields, naming the field) or, when
the KV cannot be pulled, 500 (see ``kv_transfer.py``). ``stats()`` goes to ``/sim/stats``
(gRPC: ``GetServerInfo.scheduler_info``) under ``pd``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from smg.sim.kv_transfer import Transfer, TransferRegistry, pull, serve_transfers
from smg.sim.params import BadRequest
from smg.sim.tokens import count_tokens, prompt_digest

if TYPE_CHECKING:
    from smg.sim.config import SimConfig
    from smg.sim.engine import Job

SGLANG_DEFAULT_BOOTSTRAP_PORT = 8998
_MAX_ROOM = (1 << 63) - 1
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
_KEEP_KEYS = 256


@dataclass(frozen=True, slots=True)
class Pull:
    """One KV transfer a decode leg must fetch before it may decode."""

    host: str
    port: int
    key: str
    digest: int
    blocks: tuple[int, ...] | None = None


class PdFault(Exception):
    """A decode leg whose KV could not be had: answered with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True, eq=False)
class Leg:
    """What one request owes as a PD leg."""

    role: PdRole
    transfers: list[Transfer] = field(default_factory=list)
    pulls: list[Pull] = field(default_factory=list)
    kv_transfer_params: dict[str, Any] | None = None
    """vLLM prefill: the params its answer hands to the decode leg."""
    task: asyncio.Task[PdFault | None] | None = None

    def start_pull(self) -> asyncio.Task[PdFault | None]:
        """Fetch every transfer concurrently; the task's result is None or the fault."""
        self.task = asyncio.get_running_loop().create_task(self.role.fetch(self.pulls))
        return self.task

    def kv_ready(self) -> None:
        """The prefill computed the KV: its transfers may be pulled."""
        registry = self.role.registry
        if registry is not None:
            for t in self.transfers:
                registry.ready(t)

    def discard(self) -> None:
        """The engine refused the request on arrival: its rooms were never set up."""
        registry = self.role.registry
        if registry is not None:
            for t in self.transfers:
                registry.discard(t)
        self.transfers.clear()

    def close(self) -> None:
        """The request ended: stop pulling, fail transfers whose KV never came to be."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
        registry = self.role.registry
        if registry is not None:
            for t in self.transfers:
                registry.fail(t)


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class PdRole:
    """One engine's PD role: the checks of each leg, its transfers, and counters."""

    def __init__(self, cfg: SimConfig) -> None:
        self.role = cfg.role
        self.style = cfg.pd_style
        self.host = cfg.host
        self.bootstrap_port = cfg.bootstrap_port
        """The transfer port actually bound (set by the server when it picked a free one)."""
        self.kv_timeout = cfg.kv_timeout_s
        self.block_size = cfg.block_size
        self.engine_port = cfg.ports[0]
        self.registry = TransferRegistry() if self.role == "prefill" else None
        self._next_block = 0
        self.legs = 0
        self.rejected = 0
        self.pulls_ok = 0
        self.pulls_failed = 0
        self.last_error = ""
        self.keys: deque[str] = deque(maxlen=_KEEP_KEYS)
        """Rooms / transfer ids of recent legs, newest last (tests compare the two sides)."""

    async def start(self, engine_port: int) -> asyncio.Server | None:
        """Open a prefill engine's KV transfer port (None for a decode engine).

        Prints where it listens (``--bootstrap-port 0`` picks a free port); raises OSError.
        """
        self.engine_port = engine_port
        if self.registry is None:
            print(f"smg-sim: {self.style} PD decode engine", flush=True)
            return None
        server = await serve_transfers(
            self.host, self.bootstrap_port, self.registry, self.kv_timeout
        )
        self.bootstrap_port = server.sockets[0].getsockname()[1]
        print(
            f"smg-sim: {self.style} PD prefill engine, KV transfer port {self.bootstrap_port}",
            flush=True,
        )
        return server

    # -- accepting a leg ------------------------------------------------------

    def accept(self, body: dict[str, Any], job: Job, *, one_room: bool = False) -> Leg:
        """Check a request's PD fields for this role; the leg it owes. Raises BadRequest.

        ``one_room``: a single room stands for the whole request (gRPC's
        DisaggregatedParams has no per-sequence rooms).
        """
        try:
            if self.style == "sglang":
                leg = self._sglang(body, job, one_room)
            else:
                leg = self._vllm(body, job)
        except BadRequest as exc:
            self.rejected += 1
            self.last_error = exc.message
            raise
        self.legs += 1
        return leg

    def _bad(self, message: str, param: str) -> BadRequest:
        return BadRequest(f"{self.role} engine ({self.style} PD): {message}", param=param)

    def _sglang(self, body: dict[str, Any], job: Job, one_room: bool) -> Leg:
        want = job.num_choices
        rooms = self._per_sequence(body, "bootstrap_room", want, one_room)
        hosts = self._per_sequence(body, "bootstrap_host", len(rooms), one_room, rooms_given=True)
        ports = self._per_sequence(body, "bootstrap_port", len(rooms), one_room, rooms_given=True)
        for r in rooms:
            if not _int(r) or not 0 <= r <= _MAX_ROOM:
                raise self._bad(
                    f"bootstrap_room {r!r} is not an integer in [0, 2^63)", "bootstrap_room"
                )
        for h in hosts:
            if not isinstance(h, str) or not h:
                raise self._bad(f"bootstrap_host {h!r} is not a host name", "bootstrap_host")
        for p in ports:
            if p is not None and (not _int(p) or not 0 < p < 65536):
                raise self._bad(f"bootstrap_port {p!r} is not a port or null", "bootstrap_port")
        leg = Leg(self)
        prompts = job.prompts
        per_prompt = max(len(rooms) // len(prompts), 1)
        ports = [SGLANG_DEFAULT_BOOTSTRAP_PORT if p is None else p for p in ports]
        if self.role == "prefill":
            for host, port in zip(hosts, ports, strict=True):
                self._check_self(host, port)
        for i, room in enumerate(rooms):
            prompt = prompts[min(i // per_prompt, len(prompts) - 1)]
            self.keys.append(str(room))
            if self.role == "decode":
                leg.pulls.append(Pull(hosts[i], ports[i], str(room), prompt_digest(prompt)))
                continue
            try:
                leg.transfers.append(self._register(str(room), prompt))
            except BadRequest:
                leg.close()
                raise
        if self.role == "prefill":
            job.max_tokens = 1  # the prefill engine answers the first token only
        return leg

    def _per_sequence(
        self,
        body: dict[str, Any],
        name: str,
        want: int,
        one_room: bool,
        rooms_given: bool = False,
    ) -> list[Any]:
        if name not in body:
            raise self._bad(f"'{name}' is missing: every leg must carry the bootstrap fields", name)
        value = body[name]
        if isinstance(value, list):
            if len(value) != want:
                what = "rooms" if rooms_given else "sequences (prompts x n)"
                raise self._bad(f"'{name}' has {len(value)} entries for {want} {what}", name)
            return value
        if want > 1 and not one_room and not rooms_given:
            raise self._bad(f"'{name}' must be a list of {want} (one per sequence)", name)
        return [value] * (want if rooms_given else 1)

    def _check_self(self, host: str, port: int) -> None:
        if self.host not in _WILDCARD_HOSTS and host != self.host:
            raise self._bad(
                f"bootstrap_host {host!r} is not this prefill engine ({self.host})",
                "bootstrap_host",
            )
        if port != self.bootstrap_port:
            raise self._bad(
                f"bootstrap_port {port} is not this prefill engine's ({self.bootstrap_port})",
                "bootstrap_port",
            )

    def _register(self, key: str, prompt: bytes) -> Transfer:
        assert self.registry is not None
        tokens = count_tokens(prompt)
        n = -(-tokens // self.block_size)
        blocks = list(range(self._next_block, self._next_block + n))
        self._next_block += n
        try:
            return self.registry.register(key, prompt_digest(prompt), tokens, blocks)
        except ValueError as exc:
            name = "bootstrap_room" if self.style == "sglang" else "kv_transfer_params"
            raise self._bad(str(exc), name) from None

    def _vllm(self, body: dict[str, Any], job: Job) -> Leg:
        params = body.get("kv_transfer_params")
        if not isinstance(params, dict):
            raise self._bad(
                "'kv_transfer_params' (an object) is required on every leg", "kv_transfer_params"
            )
        if len(job.prompts) != 1:
            raise self._bad("one prompt per request", "prompt")
        prompt = job.prompts[0]
        leg = Leg(self)
        if self.role == "prefill":
            if params.get("do_remote_decode") is not True or params.get("do_remote_prefill"):
                raise self._bad(
                    "kv_transfer_params must ask for do_remote_decode (and not do_remote_prefill)",
                    "kv_transfer_params",
                )
            if job.max_tokens != 1:
                raise self._bad(
                    f"the prefill leg must ask for 1 token, not {job.max_tokens}", "max_tokens"
                )
            if job.stream:
                raise self._bad("the prefill leg must not stream", "stream")
            key = uuid.uuid4().hex
            t = self._register(key, prompt)
            leg.transfers.append(t)
            self.keys.append(key)
            leg.kv_transfer_params = {
                "do_remote_prefill": True,
                "do_remote_decode": False,
                "remote_engine_id": f"sim-{self.host}-{self.engine_port}",
                "remote_block_ids": t.blocks,
                "remote_host": self.host,
                "remote_port": self.bootstrap_port,
                "tp_size": 1,
                "transfer_id": key,
            }
            return leg
        if params.get("do_remote_prefill") is not True:
            raise self._bad(
                "a decode-only engine needs the kv_transfer_params a prefill engine returned "
                "(do_remote_prefill: true)",
                "kv_transfer_params",
            )
        host, port = params.get("remote_host"), params.get("remote_port")
        tid, blocks = params.get("transfer_id"), params.get("remote_block_ids")
        if not isinstance(host, str) or not _int(port) or not isinstance(tid, str):
            raise self._bad(
                "kv_transfer_params lack remote_host, remote_port or transfer_id",
                "kv_transfer_params",
            )
        if not isinstance(blocks, list) or not all(_int(b) for b in blocks):
            raise self._bad("kv_transfer_params.remote_block_ids must be ids", "kv_transfer_params")
        self.keys.append(tid)
        leg.pulls.append(Pull(host, port, tid, prompt_digest(prompt), tuple(blocks)))
        return leg

    # -- decode: pulling the KV -------------------------------------------------

    async def fetch(self, pulls: Sequence[Pull]) -> PdFault | None:
        """Pull every transfer; None when all arrived and match, else the fault."""
        results = await asyncio.gather(*(self._fetch_one(p) for p in pulls))
        fault = next((f for f in results if f is not None), None)
        if fault is None:
            self.pulls_ok += len(pulls)
        else:
            self.pulls_failed += 1
            self.last_error = fault.message
        return fault

    async def _fetch_one(self, p: Pull) -> PdFault | None:
        status, doc = await pull(p.host, p.port, p.key, self.kv_timeout)
        where = f"KV transfer {p.key} from {p.host}:{p.port}"
        if status != 200:
            return PdFault(500, f"{where} failed ({status}): {doc.get('error', doc)}")
        if doc.get("digest") != p.digest:
            return PdFault(500, f"{where} holds the KV of another prompt")
        if p.blocks is not None and tuple(doc.get("blocks", ())) != p.blocks:
            return PdFault(500, f"{where}: remote_block_ids do not match the prefill's")
        return None

    def stats(self) -> dict[str, Any]:
        """Counters for ``/sim/stats``."""
        out: dict[str, Any] = {
            "role": self.role,
            "style": self.style,
            "bootstrap_port": self.bootstrap_port,
            "legs": self.legs,
            "rejected": self.rejected,
            "pulls_ok": self.pulls_ok,
            "pulls_failed": self.pulls_failed,
            "last_error": self.last_error,
            "keys": list(self.keys),
        }
        if self.registry is not None:
            out["transfers"] = self.registry.stats()
        return out
