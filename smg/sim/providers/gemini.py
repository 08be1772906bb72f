"""``smg sim --provider gemini``: a simulated Gemini API (``generativelanguage`` v1/v1beta).

``POST /{version}/models/{model}:generateContent`` and ``:streamGenerateContent``
(``?alt=sse``: SSE events of partial ``GenerateContentResponse``; without it a JSON
array), ``GET /{version}/models``. The key comes as ``x-goog-api-key`` (or ``?key=``):
missing → 403 ``PERMISSION_DENIED``, wrong → 400 ``API_KEY_INVALID``, as Google answers.

Rejected like the real API (``gemini_rules.py``; errors as ``{"error": {"code",
"message", "status"}}``): unknown field names anywhere in the request
(``additionalProperties`` in a schema included), empty ``contents`` or ``parts``, roles
other than ``user``/``model``, a function-response turn that does not follow a
function-call turn (or answers a different number of calls), a function-call turn not
after a user or function-response turn, object parameters with no properties,
unsupported ``format`` values, ``allowedFunctionNames`` without mode ANY or naming
undeclared functions, and — for ``gemini-3*`` models — a replayed functionCall without
its ``thoughtSignature``. ``SIM_BLOCK_PROMPT`` in the prompt blocks it
(``promptFeedback.blockReason``); ``SIM_UNSAFE`` ends the answer with ``SAFETY``.
"""

from __future__ import annotations

import secrets
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
from smg.sim.providers.gemini_rules import STATUS, ApiError, signature, validate

VERSIONS: Final = ("v1", "v1beta", "v1alpha")
_DEFAULT_WORDS: Final = 12
_WORDS_PER_EVENT: Final = 3


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """``{"error": {"code", "message", "status"}}`` (used for injected faults too)."""
    err: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUS.get(status, "UNKNOWN"),
    }
    if status == 429 and headers and "retry-after" in headers:
        err["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{headers['retry-after']}s",
            }
        ]
    return web.json_response({"error": err}, status=status, headers=headers)


def _render(err: ApiError) -> web.Response:
    doc: dict[str, Any] = {
        "code": err.status,
        "message": err.message,
        "status": STATUS.get(err.status, "UNKNOWN"),
    }
    if err.details:
        doc["details"] = err.details
    return web.json_response({"error": doc}, status=err.status)


def _check_key(state: SimState, request: web.Request) -> None:
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if not key:
        raise ApiError(
            403,
            "Method doesn't allow unregistered callers (callers without established identity)."
            " Please use API Key or other form of API consumer identity to call this API.",
        )
    if key != state.api_key:
        raise ApiError(
            400,
            "API key not valid. Please pass a valid API key.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                }
            ],
        )


def _user_text(content: dict[str, Any]) -> str:
    return "".join(str(p.get("text", "")) for p in content["parts"] if "text" in p)


def plan(
    state: SimState, body: dict[str, Any], model: str, decls: list[dict[str, Any]]
) -> dict[str, Any]:
    """``{"parts", "finish", "blocked"}`` — what to answer, deterministically."""
    contents = body["contents"]
    last = contents[-1]
    transcript = orjson.dumps(contents).decode()
    all_text = transcript + orjson.dumps(body.get("systemInstruction")).decode()
    if "SIM_BLOCK_PROMPT" in all_text:
        return {"parts": [], "finish": None, "blocked": "SAFETY"}
    responses = [p["functionResponse"] for p in last["parts"] if "functionResponse" in p]
    if responses:
        text = " ".join(
            f"Tool {r.get('name')} returned: {orjson.dumps(r.get('response')).decode()}"
            for r in responses
        )
        return {"parts": [{"text": text}], "finish": "STOP", "blocked": None}
    fcc = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = fcc.get("mode", "AUTO")
    declared = [d["name"] for d in decls]
    allowed = fcc.get("allowedFunctionNames") or declared
    calls: list[tuple[str, Any]] = []
    if decls and mode != "NONE":
        calls = [c for c in scripted_calls(_user_text(last), declared) if c[0] in allowed]
        if mode == "ANY" and not calls:
            calls = [(allowed[0], None)]
    if calls:
        by_name = {d["name"]: d for d in decls}
        parts = []
        for i, (name, args) in enumerate(calls):
            if args is None:
                args = args_from_schema(by_name[name].get("parameters"))
            part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
            if model.startswith("gemini-3") and i == 0:
                part["thoughtSignature"] = signature(name, args)
            parts.append(part)
        return {"parts": parts, "finish": "STOP", "blocked": None}
    gen = body.get("generationConfig") or {}
    limit = gen.get("maxOutputTokens")
    n = _DEFAULT_WORDS if limit is None else min(limit, _DEFAULT_WORDS)
    text = " ".join(words(transcript, n, state.seed))
    finish = "MAX_TOKENS" if limit is not None and limit < _DEFAULT_WORDS else "STOP"
    if "SIM_UNSAFE" in all_text:
        finish = "SAFETY"
    return {"parts": [{"text": text}], "finish": finish, "blocked": None}


def usage(state: SimState, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """``usageMetadata`` (``cachedContentTokenCount`` only when something was cached)."""
    prompt_text = orjson.dumps(
        [body.get("systemInstruction"), body.get("tools"), body["contents"]]
    ).decode()
    prompt = tokens_of(prompt_text)
    cached = cached_tokens(state, prompt_text)
    out = sum(
        len(p["text"].split()) if "text" in p else tokens_of(orjson.dumps(p).decode())
        for p in answer["parts"]
    )
    meta: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": out,
        "totalTokenCount": prompt + out,
    }
    if cached:
        meta["cachedContentTokenCount"] = cached
    return meta


def _parse_target(request: web.Request) -> tuple[str, str]:
    version = request.match_info["version"]
    target = request.match_info["target"]
    model, sep, method = target.rpartition(":")
    if (
        version not in VERSIONS
        or not sep
        or method not in ("generateContent", "streamGenerateContent")
    ):
        raise ApiError(404, f"Method not found: {request.path}")
    return model, method


async def generate(request: web.Request) -> web.StreamResponse:
    """``POST /{version}/models/{model}:generateContent`` / ``:streamGenerateContent``."""
    state = request.app[STATE]
    raw = await request.read()
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    record(state, request, body)
    try:
        model, method = _parse_target(request)
        _check_key(state, request)
        fault = await apply_fault(state, error_response)
        if fault is not None:
            return fault
        if model not in state.models:
            raise ApiError(
                404,
                f"models/{model} is not found for API version {request.match_info['version']}, "
                "or is not supported for generateContent. Call ListModels to see the list of "
                "available models and their supported methods.",
            )
        if body is None:
            raise ApiError(400, "Invalid JSON payload received. Unexpected token.")
        decls = validate(body, model)
    except ApiError as err:
        return _render(err)
    answer = plan(state, body, model, decls)
    meta = usage(state, body, answer)
    rid = secrets.token_hex(8)
    if answer["blocked"]:
        doc = {
            "promptFeedback": {"blockReason": answer["blocked"]},
            "usageMetadata": {
                **meta,
                "candidatesTokenCount": 0,
                "totalTokenCount": meta["promptTokenCount"],
            },
            "modelVersion": model,
            "responseId": rid,
        }
        events = [doc]
    else:
        events = _events(answer, meta, model, rid, method == "streamGenerateContent")
    if method == "generateContent":
        return web.json_response(events[0])
    if request.query.get("alt") != "sse":
        return web.json_response(events)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for ev in events:
        await resp.write(sse(ev, b"\r\n\r\n"))
    await resp.write_eof()
    return resp


def _events(
    answer: dict[str, Any], meta: dict[str, Any], model: str, rid: str, stream: bool
) -> list[dict[str, Any]]:
    """The whole answer, or its stream events (text in small pieces, calls whole)."""

    def doc(parts: list[dict[str, Any]], finish: str | None, out_tokens: int) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            cand["finishReason"] = finish
        m = {
            **meta,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": meta["promptTokenCount"] + out_tokens,
        }
        return {"candidates": [cand], "usageMetadata": m, "modelVersion": model, "responseId": rid}

    parts = answer["parts"]
    total = meta["candidatesTokenCount"]
    if not stream:
        return [doc(parts, answer["finish"], total)]
    out: list[dict[str, Any]] = []
    if parts and "text" in parts[0]:
        ws = parts[0]["text"].split(" ")
        pieces = [
            " ".join(ws[i : i + _WORDS_PER_EVENT]) for i in range(0, len(ws), _WORDS_PER_EVENT)
        ]
        done = 0
        for k, piece in enumerate(pieces):
            text = piece if k == 0 else " " + piece
            done += len(piece.split())
            last = k == len(pieces) - 1
            out.append(doc([{"text": text}], answer["finish"] if last else None, done))
        return out
    return [doc(parts, answer["finish"], total)]


async def list_models(request: web.Request) -> web.Response:
    """``GET /{version}/models``."""
    state = request.app[STATE]
    try:
        if request.match_info["version"] not in VERSIONS:
            raise ApiError(404, f"Method not found: {request.path}")
        _check_key(state, request)
    except ApiError as err:
        return _render(err)
    cards = [
        {
            "name": f"models/{m}",
            "version": "001",
            "displayName": m,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
        for m in state.models
    ]
    cards.append(
        {
            "name": "models/sim-embedding",
            "version": "001",
            "supportedGenerationMethods": ["embedContent"],
        }
    )
    return web.json_response({"models": cards})


def build_app(state: SimState) -> web.Application:
    """The simulated Gemini API."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state
    app.router.add_get("/{version}/models", list_models)
    app.router.add_post("/{version}/models/{target}", generate)
    control_routes(app)
    return app
