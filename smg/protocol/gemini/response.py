"""Gemini ``GenerateContentResponse`` → OpenAI ``chat.completion``.

* ``finishReason``: STOP → ``stop`` (``tool_calls`` when the turn called functions),
  MAX_TOKENS → ``length``, SAFETY / RECITATION / BLOCKLIST / PROHIBITED_CONTENT / SPII /
  IMAGE_* → ``content_filter``, anything else → ``stop``. A prompt refused outright
  (``promptFeedback.blockReason``, no candidates) is one ``content_filter`` choice with
  no content.
* ``functionCall`` parts → ``tool_calls`` (Gemini's call id if it sent one, else a new
  ``call_…`` id; arguments re-encoded as a JSON string); ``thought`` parts →
  ``reasoning_content``.
* ``usageMetadata`` → ``usage``: completion tokens include thinking tokens (as OpenAI
  counts reasoning), ``cachedContentTokenCount`` → ``prompt_tokens_details.cached_tokens``,
  ``thoughtsTokenCount`` → ``completion_tokens_details.reasoning_tokens``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Final

import orjson

SignatureSink = Callable[[str, str], None]
"""Told (tool-call id, thoughtSignature) for each signed call, to replay it later."""

_FILTERED: Final = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)


def finish_reason(reason: Any, called: bool) -> str:
    """OpenAI's ``finish_reason`` for a Gemini ``finishReason``."""
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called else "stop"


def usage(meta: Any) -> dict[str, Any]:
    """OpenAI ``usage`` for Gemini ``usageMetadata``."""
    m = meta if isinstance(meta, dict) else {}
    prompt = int(m.get("promptTokenCount") or 0) + int(m.get("toolUsePromptTokenCount") or 0)
    thoughts = int(m.get("thoughtsTokenCount") or 0)
    completion = int(m.get("candidatesTokenCount") or 0) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(m.get("totalTokenCount") or prompt + completion),
        "prompt_tokens_details": {"cached_tokens": int(m.get("cachedContentTokenCount") or 0)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def new_call_id() -> str:
    """A tool-call id in OpenAI's style."""
    return "call_" + secrets.token_hex(12)


def tool_call(part: dict[str, Any], sink: SignatureSink | None) -> dict[str, Any]:
    """An OpenAI tool call for a ``functionCall`` part (its signature handed to ``sink``)."""
    fc = part["functionCall"]
    cid = fc.get("id")
    call_id = cid if isinstance(cid, str) and cid else new_call_id()
    sig = part.get("thoughtSignature")
    if sink is not None and isinstance(sig, str) and sig:
        sink(call_id, sig)
    args = fc.get("args")
    return {
        "id": call_id,
        "type": "function",
        "function": {
            "name": str(fc.get("name", "")),
            "arguments": orjson.dumps(args if isinstance(args, dict) else {}).decode(),
        },
    }


def split_parts(
    parts: Any, sink: SignatureSink | None
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(text pieces, thought pieces, tool calls) of a candidate's parts."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            calls.append(tool_call(part, sink))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
    return texts, thoughts, calls


def completion_id(doc: dict[str, Any]) -> str:
    """``chatcmpl-…`` from Gemini's response id (or a new one)."""
    rid = doc.get("responseId")
    return (
        f"chatcmpl-{rid}" if isinstance(rid, str) and rid else f"chatcmpl-{secrets.token_hex(12)}"
    )


def to_chat_completion(
    doc: dict[str, Any], model: str, sink: SignatureSink | None = None
) -> dict[str, Any]:
    """The ``chat.completion`` for a whole Gemini answer."""
    choices: list[dict[str, Any]] = []
    for pos, cand in enumerate(doc.get("candidates") or ()):
        if not isinstance(cand, dict):
            continue
        content = cand.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        texts, thoughts, calls = split_parts(parts, sink)
        reason = finish_reason(cand.get("finishReason"), bool(calls))
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
        if message["content"] is None and not calls and reason != "content_filter":
            message["content"] = ""
        if thoughts:
            message["reasoning_content"] = "".join(thoughts)
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": int(cand.get("index", pos) or 0),
                "message": message,
                "logprobs": None,
                "finish_reason": reason,
            }
        )
    if not choices:
        # No candidate: the prompt itself was blocked (promptFeedback.blockReason).
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": _block(doc)},
                "logprobs": None,
                "finish_reason": "content_filter",
            }
        )
    return {
        "id": completion_id(doc),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(doc.get("modelVersion") or model),
        "choices": choices,
        "usage": usage(doc.get("usageMetadata")),
    }


def _block(doc: dict[str, Any]) -> str | None:
    fb = doc.get("promptFeedback")
    reason = fb.get("blockReason") if isinstance(fb, dict) else None
    return f"The prompt was blocked by Gemini ({reason})." if reason else None
