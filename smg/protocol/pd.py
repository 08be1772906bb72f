"""What PD disaggregation adds to request bodies and merges into answers (no I/O).

SGLang style: both legs carry ``bootstrap_host`` (the prefill endpoint's host),
``bootstrap_port`` (its configured bootstrap port, or null) and ``bootstrap_room`` (a
random 63-bit integer); a request that is a batch or asks for ``n`` > 1 sequences
carries one entry per sequence (prompts x n) in each of the three, as SGLang indexes
them per sub-request. When a ``/generate`` request asks for logprobs, the prefill
answer's ``meta_info.input_token_logprobs`` come first in the decode answer's.

vLLM style: the prefill leg is the request with ``max_tokens`` (and
``max_completion_tokens``) 1, not streamed, and ``kv_transfer_params`` asking for a
remote decode; the decode leg is the original request plus the ``kv_transfer_params``
the prefill answer returned.
"""

from __future__ import annotations

import random
from typing import Any

_rooms = random.SystemRandom()

REMOTE_DECODE: dict[str, Any] = {
    "do_remote_decode": True,
    "do_remote_prefill": False,
    "remote_engine_id": None,
    "remote_block_ids": None,
    "remote_host": None,
    "remote_port": None,
}
"""The ``kv_transfer_params`` of a vLLM prefill leg (as vLLM's disaggregation proxies send)."""


def new_room(bits: int = 63) -> int:
    """A random bootstrap room: 63 bits over HTTP, 31 in SGLang's gRPC (an int32 field)."""
    return _rooms.getrandbits(bits)


def _prompt_count(kind: str, body: dict[str, Any]) -> int | None:
    """Prompts of a batched request (None: one prompt, not a batch)."""
    if kind == "completions":
        value = body.get("prompt")
        if isinstance(value, list) and value and not isinstance(value[0], int):
            return len(value)  # a list of texts or of token-id lists; ints are one prompt
    elif kind == "generate":
        text = body.get("text")
        if isinstance(text, list):
            return len(text)
        ids = body.get("input_ids")
        if isinstance(ids, list) and ids and isinstance(ids[0], list):
            return len(ids)
    return None


def _n(kind: str, body: dict[str, Any]) -> int:
    value: Any = body.get("n")
    if kind == "generate":
        params = body.get("sampling_params")
        value = params.get("n") if isinstance(params, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1


def sequence_count(kind: str, body: dict[str, Any]) -> int | None:
    """Sequences (prompts x n) of a batch or ``n`` > 1 request; None for a single one."""
    prompts = _prompt_count(kind, body)
    n = _n(kind, body)
    if prompts is None and n == 1:
        return None
    return (prompts or 1) * n


def bootstrap_fields(host: str, port: int | None, count: int | None) -> dict[str, Any]:
    """The three bootstrap fields both SGLang legs carry (lists of ``count`` for batches)."""
    if count is None:
        return {"bootstrap_host": host, "bootstrap_port": port, "bootstrap_room": new_room()}
    return {
        "bootstrap_host": [host] * count,
        "bootstrap_port": [port] * count,
        "bootstrap_room": [new_room() for _ in range(count)],
    }


def wants_input_logprobs(kind: str, body: dict[str, Any]) -> bool:
    """Does the answer carry input logprobs the prefill leg computed (``/generate``)."""
    return kind == "generate" and bool(body.get("return_logprob"))


def input_logprobs_by_index(doc: Any) -> dict[int, list[Any]]:
    """``meta_info.input_token_logprobs`` of an SGLang answer (or batch), by output index."""
    out: dict[int, list[Any]] = {}
    for i, item in enumerate(doc if isinstance(doc, list) else [doc]):
        if not isinstance(item, dict):
            continue
        meta = item.get("meta_info")
        lps = meta.get("input_token_logprobs") if isinstance(meta, dict) else None
        if isinstance(lps, list):
            index = item.get("index", i)
            out.setdefault(index if isinstance(index, int) else i, lps)
    return out


def merge_input_logprobs(prefill: dict[int, list[Any]], doc: Any) -> bool:
    """Put the prefill's input logprobs first in an SGLang answer (or batch); True if any."""
    merged = False
    for i, item in enumerate(doc if isinstance(doc, list) else [doc]):
        if not isinstance(item, dict):
            continue
        index = item.get("index", i)
        meta = item.get("meta_info")
        lps = prefill.get(index if isinstance(index, int) else i)
        if lps is None or not isinstance(meta, dict):
            continue
        own = meta.get("input_token_logprobs")
        if isinstance(own, list):
            meta["input_token_logprobs"] = lps + own
            merged = True
    return merged


def vllm_prefill_body(body: dict[str, Any]) -> dict[str, Any]:
    """The prefill leg of a vLLM-style request: one token, not streamed, remote decode."""
    out = dict(body)
    out["kv_transfer_params"] = dict(REMOTE_DECODE)
    out["stream"] = False
    out["max_tokens"] = 1
    if "max_completion_tokens" in out:
        out["max_completion_tokens"] = 1
    out.pop("stream_options", None)
    return out


def vllm_decode_body(body: dict[str, Any], params: dict[str, Any] | None) -> dict[str, Any]:
    """The decode leg: the client's request with the prefill's ``kv_transfer_params``.

    Without params (a prefill engine with no KV connector) the decode engine computes
    the prompt itself, as vLLM's proxies do.
    """
    if params is None:
        return body
    return {**body, "kv_transfer_params": params}
