"""Messages API request → OpenAI chat request: the ``/v1/messages`` ingress.

The body is checked as the Messages API checks it (required ``model``, ``max_tokens``,
``messages``; roles ``user`` / ``assistant``; typed content blocks; ``tool_choice``
types), and every rejection names the field in Anthropic's dotted form
(``messages.1.content.0.type``).

Translation: ``system`` → a system message; text and image blocks → content parts
(base64 sources become data URLs); ``tool_use`` blocks → assistant ``tool_calls`` with
the input as JSON arguments; ``tool_result`` blocks → ``tool`` messages placed before the
rest of their user turn (images inside a result follow in a user message); tools,
``tool_choice`` (auto / any → required / tool → named / none, and
``disable_parallel_tool_use``), ``stop_sequences``, sampling fields, ``metadata.user_id``.
A stream asks for usage (``stream_options.include_usage``) so the answer can report it.

Dropped as meaningless to an OpenAI-compatible server: ``cache_control``, ``thinking``
blocks of earlier turns, the ``thinking`` switch, ``citations``, ``service_tier``.
What cannot be expressed (documents, server tools, MCP servers, …) does not fail here:
it is recorded as the ``problem`` of the translation, so that a passthrough to an
``anthropic`` cluster still serves the request and any other cluster refuses it.
"""

from __future__ import annotations

from typing import Any

import orjson

from smg.errors import BadRequest
from smg.protocol.dialects import Decoded

_ROLES = ("user", "assistant")
_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_MAX_TOKENS_LIMIT = 16_777_216


def _bad(path: str, message: str) -> BadRequest:
    return BadRequest(f"{path}: {message}", param=path)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


class _Translation:
    """State of one translation: the first thing only a passthrough could serve."""

    def __init__(self) -> None:
        self.problem: BadRequest | None = None

    def unsupported(self, path: str, what: str) -> None:
        if self.problem is None:
            self.problem = _bad(
                path,
                f"{what} cannot be translated for this model's API; only an anthropic "
                "cluster (passthrough) can serve it.",
            )


def _block_list(content: Any, path: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _bad(path, "Input should be a valid string or a list of content blocks")
    for i, b in enumerate(content):
        if not isinstance(b, dict):
            raise _bad(f"{path}.{i}", "Input should be an object")
        if not isinstance(b.get("type"), str):
            raise _bad(f"{path}.{i}.type", "Field required")
    return content


def _text_of(block: dict[str, Any], path: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _bad(f"{path}.text", "Field required" if text is None else "Input should be a string")
    return text


def _image_part(block: dict[str, Any], path: str) -> dict[str, Any]:
    src = block.get("source")
    if not isinstance(src, dict):
        raise _bad(f"{path}.source", "Field required")
    kind = src.get("type")
    if kind == "base64":
        media, data = src.get("media_type"), src.get("data")
        if not isinstance(media, str) or not media.startswith("image/"):
            raise _bad(f"{path}.source.media_type", "Input should be an image media type")
        if not isinstance(data, str) or not data:
            raise _bad(f"{path}.source.data", "Field required")
        url = f"data:{media};base64,{data}"
    elif kind == "url":
        link = src.get("url")
        if not isinstance(link, str) or not link:
            raise _bad(f"{path}.source.url", "Field required")
        url = link
    else:
        raise _bad(f"{path}.source.type", "Input should be 'base64' or 'url'")
    return {"type": "image_url", "image_url": {"url": url}}


def _parts_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A single text part as a plain string (what most chat templates expect)."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    return parts


def _tool_result(block: dict[str, Any], path: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    tid = block.get("tool_use_id")
    if not isinstance(tid, str) or not tid:
        raise _bad(f"{path}.tool_use_id", "Field required")
    content = block.get("content", "")
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    else:
        for j, b in enumerate(_block_list(content, f"{path}.content")):
            bpath = f"{path}.content.{j}"
            if b["type"] == "text":
                texts.append(_text_of(b, bpath))
            elif b["type"] == "image":
                images.append(_image_part(b, bpath))
            else:
                raise _bad(f"{bpath}.type", "Input should be 'text' or 'image'")
    return {"role": "tool", "tool_call_id": tid, "content": "\n".join(texts)}


def _user_turn(content: Any, path: str, t: _Translation, out: list[dict[str, Any]]) -> None:
    if isinstance(content, str):
        out.append({"role": "user", "content": content})
        return
    blocks = _block_list(content, path)
    if not blocks:
        raise _bad(path, "user messages must have non-empty content")
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for i, b in enumerate(blocks):
        bpath = f"{path}.{i}"
        kind = b["type"]
        if kind == "text":
            parts.append({"type": "text", "text": _text_of(b, bpath)})
        elif kind == "image":
            parts.append(_image_part(b, bpath))
        elif kind == "tool_result":
            tools.append(_tool_result(b, bpath, images))
        elif kind in ("tool_use", *_DROPPED_BLOCKS):
            raise _bad(f"{bpath}.type", f"'{kind}' blocks are only allowed in assistant turns")
        else:
            t.unsupported(f"{bpath}.type", f"A '{kind}' block")
    out.extend(tools)
    parts = images + parts
    if parts:
        out.append({"role": "user", "content": _parts_content(parts)})


def _assistant_turn(content: Any, path: str, t: _Translation, out: list[dict[str, Any]]) -> None:
    if isinstance(content, str):
        out.append({"role": "assistant", "content": content})
        return
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, b in enumerate(_block_list(content, path)):
        bpath = f"{path}.{i}"
        kind = b["type"]
        if kind == "text":
            texts.append(_text_of(b, bpath))
        elif kind == "tool_use":
            tid, name, args = b.get("id"), b.get("name"), b.get("input")
            if not isinstance(tid, str) or not tid:
                raise _bad(f"{bpath}.id", "Field required")
            if not isinstance(name, str) or not name:
                raise _bad(f"{bpath}.name", "Field required")
            if not isinstance(args, dict):
                raise _bad(f"{bpath}.input", "Input should be a valid dictionary")
            calls.append(
                {
                    "id": tid,
                    "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(args).decode()},
                }
            )
        elif kind in _DROPPED_BLOCKS:
            continue
        elif kind in ("image", "tool_result"):
            raise _bad(f"{bpath}.type", f"'{kind}' blocks are only allowed in user turns")
        else:
            t.unsupported(f"{bpath}.type", f"A '{kind}' block")
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        msg["tool_calls"] = calls
    elif msg["content"] is None:
        msg["content"] = ""
    out.append(msg)


def _system(system: Any) -> str:
    if isinstance(system, str):
        return system
    texts = []
    for i, b in enumerate(_block_list(system, "system")):
        if b["type"] != "text":
            raise _bad(f"system.{i}.type", "Input should be 'text'")
        texts.append(_text_of(b, f"system.{i}"))
    return "\n".join(texts)


def _tools(tools: Any, t: _Translation) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _bad("tools", "Input should be a valid list")
    out = []
    for i, tool in enumerate(tools):
        path = f"tools.{i}"
        if not isinstance(tool, dict):
            raise _bad(path, "Input should be an object")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            t.unsupported(f"{path}.type", f"The server tool '{kind}'")
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(f"{path}.name", "Field required")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(f"{path}.input_schema", "Field required")
        fn: dict[str, Any] = {"name": name, "parameters": schema}
        desc = tool.get("description")
        if isinstance(desc, str):
            fn["description"] = desc
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: Any, out: dict[str, Any]) -> None:
    if not isinstance(choice, dict):
        raise _bad("tool_choice", "Input should be an object")
    kind = choice.get("type")
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise _bad("tool_choice.name", "Field required")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind in _TOOL_CHOICE:
        out["tool_choice"] = _TOOL_CHOICE[kind]
    else:
        raise _bad("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        out["parallel_tool_calls"] = False


def _sampling(doc: dict[str, Any], out: dict[str, Any]) -> None:
    for name, lo, hi in (("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0)):
        v = doc.get(name)
        if v is None:
            continue
        if not _is_num(v) or not lo <= v <= hi:
            raise _bad(name, f"Input should be a number between {lo:g} and {hi:g}")
        out[name] = v
    k = doc.get("top_k")
    if k is not None:
        if not _is_int(k) or k < 0:
            raise _bad("top_k", "Input should be a non-negative integer")
        out["top_k"] = k
    stops = doc.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _bad("stop_sequences", "Input should be a list of strings")
        if stops:
            out["stop"] = stops
    meta = doc.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            raise _bad("metadata", "Input should be an object")
        user = meta.get("user_id")
        if user is not None and not isinstance(user, str):
            raise _bad("metadata.user_id", "Input should be a string")
        if user:
            out["user"] = user


def messages_to_openai(doc: dict[str, Any]) -> Decoded:
    """Check a Messages API body and translate it; raises ``BadRequest`` naming the field."""
    model = doc.get("model")
    if model is None:
        raise _bad("model", "Field required")
    if not isinstance(model, str) or not model:
        raise _bad("model", "Input should be a non-empty string")
    max_tokens = doc.get("max_tokens")
    if max_tokens is None:
        raise _bad("max_tokens", "Field required")
    if not _is_int(max_tokens) or not 1 <= max_tokens <= _MAX_TOKENS_LIMIT:
        raise _bad("max_tokens", "Input should be a positive integer")
    msgs = doc.get("messages")
    if msgs is None:
        raise _bad("messages", "Field required")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("messages", "Input should be a non-empty list")
    stream = doc.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream", "Input should be a valid boolean")
    t = _Translation()
    out_msgs: list[dict[str, Any]] = []
    system = doc.get("system")
    if system is not None:
        text = _system(system)
        if text:
            out_msgs.append({"role": "system", "content": text})
    for i, m in enumerate(msgs):
        path = f"messages.{i}"
        if not isinstance(m, dict):
            raise _bad(path, "Input should be an object")
        role = m.get("role")
        if role not in _ROLES:
            if role == "system":
                raise _bad(
                    f"{path}.role",
                    'Unexpected role "system". The Messages API accepts a top-level `system` '
                    'parameter, not "system" as an input message role.',
                )
            raise _bad(f"{path}.role", "Input should be 'user' or 'assistant'")
        if "content" not in m:
            raise _bad(f"{path}.content", "Field required")
        if role == "user":
            _user_turn(m["content"], f"{path}.content", t, out_msgs)
        else:
            _assistant_turn(m["content"], f"{path}.content", t, out_msgs)
    out: dict[str, Any] = {"model": model, "messages": out_msgs, "max_tokens": max_tokens}
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    _sampling(doc, out)
    tools = doc.get("tools")
    if tools is not None:
        fns = _tools(tools, t)
        if fns:
            out["tools"] = fns
    choice = doc.get("tool_choice")
    if choice is not None:
        _tool_choice(choice, out)
        if "tools" not in out:
            out.pop("tool_choice", None)
            out.pop("parallel_tool_calls", None)
    for name in ("mcp_servers", "container"):
        if doc.get(name):
            t.unsupported(name, f"'{name}'")
    return Decoded(out, model, bool(stream), t.problem)


def count_tokens_to_openai(doc: dict[str, Any]) -> Decoded:
    """``/v1/messages/count_tokens`` (no ``max_tokens``) → an OpenAI tokenize body."""
    probe = dict(doc)
    probe["max_tokens"] = 1
    probe.pop("stream", None)
    decoded = messages_to_openai(probe)
    body = decoded.json
    out: dict[str, Any] = {"model": body["model"], "messages": body["messages"]}
    if "tools" in body:
        out["tools"] = body["tools"]
    return Decoded(out, decoded.model, False, decoded.problem)
