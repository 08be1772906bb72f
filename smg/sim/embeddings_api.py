"""``POST /v1/embeddings`` as vLLM serves it: deterministic vectors, float or base64."""

from __future__ import annotations

import base64
import struct

import orjson

from smg.sim.engine import Engine, Job, Unstreamed
from smg.sim.http import HttpConnection, Request
from smg.sim.jobs import check_context, launch
from smg.sim.openai_api import identify
from smg.sim.params import BadRequest, load_json, opt_int, opt_str, prompts_of
from smg.sim.runner import Process
from smg.sim.tokens import embedding


class EmbeddingRenderer(Unstreamed):
    """An OpenAI ``list`` of ``embedding`` objects (never streamed)."""

    def __init__(self, seed: int, dim: int, b64: bool) -> None:
        self.seed = seed
        self.dim = dim
        self.b64 = b64

    def _vector(self, prompt: bytes) -> list[float] | str:
        vec = embedding(self.seed, prompt, self.dim)
        if self.b64:
            return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        return vec

    def body(self, job: Job) -> bytes:
        """The embeddings response."""
        return orjson.dumps(
            {
                "id": job.request_id,
                "object": "list",
                "created": job.created,
                "model": job.model,
                "data": [
                    {"index": i, "object": "embedding", "embedding": self._vector(p)}
                    for i, p in enumerate(job.prompts)
                ],
                "usage": {"prompt_tokens": job.prompt_tokens, "total_tokens": job.prompt_tokens},
            }
        )


def embeddings(engine: Engine, req: Request, conn: HttpConnection) -> Process | None:
    """POST /v1/embeddings."""
    body = load_json(req)
    fmt = opt_str(body, "encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    dim = opt_int(body, "dimensions", 1, engine.cfg.embedding_dim) or engine.cfg.embedding_dim
    renderer = EmbeddingRenderer(engine.cfg.seed, dim, fmt == "base64")
    job = Job(renderer, "", "", prompts_of(body.get("input"), "input"))
    job.generates = False
    job.use_cache = False
    identify(engine, req, body, job, "embd")
    check_context(engine, job, "input")
    return launch(engine, conn, job, req.path)
