"""Tool calls from the HTTP engine simulator, shaped as vLLM's tool parsers return them.

Same script as the provider simulators (``smg/sim/providers/common.py``), so one
conversation gets the same calls from every simulated backend: with ``tools`` given,
``call NAME {json args}`` in the last user message calls NAME with exactly those
arguments; a named ``tool_choice`` calls that function (arguments made from its schema
when not scripted), ``required`` the first one; ``parallel_tool_calls: false`` keeps the
first call. When the conversation ends with tool results, the answer is
``Tool NAME returned: <result>`` (``finish_reason`` stop). These answers are written at
once, without the engine's simulated latency or KV cache: they exist for protocol tests.
"""

from __future__ import annotations

import time
from typing import Any, Final

import orjson

from smg.sim.engine import Engine
from smg.sim.http import HttpConnection, Request
from smg.sim.tokens import count_tokens, render_chat

_ARG_FRAGMENT: Final = 7


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _tool_results(msgs: list[Any]) -> str | None:
    """The echo of the trailing tool messages, or None if the conversation does not end so."""
    names = {
        c.get("id"): (c.get("function") or {}).get("name")
        for m in msgs
        if isinstance(m, dict) and m.get("role") == "assistant"
        for c in (m.get("tool_calls") or ())
        if isinstance(c, dict)
    }
    tail = []
    for m in reversed(msgs):
        if not isinstance(m, dict) or m.get("role") != "tool":
            break
        tail.append(
            f"Tool {names.get(m.get('tool_call_id'), '?')} returned: {_text(m.get('content'))}"
        )
    return " ".join(reversed(tail)) if tail else None


def plan(body: dict[str, Any]) -> dict[str, Any] | None:
    """``{"text", "calls"}`` when the script decides the answer, else None (engine text)."""
    msgs = body["messages"]
    echo = _tool_results(msgs)
    if echo is not None:
        return {"text": echo, "calls": []}
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice == "none":
        return None
    from smg.sim.providers.common import args_from_schema, scripted_calls

    fns = {
        t["function"]["name"]: t["function"]
        for t in tools
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and "name" in t["function"]
    }
    declared = list(fns)
    last = msgs[-1] if isinstance(msgs[-1], dict) else {}
    user_text = _text(last.get("content")) if last.get("role") == "user" else ""
    calls = scripted_calls(user_text, declared)
    if isinstance(choice, dict):
        forced = (choice.get("function") or {}).get("name")
        calls = [c for c in calls if c[0] == forced][:1]
        if not calls and isinstance(forced, str) and forced in fns:
            calls = [(forced, None)]
    elif choice == "required" and not calls and declared:
        calls = [(declared[0], None)]
    if body.get("parallel_tool_calls") is False:
        calls = calls[:1]
    if not calls:
        return None
    return {
        "text": None,
        "calls": [
            (name, args if args is not None else args_from_schema(fns[name].get("parameters")))
            for name, args in calls
        ],
    }


def answer(
    engine: Engine, req: Request, conn: HttpConnection, body: dict[str, Any], p: Any
) -> None:
    """Write the scripted answer as ``chat.completion`` or as chunks."""
    seq = engine.next_seq()
    rid = f"chatcmpl-{engine.port:x}{seq:010x}"
    model = body.get("model") or engine.cfg.model
    created = int(time.time())
    calls: list[dict[str, Any]] = [
        {
            "id": f"chatcmpl-tool-{engine.port:x}{seq:08x}{i:02d}",
            "type": "function",
            "function": {"name": name, "arguments": orjson.dumps(args).decode()},
        }
        for i, (name, args) in enumerate(p["calls"])
    ]
    finish = "tool_calls" if calls else "stop"
    prompt = count_tokens(render_chat(body["messages"]).encode())
    out_text = p["text"] or "".join(c["function"]["arguments"] for c in calls)
    completion = count_tokens(out_text.encode())
    usage = {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": p["text"], "tool_calls": calls}
        doc = {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish,
                    "stop_reason": None,
                }
            ],
            "usage": usage,
        }
        conn.send(200, orjson.dumps(doc))
        return

    def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
        doc = {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
        }
        return b"data: " + orjson.dumps(doc) + b"\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    if p["text"]:
        words = p["text"].split(" ")
        parts += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    for i, call in enumerate(calls):
        args = call["function"]["arguments"]
        head = {**call, "index": i, "function": {"name": call["function"]["name"], "arguments": ""}}
        parts.append(chunk({"tool_calls": [head]}))
        parts += [
            chunk(
                {
                    "tool_calls": [
                        {"index": i, "function": {"arguments": args[k : k + _ARG_FRAGMENT]}}
                    ]
                }
            )
            for k in range(0, len(args), _ARG_FRAGMENT)
        ]
    parts.append(chunk({}, finish))
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        tail = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
        parts.append(b"data: " + orjson.dumps({**tail, "choices": [], "usage": usage}) + b"\n\n")
    conn.start_stream()
    for part in parts:
        conn.write(part)
    conn.end_stream(b"data: [DONE]\n\n")
