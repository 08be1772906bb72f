"""Whole answers both ways: Anthropic ``message`` ⇄ OpenAI ``chat.completion``.

Content order on the Anthropic side is thinking, text, tool uses (what Claude emits);
on the OpenAI side thinking is ``reasoning_content``, text is ``content`` (null when the
answer is only tool calls) and tool uses are ``tool_calls`` with the input as a JSON
string. Tool call ids are kept as they are in both directions, so a client can send a
result back under the id it was given.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from smg.errors import UpstreamError
from smg.protocol.anthropic.shapes import (
    finish_reason,
    stop_reason,
    usage_from_openai,
    usage_to_openai,
)


def message_to_openai(msg: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """An Anthropic ``message`` as an OpenAI ``chat.completion``."""
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in msg.get("content") or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "thinking":
            thinking.append(str(block.get("thinking", "")))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if calls:
        message["tool_calls"] = calls
        if not texts:
            message["content"] = None
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    return {
        "id": msg.get("id"),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": msg.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(msg.get("stop_reason")) or "stop",
            }
        ],
        "usage": usage_to_openai(msg.get("usage")),
    }


def tool_input(arguments: Any, name: Any) -> dict[str, Any]:
    """Tool call arguments (a JSON string) as a tool_use ``input`` object."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise UpstreamError(
            f"The model called tool {name!r} with arguments that are not a JSON object: "
            f"{str(arguments)[:200]!r}."
        )
    return parsed


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def openai_to_message(doc: dict[str, Any], model: str | None) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` as an Anthropic ``message`` (first choice)."""
    choices = doc.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = _text(msg.get("content")) or (msg.get("refusal") or "")
    if text:
        content.append({"type": "text", "text": text})
    for i, call in enumerate(msg.get("tool_calls") or ()):
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{i:02d}",
                "name": fn.get("name") or "",
                "input": tool_input(fn.get("arguments"), fn.get("name")),
            }
        )
    reason, sequence = stop_reason(choice.get("finish_reason"), choice.get("stop_reason"))
    rid = str(doc.get("id") or "")
    return {
        "id": rid if rid.startswith("msg_") else f"msg_{rid}",
        "type": "message",
        "role": "assistant",
        "model": doc.get("model") or model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage_from_openai(doc.get("usage")),
    }
