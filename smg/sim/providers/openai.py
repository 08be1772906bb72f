"""``smg sim --provider openai``: a simulated OpenAI Chat Completions API.

Follows the wire format of ``api.openai.com/v1``: ``Authorization: Bearer`` required
(401 ``invalid_api_key`` otherwise); the body is checked as OpenAI checks it
(``openai_rules.py``: unknown models 404, bad fields 400 naming ``param``). Streams send
the role first, content deltas, tool-call arguments in fragments, a finish chunk, the
usage chunk when ``stream_options.include_usage``, then ``[DONE]``. See ``common.py`` for
scripted tool calls, faults and the request record.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Final

import orjson
from aiohttp import web

from smg.sim.providers.common import (
    STATE,
    SimState,
    apply_fault,
    args_from_schema,
    cached_tokens,
    control_routes,
    record,
    scripted_calls,
    sse,
    tokens_of,
    words,
)
from smg.sim.providers.openai_rules import ApiError, validate

_DEFAULT_WORDS: Final = 12
_ARG_FRAGMENT: Final = 7


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An OpenAI error body (used for injected faults too)."""
    kind = {429: "rate_limit_exceeded"}.get(status, "server_error" if status >= 500 else None)
    body = {
        "error": {
            "message": message,
            "type": kind or "invalid_request_error",
            "param": None,
            "code": kind,
        }
    }
    return web.json_response(body, status=status, headers=headers)


def _render(err: ApiError) -> web.Response:
    return web.json_response(
        {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}},
        status=err.status,
    )


def _check_key(state: SimState, request: web.Request) -> None:
    auth = request.headers.get("Authorization", "")
    scheme, _, key = auth.partition(" ")
    if not auth or scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    key = key.strip()
    if key != state.api_key:
        masked = f"{key[:3]}{'*' * max(len(key) - 7, 0)}{key[-4:]}" if len(key) > 7 else "***"
        raise ApiError(401, f"Incorrect API key provided: {masked}.", code="invalid_api_key")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def plan(state: SimState, body: dict[str, Any], fns: list[dict[str, Any]]) -> dict[str, Any]:
    """What to answer: ``{"text", "calls", "finish"}`` (deterministic)."""
    msgs = body["messages"]
    last = msgs[-1]
    transcript = orjson.dumps(msgs).decode()
    if last.get("role") == "tool":
        names = {
            c["id"]: c["function"]["name"]
            for m in msgs
            if m.get("role") == "assistant"
            for c in (m.get("tool_calls") or ())
        }
        results = [
            f"Tool {names.get(m.get('tool_call_id'), '?')} returned: {_text(m.get('content'))}"
            for m in msgs[len(msgs) - _trailing_tools(msgs) :]
        ]
        return {"text": " ".join(results), "calls": [], "finish": "stop"}
    declared = [f["name"] for f in fns]
    choice = body.get("tool_choice")
    calls: list[tuple[str, dict[str, Any] | None]] = []
    if fns and choice != "none":
        user_text = _text(last.get("content")) if last.get("role") == "user" else ""
        calls = scripted_calls(user_text, declared)
        if isinstance(choice, dict):
            forced = choice["function"]["name"]
            calls = [c for c in calls if c[0] == forced][:1] or [(forced, None)]
        elif choice == "required" and not calls:
            calls = [(declared[0], None)]
        if body.get("parallel_tool_calls") is False:
            calls = calls[:1]
    if calls:
        by_name = {f["name"]: f for f in fns}
        out = [
            {
                "id": "call_" + secrets.token_hex(12),
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": orjson.dumps(
                        args
                        if args is not None
                        else args_from_schema(by_name[name].get("parameters"))
                    ).decode(),
                },
            }
            for name, args in calls
        ]
        return {"text": None, "calls": out, "finish": "tool_calls"}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    n = _DEFAULT_WORDS if limit is None else min(limit, _DEFAULT_WORDS)
    text = " ".join(words(transcript, n, state.seed))
    finish = "length" if limit is not None and limit < _DEFAULT_WORDS else "stop"
    return {"text": text, "calls": [], "finish": finish}


def _trailing_tools(msgs: list[dict[str, Any]]) -> int:
    n = 0
    for m in reversed(msgs):
        if m.get("role") != "tool":
            break
        n += 1
    return n


def usage(state: SimState, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """Usage with cached prompt tokens, OpenAI's shape."""
    prompt_text = orjson.dumps([body.get("tools"), body["messages"]]).decode()
    prompt = tokens_of(prompt_text)
    cached = cached_tokens(state, prompt_text)
    out_text = answer["text"] or orjson.dumps(answer["calls"]).decode()
    completion = len(answer["text"].split()) if answer["text"] else tokens_of(out_text)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


async def chat(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat/completions``."""
    state = request.app[STATE]
    raw = await request.read()
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    record(state, request, body)
    try:
        _check_key(state, request)
        fault = await apply_fault(state, error_response)
        if fault is not None:
            return fault
        model, fns = validate(state, body)
    except ApiError as err:
        return _render(err)
    answer = plan(state, body, fns)
    use = usage(state, body, answer)
    cid = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    if not body.get("stream"):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer["text"],
            "refusal": None,
            "annotations": [],
        }
        if answer["calls"]:
            message["tool_calls"] = answer["calls"]
        doc = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": answer["finish"],
                }
            ],
            "usage": use,
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
        }
        return web.json_response(doc)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await resp.prepare(request)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        doc: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_sim",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            doc["usage"] = None
        return sse(doc)

    await resp.write(chunk({"role": "assistant", "content": "", "refusal": None}))
    if answer["text"]:
        for i, w in enumerate(answer["text"].split(" ")):
            await resp.write(chunk({"content": w if i == 0 else " " + w}))
    for i, call in enumerate(answer["calls"]):
        args = call["function"]["arguments"]
        head = {
            "index": i,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        await resp.write(chunk({"tool_calls": [head]}))
        for k in range(0, len(args), _ARG_FRAGMENT):
            piece = {"index": i, "function": {"arguments": args[k : k + _ARG_FRAGMENT]}}
            await resp.write(chunk({"tool_calls": [piece]}))
    await resp.write(chunk({}, answer["finish"]))
    if include_usage:
        doc = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_sim",
            "choices": [],
            "usage": use,
        }
        await resp.write(sse(doc))
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def models(request: web.Request) -> web.Response:
    """``GET /v1/models`` and ``GET /v1/models/{id}``."""
    state = request.app[STATE]
    try:
        _check_key(state, request)
    except ApiError as err:
        return _render(err)
    cards = [
        {"id": m, "object": "model", "created": 1700000000, "owned_by": "sim"} for m in state.models
    ]
    one = request.match_info.get("model")
    if one is None:
        return web.json_response({"object": "list", "data": cards})
    for c in cards:
        if c["id"] == one:
            return web.json_response(c)
    return _render(
        ApiError(404, f"The model '{one}' does not exist", param="model", code="model_not_found")
    )


def build_app(state: SimState) -> web.Application:
    """The simulated OpenAI API."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model}", models)
    control_routes(app)
    return app
