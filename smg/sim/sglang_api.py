"""SGLang's native endpoints: /generate, /get_model_info, /get_server_info."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import orjson

from smg.sim.engine import Engine, Job
from smg.sim.http import HttpConnection, Request, header_lines
from smg.sim.jobs import check_context, launch
from smg.sim.params import BadRequest, load_json, opt_bool, opt_int, prompts_of
from smg.sim.runner import Process
from smg.sim.tokens import EOS_TOKEN_ID, VOCAB, count_tokens, detokenize

VERSION = "0.0.0-sim"


class GenerateRenderer:
    """SGLang output objects; streamed chunks carry the cumulative text so far."""

    def _finish_reason(self, job: Job) -> dict[str, Any]:
        if job.finish_reason == "length":
            return {"type": "length", "length": job.output_len}
        return {"type": "stop", "matched": EOS_TOKEN_ID}

    def _meta(self, job: Job, index: int, done: bool, produced: int) -> dict[str, Any]:
        p = index // job.n  # outputs are n per prompt, prompt by prompt
        meta: dict[str, Any] = {
            "id": job.request_id if job.num_choices == 1 else f"{job.request_id}-{index}",
            "finish_reason": self._finish_reason(job) if done else None,
            "prompt_tokens": count_tokens(job.prompts[p]),
            "completion_tokens": produced,
            "cached_tokens": job.cached_by_prompt[p] if job.cached_by_prompt else 0,
        }
        if job.logprob_start is not None:
            decode_leg = job.pd is not None and job.pd.pulls
            # A decode leg never saw the prompt computed: its prefill leg has those.
            meta["input_token_logprobs"] = (
                [] if decode_leg else input_logprobs(job.prompts[p], job.logprob_start)
            )
            meta["output_token_logprobs"] = [
                [fake_logprob(t), t, None] for t in job.outputs[index][:produced]
            ]
        return meta

    def _out(self, job: Job, index: int, text: str, done: bool, produced: int) -> dict[str, Any]:
        out: dict[str, Any] = {"text": text, "meta_info": self._meta(job, index, done, produced)}
        if job.num_choices > 1:
            out["index"] = index
        return out

    def stream_head(self, job: Job) -> bytes:
        """SGLang sends nothing before the first token."""
        job.scratch = [""] * job.num_choices
        return b""

    def stream_step(self, job: Job, pos: int) -> bytes:
        """A cumulative-text chunk per prompt; the last token's chunk carries finish_reason."""
        texts: list[str] = job.scratch
        done = pos == job.output_len - 1
        parts = []
        for i, ids in enumerate(job.outputs):
            texts[i] += VOCAB[ids[pos]]
            chunk = self._out(job, i, texts[i], done, pos + 1)
            parts.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
        return b"".join(parts)

    def stream_steps(self, job: Job, start: int, stop: int) -> bytes:
        """Chunks for tokens ``start`` to ``stop``."""
        return b"".join(self.stream_step(job, pos) for pos in range(start, stop))

    def stream_tail(self, job: Job) -> bytes:
        """[DONE], after a finish chunk when no token was generated at all."""
        if job.output_len:
            return b"data: [DONE]\n\n"
        parts = [
            b"data: " + orjson.dumps(self._out(job, i, "", True, 0)) + b"\n\n"
            for i in range(job.num_choices)
        ]
        return b"".join(parts) + b"data: [DONE]\n\n"

    def body(self, job: Job) -> bytes:
        """One output object, or a list of them for a batch."""
        outs = [
            self._out(job, i, detokenize(ids), True, len(ids)) | {"output_ids": list(ids)}
            for i, ids in enumerate(job.outputs)
        ]
        return orjson.dumps(outs if job.batch or job.num_choices > 1 else outs[0])


_GENERATE = GenerateRenderer()


def fake_logprob(token: int) -> float:
    """A deterministic log probability for a token id."""
    return -0.05 * (1 + token % 20)


def input_logprobs(prompt: bytes, start: int) -> list[list[Any]]:
    """SGLang ``input_token_logprobs`` from position ``start`` (-1: none); the first is None."""
    if start < 0:
        return []
    ids = [int.from_bytes(prompt[i : i + 4], "little") for i in range(0, len(prompt), 4)]
    return [[None if i == 0 else fake_logprob(t), t, None] for i, t in enumerate(ids)][start:]


def generate(engine: Engine, req: Request, conn: HttpConnection) -> Process | None:
    """POST /generate."""
    body = load_json(req)
    if body.get("text") is not None:
        prompts = prompts_of(body["text"], "text")
        batch = isinstance(body["text"], list)
    else:
        ids = body.get("input_ids")
        prompts = prompts_of(ids, "text")
        batch = isinstance(ids, list) and bool(ids) and isinstance(ids[0], list)
    params = body.get("sampling_params") or {}
    if not isinstance(params, dict):
        raise BadRequest("'sampling_params' must be an object.", param="sampling_params")
    job = Job(_GENERATE, "", engine.cfg.model, prompts)
    job.batch = batch
    job.max_tokens = opt_int(params, "max_new_tokens")
    n = opt_int(params, "n", 1, 128)
    job.n = n or 1
    job.stream = opt_bool(body, "stream")
    if opt_bool(body, "return_logprob"):
        start = body.get("logprob_start_len", -1)
        if not isinstance(start, int) or isinstance(start, bool) or start < -1:
            raise BadRequest("'logprob_start_len' must be an integer >= -1.", "logprob_start_len")
        job.logprob_start = start
    job.created = int(time.time())
    job.prompt_tokens = sum(map(count_tokens, prompts))
    header_rid = req.header(b"x-request-id")
    rid = body.get("rid")
    seq = engine.next_seq()
    job.request_id = (rid if isinstance(rid, str) else header_rid) or f"{engine.port:x}{seq:016x}"
    if header_rid:
        job.headers = header_lines({"x-request-id": header_rid})
    check_context(engine, job, "text")
    if engine.pd is not None:
        job.pd = engine.pd.accept(body, job)
    return launch(engine, conn, job, req.path)


def model_info(engine: Engine, req: Request, conn: HttpConnection) -> None:
    """GET /get_model_info."""
    conn.send(
        200,
        orjson.dumps(
            {
                "model_path": engine.cfg.model,
                "tokenizer_path": engine.cfg.model,
                "is_generation": True,
                "preferred_sampling_params": None,
                "weight_version": "default",
                "has_image_understanding": False,
                "has_audio_understanding": False,
            }
        ),
    )


def server_info(engine: Engine, req: Request, conn: HttpConnection) -> None:
    """GET /get_server_info: the server arguments plus a little live state."""
    cfg = engine.cfg
    info: dict[str, Any] = dataclasses.asdict(cfg)
    info.update(
        {
            "model_path": cfg.model,
            "served_model_name": cfg.model,
            "port": engine.port,
            "page_size": cfg.block_size,
            "max_running_requests": cfg.max_running,
            "context_length": cfg.max_model_len,
            "random_seed": cfg.seed,
            "version": VERSION,
            "internal_states": [
                {
                    "num_running_reqs": engine.running,
                    "num_waiting_reqs": engine.waiting,
                    "token_usage": engine.kv_usage(),
                }
            ],
        }
    )
    conn.send(200, orjson.dumps(info))
