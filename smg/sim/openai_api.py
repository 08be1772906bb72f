"""OpenAI-compatible endpoints as vLLM serves them: chat, completions, models.

Embeddings are in ``embeddings_api``."""

from __future__ import annotations

import time
from typing import Any

import orjson

from smg.sim import tool_calls
from smg.sim.engine import Engine, Job
from smg.sim.http import HttpConnection, Request, header_lines
from smg.sim.jobs import check_context, launch
from smg.sim.params import BadRequest, load_json, opt_bool, opt_int, prompts_of
from smg.sim.runner import Process
from smg.sim.tokens import VOCAB_JSON, count_tokens, detokenize, render_chat

_DONE = b"data: [DONE]\n\n"
# A placeholder string whose JSON encoding marks where a token's text goes.
_HOLE = "\x00"
_HOLE_JSON = b'"\\u0000"'
_MAX_N = 128


def _dumps_answer(job: Job, doc: dict[str, Any]) -> bytes:
    """A whole answer; a vLLM prefill leg's carries the ``kv_transfer_params`` it issued."""
    if job.pd is not None and job.pd.kv_transfer_params is not None:
        doc["kv_transfer_params"] = job.pd.kv_transfer_params
    return orjson.dumps(doc)


def _usage(job: Job) -> dict[str, Any]:
    completion = job.produced * job.num_choices
    return {
        "prompt_tokens": job.prompt_tokens,
        "total_tokens": job.prompt_tokens + completion,
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": job.cached_tokens},
    }


class _Streamer:
    """Streaming shared by chat and completions.

    Every chunk of a stream is ``data: {<envelope>, "choices": [<choice>]}``; the
    envelope is serialised once per request and the choices come from a per-class
    cache, so that a token costs a few byte concatenations rather than a dumps().
    """

    obj_stream = ""

    def __init__(self) -> None:
        self._choice_cache: dict[tuple[str, int, str], bytes] = {}
        self._token_cache: dict[int, tuple[bytes, bytes]] = {}

    def _token_choice(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def _final_choice(self, index: int, reason: str) -> dict[str, Any]:
        raise NotImplementedError

    def _choice(self, kind: str, index: int, reason: str = "") -> bytes:
        key = (kind, index, reason)
        cached = self._choice_cache.get(key)
        if cached is None:
            obj = self._final_choice(index, reason) if kind == "final" else self._role_choice(index)
            cached = self._choice_cache[key] = orjson.dumps(obj)
        return cached

    def _role_choice(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def _prefix(self, job: Job) -> bytes:
        """``data: {"id":...,"choices":[`` for this request."""
        if job.scratch is None:
            envelope = {
                "id": job.request_id,
                "object": self.obj_stream,
                "created": job.created,
                "model": job.model,
                "choices": _HOLE,
            }
            # rpartition: a request-supplied id or model may itself contain the hole.
            before = orjson.dumps(envelope).rpartition(_HOLE_JSON)[0]
            job.scratch = b"data: " + before + b"["
        prefix: bytes = job.scratch
        return prefix

    def _token_parts(self, index: int) -> tuple[bytes, bytes]:
        parts = self._token_cache.get(index)
        if parts is None:
            before, _, after = orjson.dumps(self._token_choice(index)).rpartition(_HOLE_JSON)
            parts = self._token_cache[index] = (before, after + b"]}\n\n")
        return parts

    def stream_step(self, job: Job, pos: int) -> bytes:
        """Every choice's token ``pos``."""
        return self.stream_steps(job, pos, pos + 1)

    def stream_steps(self, job: Job, start: int, stop: int) -> bytes:
        """Tokens ``start`` to ``stop`` of every choice, choices interleaved per position."""
        prefix = self._prefix(job)
        vocab = VOCAB_JSON
        outputs = job.outputs
        if len(outputs) == 1:
            before, after = self._token_parts(0)
            head = prefix + before
            return b"".join([head + vocab[t] + after for t in outputs[0][start:stop]])
        heads = [(prefix + b, a) for b, a in map(self._token_parts, range(len(outputs)))]
        return b"".join(
            head + vocab[out[pos]] + after
            for pos in range(start, stop)
            for (head, after), out in zip(heads, outputs, strict=True)
        )

    def stream_tail(self, job: Job) -> bytes:
        """A finish chunk per choice, the usage chunk if asked for, then [DONE]."""
        prefix = self._prefix(job)
        reason = job.finish_reason
        parts = [
            prefix + self._choice("final", i, reason) + b"]}\n\n" for i in range(job.num_choices)
        ]
        if job.include_usage:
            parts.append(prefix + b'],"usage":' + orjson.dumps(_usage(job)) + b"}\n\n")
        parts.append(_DONE)
        return b"".join(parts)


class ChatRenderer(_Streamer):
    """``chat.completion`` and ``chat.completion.chunk`` objects."""

    obj_stream = "chat.completion.chunk"

    def _token_choice(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "delta": {"content": _HOLE},
            "logprobs": None,
            "finish_reason": None,
        }

    def _role_choice(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }

    def _final_choice(self, index: int, reason: str) -> dict[str, Any]:
        return {"index": index, "delta": {}, "logprobs": None, "finish_reason": reason}

    def stream_head(self, job: Job) -> bytes:
        """The assistant role chunk of every choice."""
        prefix = self._prefix(job)
        return b"".join(
            prefix + self._choice("role", i) + b"]}\n\n" for i in range(job.num_choices)
        )

    def body(self, job: Job) -> bytes:
        """A ``chat.completion`` object."""
        return _dumps_answer(
            job,
            {
                "id": job.request_id,
                "object": "chat.completion",
                "created": job.created,
                "model": job.model,
                "choices": [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": detokenize(out)},
                        "logprobs": None,
                        "finish_reason": job.finish_reason,
                        "stop_reason": None,
                    }
                    for i, out in enumerate(job.outputs)
                ],
                "usage": _usage(job),
            },
        )


class CompletionRenderer(_Streamer):
    """``text_completion`` objects, streamed or not."""

    obj_stream = "text_completion"

    def _token_choice(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "text": _HOLE,
            "logprobs": None,
            "finish_reason": None,
            "stop_reason": None,
        }

    def _role_choice(self, index: int) -> dict[str, Any]:
        raise AssertionError("completions have no role chunk")

    def _final_choice(self, index: int, reason: str) -> dict[str, Any]:
        return {
            "index": index,
            "text": "",
            "logprobs": None,
            "finish_reason": reason,
            "stop_reason": None,
        }

    def stream_head(self, job: Job) -> bytes:
        """Completions have no role chunk."""
        return b""

    def body(self, job: Job) -> bytes:
        """A ``text_completion`` object."""
        return _dumps_answer(
            job,
            {
                "id": job.request_id,
                "object": "text_completion",
                "created": job.created,
                "model": job.model,
                "choices": [
                    {
                        "index": i,
                        "text": detokenize(out),
                        "logprobs": None,
                        "finish_reason": job.finish_reason,
                        "stop_reason": None,
                    }
                    for i, out in enumerate(job.outputs)
                ],
                "usage": _usage(job),
            },
        )


_CHAT = ChatRenderer()
_COMPLETION = CompletionRenderer()


def identify(engine: Engine, req: Request, body: dict[str, Any], job: Job, prefix: str) -> None:
    """Model, request id, creation time and prompt tokens of a job (every endpoint)."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("'model' must be a string.", param="model", code="invalid_type")
    job.model = model or engine.cfg.model
    job.created = int(time.time())
    prompts = job.prompts
    job.prompt_tokens = (
        count_tokens(prompts[0]) if len(prompts) == 1 else sum(map(count_tokens, prompts))
    )
    seq = engine.next_seq()
    rid = req.header(b"x-request-id")
    if rid:
        # vLLM names the request after the caller's id and echoes the header back.
        job.request_id = f"{prefix}-{rid}"
        job.headers = header_lines({"x-request-id": rid})
    else:
        job.request_id = f"{prefix}-{engine.port:x}{seq:010x}"


def _sampling(body: dict[str, Any], job: Job) -> None:
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        # Re-read through the validator only for a precise error naming the field.
        field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        if type(max_tokens) is not int or max_tokens < 0:
            opt_int(body, field)
    job.max_tokens = max_tokens
    n = body.get("n")
    if n is not None and n != 1:
        n = opt_int(body, "n", 1, _MAX_N)
    job.n = n or 1
    stream = body.get("stream")
    if stream:
        job.stream = opt_bool(body, "stream")
        options = body.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise BadRequest("'stream_options' must be an object.", param="stream_options")
        job.include_usage = bool(options and options.get("include_usage"))
    elif stream is not None:
        opt_bool(body, "stream")


def chat(engine: Engine, req: Request, conn: HttpConnection) -> Process | None:
    """POST /v1/chat/completions."""
    body = load_json(req)
    messages = body.get("messages")
    if messages is None:
        raise BadRequest(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    try:
        if not isinstance(messages, list) or not messages:
            raise ValueError("'messages' must be a non-empty array")
        prompt = render_chat(messages).encode()
    except ValueError as exc:
        raise BadRequest(str(exc), param="messages", code="invalid_value") from None
    if body.get("tools") or (isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"):
        scripted = tool_calls.plan(body)
        if scripted is not None:
            tool_calls.answer(engine, req, conn, body, scripted)
            return None
    job = Job(_CHAT, "", "", [prompt])
    _sampling(body, job)
    identify(engine, req, body, job, "chatcmpl")
    check_context(engine, job, "messages")
    if engine.pd is not None:
        job.pd = engine.pd.accept(body, job)
    return launch(engine, conn, job, req.path)


def completions(engine: Engine, req: Request, conn: HttpConnection) -> Process | None:
    """POST /v1/completions."""
    body = load_json(req)
    job = Job(_COMPLETION, "", "", prompts_of(body.get("prompt"), "prompt"))
    _sampling(body, job)
    identify(engine, req, body, job, "cmpl")
    check_context(engine, job, "prompt")
    if engine.pd is not None:
        job.pd = engine.pd.accept(body, job)
    return launch(engine, conn, job, req.path)


def models(engine: Engine, req: Request, conn: HttpConnection) -> None:
    """GET /v1/models."""
    name = engine.cfg.model
    conn.send(
        200,
        orjson.dumps(
            {
                "object": "list",
                "data": [
                    {
                        "id": name,
                        "object": "model",
                        "created": int(engine.started_wall),
                        "owned_by": "vllm",
                        "root": name,
                        "parent": None,
                        "max_model_len": engine.cfg.max_model_len,
                    }
                ],
            }
        ),
    )
