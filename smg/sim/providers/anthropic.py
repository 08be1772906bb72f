"""``smg sim --provider anthropic``: a simulated Anthropic Messages API.

Follows the wire format of ``api.anthropic.com`` (the checks live in
``anthropic_rules.py``): ``x-api-key`` (or, as newer SDKs send
it, ``Authorization: Bearer``) required (401
``authentication_error``), ``anthropic-version`` required (400), unknown models 404
``not_found_error``; the body is checked as the API checks it, each rejection a 400
``invalid_request_error`` naming the field: required ``model`` / ``max_tokens`` /
``messages``, unknown top-level fields, roles other than user / assistant (a
``system`` role gets the API's own hint), block types per role, empty text blocks,
``tool_result`` without a matching ``tool_use`` in the previous assistant turn and
``tool_use`` left without its result, ``tool_choice`` types (``tool`` must name a
declared tool; none without tools), sampling ranges, ``thinking`` budgets.

Answers are deterministic (``common.py``: the same words, scripted ``call NAME {json}``
tool calls and tool-result echoes as the other provider simulators); ``stop_sequences``
cut the text (``stop_sequence``), a small ``max_tokens`` cuts it (``max_tokens``),
``thinking`` adds a thinking block. The prompt up to its last ``cache_control``
breakpoint is cached (no minimum length): the first request sees
``cache_creation_input_tokens``, repeats ``cache_read_input_tokens``. Streams send
``message_start``, ``ping``, per block ``content_block_start`` / deltas (``text_delta``,
``thinking_delta`` + ``signature_delta``, ``input_json_delta`` fragments starting with
an empty one) / ``content_block_stop``, ``message_delta``, ``message_stop``. Faults (``/sim/fault``)
answer in Anthropic's error shape (429 ``rate_limit_error`` with ``retry-after``, 529
``overloaded_error``, 500 ``api_error``); ``POST /sim/stream_error {"type", "after",
"times"}`` makes the next streams send an ``error`` event in place of event ``after``
(0: instead of ``message_start``, after the 200 head).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web

from smg.sim.providers.anthropic_rules import ApiError, check_headers, error_response, validate
from smg.sim.providers.common import (
    STATE,
    SimState,
    apply_fault,
    args_from_schema,
    control_routes,
    record,
    scripted_calls,
    tokens_of,
    words,
)

_DEFAULT_WORDS: Final = 12
_ARG_FRAGMENT: Final = 7


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if isinstance(b, dict) and b.get("type") == "text":
                parts.append(str(b.get("text", "")))
            elif isinstance(b, dict) and b.get("type") == "tool_result":
                parts.append(_text(b.get("content", "")))
        return "".join(parts)
    return ""


def plan(state: SimState, body: dict[str, Any], fns: list[dict[str, Any]]) -> dict[str, Any]:
    """What to answer: content blocks, ``stop_reason`` and ``stop_sequence``."""
    msgs = body["messages"]
    last = msgs[-1]
    content = last.get("content")
    results = (
        [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if last.get("role") == "user" and isinstance(content, list)
        else []
    )
    if results:
        names = {
            b.get("id"): b.get("name")
            for m in msgs
            if m.get("role") == "assistant" and isinstance(m.get("content"), list)
            for b in m["content"]
            if isinstance(b, dict) and b.get("type") == "tool_use"
        }
        text = " ".join(
            f"Tool {names.get(r.get('tool_use_id'), '?')} returned: {_text(r.get('content', ''))}"
            for r in results
        )
        return {"blocks": [{"type": "text", "text": text}], "stop": "end_turn", "seq": None}
    choice = body.get("tool_choice") or {}
    calls: list[tuple[str, dict[str, Any] | None]] = []
    if fns and choice.get("type") != "none":
        declared = [f["name"] for f in fns]
        user_text = _text(content) if last.get("role") == "user" else ""
        calls = scripted_calls(user_text, declared)
        if choice.get("type") == "tool":
            forced = choice["name"]
            calls = [c for c in calls if c[0] == forced][:1] or [(forced, None)]
        elif choice.get("type") == "any" and not calls:
            calls = [(declared[0], None)]
        if choice.get("disable_parallel_tool_use"):
            calls = calls[:1]
    blocks: list[dict[str, Any]] = []
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        blocks.append(
            {"type": "thinking", "thinking": "Let me think this through.", "signature": "sig-sim"}
        )
    if calls:
        schemas = {f["name"]: f.get("input_schema") for f in fns}
        for name, args in calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": "toolu_" + secrets.token_hex(12),
                    "name": name,
                    "input": args if args is not None else args_from_schema(schemas[name]),
                }
            )
        return {"blocks": blocks, "stop": "tool_use", "seq": None}
    limit = body["max_tokens"]
    n = min(limit, _DEFAULT_WORDS)
    text = " ".join(words(orjson.dumps(msgs).decode(), n, state.seed))
    stop, seq = ("max_tokens" if limit < _DEFAULT_WORDS else "end_turn"), None
    for s in body.get("stop_sequences") or ():
        at = text.find(s)
        if at >= 0:
            text, stop, seq = text[:at], "stop_sequence", s
            break
    if text:
        blocks.append({"type": "text", "text": text})
    return {"blocks": blocks, "stop": stop, "seq": seq}


def _cache_prefix(body: dict[str, Any]) -> bytes | None:
    """The prompt up to its last ``cache_control`` breakpoint (tools, system, messages)."""
    items: list[Any] = list(body.get("tools") or ())
    system = body.get("system")
    items.extend(system if isinstance(system, list) else [system] if system else [])
    for m in body["messages"]:
        content = m.get("content")
        items.append(m.get("role"))
        items.extend(content if isinstance(content, list) else [content])
    marks = [i for i, it in enumerate(items) if isinstance(it, dict) and "cache_control" in it]
    return orjson.dumps(items[: marks[-1] + 1]) if marks else None


def usage(state: SimState, body: dict[str, Any], blocks: list[dict[str, Any]]) -> dict[str, int]:
    """Usage; the prompt up to its last ``cache_control`` breakpoint is cached once seen."""
    msgs = body["messages"]
    prompt = tokens_of(orjson.dumps([body.get("system"), body.get("tools"), msgs]).decode())
    created = read = 0
    prefix = _cache_prefix(body)
    if prefix is not None:
        size = min(tokens_of(prefix.decode()), prompt)
        key = hashlib.blake2b(prefix, digest_size=16).digest()
        if key in state.seen_blocks:
            read = size
        else:
            state.seen_blocks.add(key)
            created = size
    out = 0
    for b in blocks:
        if b["type"] == "text":
            out += len(b["text"].split())
        elif b["type"] == "thinking":
            out += tokens_of(b["thinking"])
        else:
            out += tokens_of(orjson.dumps(b["input"]).decode())
    return {
        "input_tokens": prompt - created - read,
        "output_tokens": max(out, 1),
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": read,
    }


async def _read(request: web.Request) -> Any:
    state = request.app[STATE]
    raw = await request.read()
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    record(state, request, body)
    check_headers(state, request)
    if body is None:
        raise ApiError(400, "Request body is not valid JSON")
    return body


def _event(kind: str, doc: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **doc}) + b"\n\n"


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    kind = block["type"]
    out: list[bytes] = []
    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
        pieces = block["text"].split(" ")
        deltas = [
            {"type": "text_delta", "text": w if i == 0 else " " + w} for i, w in enumerate(pieces)
        ]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": block["thinking"]},
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        args = orjson.dumps(block["input"]).decode()
        deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
            {"type": "input_json_delta", "partial_json": args[k : k + _ARG_FRAGMENT]}
            for k in range(0, len(args), _ARG_FRAGMENT)
        ]
    out.append(_event("content_block_start", {"index": index, "content_block": start}))
    out.extend(_event("content_block_delta", {"index": index, "delta": d}) for d in deltas)
    out.append(_event("content_block_stop", {"index": index}))
    return out


async def messages(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages``."""
    state = request.app[STATE]
    try:
        body = await _read(request)
        fault = await apply_fault(state, error_response)
        if fault is not None:
            return fault
        model, fns = validate(state, body)
    except ApiError as err:
        return error_response(err.status, err.message)
    answer = plan(state, body, fns)
    use = usage(state, body, answer["blocks"])
    mid = "msg_" + secrets.token_hex(12)
    rid = "req_" + secrets.token_hex(12)
    message = {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": answer["blocks"],
        "stop_reason": answer["stop"],
        "stop_sequence": answer["seq"],
        "usage": use,
    }
    if not body.get("stream"):
        return web.json_response(message, headers={"request-id": rid})
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "request-id": rid}
    )
    await resp.prepare(request)
    head = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    head["usage"] = {**use, "output_tokens": 1}
    events = [_event("message_start", {"message": head}), _event("ping", {})]
    for i, block in enumerate(answer["blocks"]):
        events.extend(_block_events(i, block))
    delta = {"stop_reason": answer["stop"], "stop_sequence": answer["seq"]}
    events.append(_event("message_delta", {"delta": delta, "usage": use}))
    events.append(_event("message_stop", {}))
    cut = _take_stream_fault(request.app[STREAM_FAULT])
    if cut is not None:
        kind, after = cut
        failure = {"error": {"type": kind, "message": "simulated stream error"}}
        events = [*events[:after], _event("error", failure)]
    for ev in events:
        await resp.write(ev)
    await resp.write_eof()
    return resp


@dataclass(slots=True)
class StreamFault:
    """An ``error`` event sent in place of event number ``after`` of the next streams."""

    kind: str = ""
    after: int = 0
    times: int = 0


STREAM_FAULT: web.AppKey[StreamFault] = web.AppKey("stream_fault", StreamFault)


def _take_stream_fault(f: StreamFault) -> tuple[str, int] | None:
    if f.times <= 0:
        return None
    f.times -= 1
    return f.kind, f.after


async def _set_stream_fault(request: web.Request) -> web.Response:
    """``POST /sim/stream_error {"type": "overloaded_error", "after": 0, "times": 1}``."""
    doc = await request.json() if request.can_read_body else {}
    f = request.app[STREAM_FAULT]
    f.kind = str(doc.get("type") or "overloaded_error")
    f.after = int(doc.get("after") or 0)
    f.times = int(doc.get("times") or 0)
    return web.json_response({"ok": True})


async def count_tokens(request: web.Request) -> web.Response:
    """``POST /v1/messages/count_tokens``."""
    state = request.app[STATE]
    try:
        body = await _read(request)
        validate(state, body, count_only=True)
    except ApiError as err:
        return error_response(err.status, err.message)
    prompt = orjson.dumps([body.get("system"), body.get("tools"), body["messages"]]).decode()
    return web.json_response({"input_tokens": tokens_of(prompt)})


async def models(request: web.Request) -> web.Response:
    """``GET /v1/models`` and ``GET /v1/models/{id}``."""
    state = request.app[STATE]
    try:
        check_headers(state, request)
    except ApiError as err:
        return error_response(err.status, err.message)
    cards = [
        {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
        for m in state.models
    ]
    one = request.match_info.get("model")
    if one is None:
        return web.json_response(
            {
                "data": cards,
                "has_more": False,
                "first_id": cards[0]["id"] if cards else None,
                "last_id": cards[-1]["id"] if cards else None,
            }
        )
    for c in cards:
        if c["id"] == one:
            return web.json_response(c)
    return error_response(404, f"model: {one}")


def build_app(state: SimState) -> web.Application:
    """The simulated Anthropic API."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model}", models)
    app[STREAM_FAULT] = StreamFault()
    app.router.add_post("/sim/stream_error", _set_stream_fault)
    control_routes(app)
    return app
