"""The Gemini dialect at the gateway's edge: Gemini requests in, Gemini answers out.

``/v1beta/models/{model}:generateContent`` (and ``:streamGenerateContent``, ``/v1/…``)
bodies become OpenAI chat requests, so any cluster serves Gemini clients (HTTP-mode
engines, gRPC mode, OpenAI, Anthropic, or Gemini itself); the OpenAI answer is written
back as a ``GenerateContentResponse`` (SSE events for a stream).

In: ``systemInstruction`` → a system message; ``model`` turns → assistant messages
(``functionCall`` parts → ``tool_calls``, the call's ``id`` or ``call_<turn>_<n>``);
``functionResponse`` parts → tool messages answering the matching call (by id, else by
name in order); ``inlineData`` / ``fileData`` → ``image_url`` parts; declarations →
``tools`` (Gemini's schema back to JSON Schema); ``functionCallingConfig`` → ``tool_choice``;
``generationConfig`` → sampling and ``response_format``. Out: the reverse of
``response.py`` (``finish_reason`` → ``finishReason``, usage → ``usageMetadata``); a
streamed tool call is sent as one whole ``functionCall`` once its arguments are complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from smg.errors import BadRequest

_FINISH: Final = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
_SAMPLING: Final = (
    ("temperature", "temperature"),
    ("topP", "top_p"),
    ("topK", "top_k"),
    ("candidateCount", "n"),
    ("maxOutputTokens", "max_tokens"),
    ("seed", "seed"),
    ("presencePenalty", "presence_penalty"),
    ("frequencyPenalty", "frequency_penalty"),
)


def to_json_schema(schema: Any) -> Any:
    """Gemini's ``Schema`` (upper-case types, ``nullable``) as JSON Schema."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k == "type" and isinstance(v, str):
            out[k] = v.lower()
        elif k == "properties" and isinstance(v, dict):
            out[k] = {name: to_json_schema(s) for name, s in v.items()}
        elif k in ("items", "anyOf"):
            out[k] = to_json_schema(v)
        elif k not in ("nullable", "propertyOrdering"):
            out[k] = v
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        raise BadRequest(f"{where}.parts must not be empty.", param=f"{where}.parts")
    for i, p in enumerate(parts):
        if not isinstance(p, dict):
            raise BadRequest(f"{where}.parts[{i}] must be an object.", param=f"{where}.parts[{i}]")
    return parts


def _user_content(parts: list[dict[str, Any]], where: str) -> str | list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for i, p in enumerate(parts):
        if "text" in p:
            items.append({"type": "text", "text": str(p["text"])})
        elif isinstance(p.get("inlineData"), dict):
            d = p["inlineData"]
            url = f"data:{d.get('mimeType', 'application/octet-stream')};base64,{d.get('data', '')}"
            items.append({"type": "image_url", "image_url": {"url": url}})
        elif isinstance(p.get("fileData"), dict):
            items.append({"type": "image_url", "image_url": {"url": p["fileData"].get("fileUri")}})
        else:
            raise BadRequest(
                f"{where}.parts[{i}]: this part type is not supported by the gateway.",
                param=f"{where}.parts[{i}]",
            )
    if all(it["type"] == "text" for it in items):
        return "".join(it["text"] for it in items)
    return items


@dataclass(slots=True)
class _Calls:
    """Function calls of the last model turn, waiting for their responses."""

    open: list[tuple[str, str]] = field(default_factory=list)  # (id, name)

    def answer(self, fr: dict[str, Any], where: str) -> str:
        want = fr.get("id")
        for k, (cid, name) in enumerate(self.open):
            if (want and cid == want) or (not want and name == fr.get("name")):
                del self.open[k]
                return cid
        raise BadRequest(
            f"{where}: this function response answers no function call of the previous turn.",
            param=where,
        )


def _messages(doc: dict[str, Any]) -> list[dict[str, Any]]:
    contents = doc.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("contents is not specified.", param="contents")
    messages: list[dict[str, Any]] = []
    si = doc.get("systemInstruction")
    if si is not None:
        text = "".join(str(p.get("text", "")) for p in _parts(si, "systemInstruction"))
        messages.append({"role": "system", "content": text})
    calls = _Calls()
    for t, content in enumerate(contents):
        where = f"contents[{t}]"
        role = content.get("role", "user") if isinstance(content, dict) else None
        parts = _parts(content, where)
        if role == "model":
            text = "".join(str(p["text"]) for p in parts if "text" in p and not p.get("thought"))
            msg: dict[str, Any] = {"role": "assistant", "content": text or None}
            tool_calls = []
            calls.open = []
            for j, p in enumerate(pp for pp in parts if isinstance(pp.get("functionCall"), dict)):
                fc = p["functionCall"]
                cid = str(fc.get("id") or f"call_{t}_{j}")
                name = str(fc.get("name", ""))
                calls.open.append((cid, name))
                args = orjson.dumps(fc.get("args") or {}).decode()
                tool_calls.append(
                    {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                )
            if tool_calls:
                msg["tool_calls"] = tool_calls
            messages.append(msg)
        elif role == "user":
            others = []
            for j, p in enumerate(parts):
                fr = p.get("functionResponse")
                if isinstance(fr, dict):
                    cid = calls.answer(fr, f"{where}.parts[{j}].functionResponse")
                    result = orjson.dumps(fr.get("response", {})).decode()
                    messages.append({"role": "tool", "tool_call_id": cid, "content": result})
                else:
                    others.append(p)
            if others:
                messages.append({"role": "user", "content": _user_content(others, where)})
        else:
            raise BadRequest("Please use a valid role: user, model.", param=f"{where}.role")
    return messages


def _tools(doc: dict[str, Any], body: dict[str, Any]) -> None:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(doc.get("tools") or ()):
        decls = tool.get("functionDeclarations") if isinstance(tool, dict) else None
        if not isinstance(decls, list):
            raise BadRequest(
                f"tools[{i}]: only functionDeclarations are served by the gateway.",
                param=f"tools[{i}]",
            )
        for d in decls:
            fn: dict[str, Any] = {"name": d.get("name")}
            if d.get("description"):
                fn["description"] = d["description"]
            params = d.get("parametersJsonSchema") or to_json_schema(d.get("parameters"))
            fn["parameters"] = params or {"type": "object", "properties": {}}
            tools.append({"type": "function", "function": fn})
    if tools:
        body["tools"] = tools
    tc = doc.get("toolConfig")
    fcc = tc.get("functionCallingConfig") if isinstance(tc, dict) else None
    if not isinstance(fcc, dict) or not tools:
        return
    mode = fcc.get("mode", "AUTO")
    names = fcc.get("allowedFunctionNames") or []
    if mode == "NONE":
        body["tool_choice"] = "none"
    elif mode in ("ANY", "VALIDATED") and len(names) == 1:
        body["tool_choice"] = {"type": "function", "function": {"name": names[0]}}
    elif mode in ("ANY", "VALIDATED") and names:
        body["tool_choice"] = {
            "type": "allowed_tools",
            "allowed_tools": {
                "mode": "required",
                "tools": [{"type": "function", "function": {"name": n}} for n in names],
            },
        }
    elif mode in ("ANY", "VALIDATED"):
        body["tool_choice"] = "required"
    else:
        body["tool_choice"] = "auto"


def _generation(doc: dict[str, Any], body: dict[str, Any]) -> None:
    gen = doc.get("generationConfig")
    if not isinstance(gen, dict):
        return
    for theirs, ours in _SAMPLING:
        if gen.get(theirs) is not None:
            body[ours] = gen[theirs]
    stops = gen.get("stopSequences")
    if stops:
        body["stop"] = stops
    if gen.get("responseMimeType") == "application/json":
        schema = gen.get("responseJsonSchema") or to_json_schema(gen.get("responseSchema"))
        if schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema},
            }
        else:
            body["response_format"] = {"type": "json_object"}


def to_openai(model: str, stream: bool, doc: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat body for a Gemini ``generateContent`` body."""
    body: dict[str, Any] = {"model": model, "messages": _messages(doc)}
    _tools(doc, body)
    _generation(doc, body)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def usage_metadata(usage: Any) -> dict[str, Any]:
    """OpenAI ``usage`` as Gemini ``usageMetadata``."""
    u = usage if isinstance(usage, dict) else {}
    prompt = int(u.get("prompt_tokens") or 0)
    completion = int(u.get("completion_tokens") or 0)
    details = u.get("completion_tokens_details") or {}
    thoughts = int(details.get("reasoning_tokens") or 0) if isinstance(details, dict) else 0
    cached_d = u.get("prompt_tokens_details") or {}
    cached = int(cached_d.get("cached_tokens") or 0) if isinstance(cached_d, dict) else 0
    meta: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": completion - thoughts,
        "totalTokenCount": int(u.get("total_tokens") or prompt + completion),
    }
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    if cached:
        meta["cachedContentTokenCount"] = cached
    return meta


def _call_part(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    raw = fn.get("arguments") or "{}"
    try:
        args = orjson.loads(raw)
    except orjson.JSONDecodeError:
        args = {"arguments": raw}
    fc: dict[str, Any] = {
        "name": fn.get("name", ""),
        "args": args if isinstance(args, dict) else {},
    }
    if call.get("id"):
        fc["id"] = call["id"]
    return {"functionCall": fc}


def from_chat_completion(doc: dict[str, Any], model: str | None) -> dict[str, Any]:
    """A ``chat.completion`` as a ``GenerateContentResponse``."""
    candidates = []
    for choice in doc.get("choices") or ():
        msg = choice.get("message") or {}
        parts: list[dict[str, Any]] = []
        if msg.get("reasoning_content"):
            parts.append({"text": msg["reasoning_content"], "thought": True})
        if msg.get("content"):
            parts.append({"text": msg["content"]})
        parts.extend(_call_part(c) for c in msg.get("tool_calls") or ())
        candidates.append(
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": _FINISH.get(choice.get("finish_reason") or "stop", "OTHER"),
                "index": choice.get("index", 0),
            }
        )
    rid = str(doc.get("id") or "").removeprefix("chatcmpl-")
    return {
        "candidates": candidates,
        "usageMetadata": usage_metadata(doc.get("usage")),
        "modelVersion": doc.get("model") or model,
        "responseId": rid,
    }


def event(doc: dict[str, Any]) -> bytes:
    """One Gemini SSE event (Google ends them with CRLF CRLF)."""
    return b"data: " + orjson.dumps(doc) + b"\r\n\r\n"


class ChunksToGemini:
    """OpenAI ``chat.completion.chunk`` events → Gemini stream events.

    Text goes out as it comes; tool calls are collected until their choice finishes and
    then sent whole (Gemini clients expect complete ``functionCall`` objects); the last
    event carries every finish reason and the usage.
    """

    def __init__(self, model: str | None) -> None:
        self.model = model
        self.rid = ""
        self._calls: dict[int, dict[int, dict[str, Any]]] = {}
        self._finished: dict[int, str] = {}
        self._usage: Any = None
        self.ended = False

    def _doc(self, candidates: list[dict[str, Any]]) -> dict[str, Any]:
        return {"candidates": candidates, "modelVersion": self.model, "responseId": self.rid}

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """The Gemini events one OpenAI chunk becomes."""
        if chunk.get("id") and not self.rid:
            self.rid = str(chunk["id"]).removeprefix("chatcmpl-")
        if chunk.get("model"):
            self.model = chunk["model"]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        out: list[bytes] = []
        for choice in chunk.get("choices") or ():
            idx = int(choice.get("index") or 0)
            delta = choice.get("delta") or {}
            parts: list[dict[str, Any]] = []
            if delta.get("reasoning_content"):
                parts.append({"text": delta["reasoning_content"], "thought": True})
            if delta.get("content"):
                parts.append({"text": delta["content"]})
            for tc in delta.get("tool_calls") or ():
                slot = self._calls.setdefault(idx, {}).setdefault(
                    int(tc.get("index") or 0), {"id": "", "function": {"name": "", "arguments": ""}}
                )
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            if parts:
                cand = {"content": {"role": "model", "parts": parts}, "index": idx}
                out.append(event(self._doc([cand])))
            if choice.get("finish_reason"):
                self._finished[idx] = choice["finish_reason"]
        return b"".join(out)

    def end(self) -> bytes:
        """The closing event: whole tool calls, finish reasons, usage."""
        self.ended = True
        candidates = []
        for idx in sorted(set(self._finished) | set(self._calls)):
            calls = self._calls.get(idx, {})
            parts = [_call_part(calls[k]) for k in sorted(calls)] or [{"text": ""}]
            candidates.append(
                {
                    "content": {"role": "model", "parts": parts},
                    "finishReason": _FINISH.get(self._finished.get(idx, "stop"), "OTHER"),
                    "index": idx,
                }
            )
        doc = self._doc(candidates)
        doc["usageMetadata"] = usage_metadata(self._usage)
        return event(doc)
