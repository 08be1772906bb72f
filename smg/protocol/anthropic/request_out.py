"""OpenAI chat request → Messages API request: what the ``anthropic`` cluster protocol sends.

* ``system`` / ``developer`` messages → ``system`` (several become several text blocks,
  wherever they stood: the Messages API has no mid-conversation system turn);
* user content: text parts, ``image_url`` parts (``data:`` URLs → a base64 source,
  http(s) URLs → a url source);
* assistant ``content`` → text block, ``tool_calls`` → ``tool_use`` blocks (arguments
  parsed: they must be a JSON object);
* ``tool`` messages → ``tool_result`` blocks, merged with the next user message into one
  user turn (consecutive turns of one role are merged, as the API requires alternation);
* ``cache_control`` on content parts and tools (prompt caching breakpoints, as Anthropic
  clients of OpenAI-shaped gateways write them) is kept on the matching blocks;
* ``tools`` → ``{name, description, input_schema}``; ``tool_choice`` auto / required →
  any / named → tool / none, ``parallel_tool_calls: false`` → ``disable_parallel_tool_use``;
* ``max_completion_tokens`` / ``max_tokens`` (default ``DEFAULT_MAX_TOKENS``, the API
  requires one), ``stop`` → ``stop_sequences``, ``temperature`` (capped at 1, the API's
  maximum), ``top_p``, ``top_k``, ``user`` → ``metadata.user_id``, ``stream``.

Refused with a 400 naming the field, because no Messages API equivalent exists: ``n`` > 1,
``logprobs``, ``response_format`` other than text, audio and file parts, ``function``
role. Silently dropped: ``seed``, penalties, ``logit_bias``, ``stream_options`` (usage is
always reported), ``reasoning_effort``.
"""

from __future__ import annotations

from typing import Any

import orjson

from smg.errors import BadRequest
from smg.protocol.anthropic.shapes import DEFAULT_MAX_TOKENS

Block = dict[str, Any]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _cached(block: Block, part: dict[str, Any]) -> Block:
    """Keep a part's ``cache_control`` (prompt caching breakpoints) on its block."""
    cc = part.get("cache_control")
    if isinstance(cc, dict):
        block["cache_control"] = cc
    return block


def _text_blocks(content: Any, path: str) -> list[Block]:
    """Text blocks of an OpenAI content (a string or text parts); empty texts dropped."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest(f"'{path}' must be a string or an array of parts.", param=path)
    out = []
    for j, p in enumerate(content):
        if not isinstance(p, dict) or p.get("type") not in ("text", "refusal"):
            raise BadRequest(f"'{path}[{j}]' must be a text part here.", param=f"{path}[{j}]")
        text = p.get("text", p.get("refusal"))
        if not isinstance(text, str):
            raise BadRequest(f"'{path}[{j}].text' must be a string.", param=f"{path}[{j}].text")
        if text:
            out.append(_cached({"type": "text", "text": text}, p))
    return out


def image_block(url: str, path: str) -> Block:
    """An ``image_url`` URL as an Anthropic image block."""
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        media, _, enc = head.partition(";")
        if not sep or enc != "base64" or not media.startswith("image/") or not data:
            raise BadRequest(
                f"'{path}' must be a base64 image data URL (data:image/...;base64,...).",
                param=path,
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest(f"'{path}' must be an http(s) URL or a data URL.", param=path)


def _user_blocks(content: Any, path: str) -> list[Block]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest(f"'{path}' must be a string or an array of parts.", param=path)
    out: list[Block] = []
    for j, p in enumerate(content):
        ppath = f"{path}[{j}]"
        kind = p.get("type") if isinstance(p, dict) else None
        if kind == "text":
            text = p.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"'{ppath}.text' must be a string.", param=f"{ppath}.text")
            if text:
                out.append(_cached({"type": "text", "text": text}, p))
        elif kind == "image_url":
            img = p.get("image_url")
            url = img.get("url") if isinstance(img, dict) else img
            if not isinstance(url, str):
                raise BadRequest(
                    f"'{ppath}.image_url.url' must be a string.", param=f"{ppath}.image_url.url"
                )
            out.append(_cached(image_block(url, f"{ppath}.image_url.url"), p))
        else:
            raise BadRequest(
                f"Content part type {kind!r} at '{ppath}' cannot be sent to an Anthropic model "
                "(text and image_url only).",
                param=f"{ppath}.type",
            )
    return out


def _tool_use(call: Any, path: str) -> Block:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise BadRequest(f"'{path}' must be a function tool call.", param=path)
    fn = call["function"]
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"'{path}.function.name' must be a string.", param=f"{path}.function.name")
    raw = fn.get("arguments") or "{}"
    try:
        args = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise BadRequest(
            f"'{path}.function.arguments' must be a JSON object (as a string).",
            param=f"{path}.function.arguments",
        )
    tid = call.get("id")
    if not isinstance(tid, str) or not tid:
        raise BadRequest(f"'{path}.id' must be a string.", param=f"{path}.id")
    return {"type": "tool_use", "id": tid, "name": name, "input": args}


class _Turns:
    """Alternating user/assistant turns; a turn of the same role as the last one merges."""

    def __init__(self) -> None:
        self.turns: list[dict[str, Any]] = []

    def add(self, role: str, blocks: list[Block]) -> None:
        if not blocks:
            return
        if self.turns and self.turns[-1]["role"] == role:
            self.turns[-1]["content"].extend(blocks)
        else:
            self.turns.append({"role": role, "content": blocks})


def _messages(msgs: list[Any]) -> tuple[list[Block], list[dict[str, Any]]]:
    system: list[Block] = []
    turns = _Turns()
    for i, m in enumerate(msgs):
        path = f"messages[{i}]"
        role = m.get("role")
        content = m.get("content")
        if role in ("system", "developer"):
            system.extend(_text_blocks(content, f"{path}.content"))
        elif role == "user":
            turns.add("user", _user_blocks(content, f"{path}.content"))
        elif role == "assistant":
            blocks = _text_blocks(content, f"{path}.content")
            calls = m.get("tool_calls") or []
            if not isinstance(calls, list):
                raise BadRequest(
                    f"'{path}.tool_calls' must be an array.", param=f"{path}.tool_calls"
                )
            blocks.extend(_tool_use(c, f"{path}.tool_calls[{j}]") for j, c in enumerate(calls))
            turns.add("assistant", blocks)
        elif role == "tool":
            tid = m.get("tool_call_id")
            if not isinstance(tid, str) or not tid:
                raise BadRequest(
                    f"'{path}.tool_call_id' is required for a tool message.",
                    param=f"{path}.tool_call_id",
                )
            parts = _text_blocks(content, f"{path}.content")
            result: Block = {"type": "tool_result", "tool_use_id": tid}
            if parts:
                result["content"] = "".join(b["text"] for b in parts)
                for b in parts:
                    _cached(result, b)
            turns.add("user", [result])
        else:
            raise BadRequest(
                f"Role {role!r} of '{path}' cannot be sent to an Anthropic model.",
                param=f"{path}.role",
            )
    for turn in turns.turns:
        if turn["role"] == "user":
            # The API wants a turn's tool results before anything else in it.
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return system, turns.turns


def _tools(doc: dict[str, Any]) -> list[Block]:
    tools = doc.get("tools")
    if not tools:
        return []
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array.", param="tools")
    out = []
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if (
            not isinstance(t, dict)
            or t.get("type", "function") != "function"
            or not isinstance(fn, dict)
        ):
            raise BadRequest(f"'tools[{i}]' must be a function tool.", param=f"tools[{i}]")
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(
                f"'tools[{i}].function.name' must be a string.", param=f"tools[{i}].function.name"
            )
        schema = fn.get("parameters")
        if schema is None:
            schema = {"type": "object", "properties": {}}
        elif not isinstance(schema, dict):
            raise BadRequest(
                f"'tools[{i}].function.parameters' must be an object.",
                param=f"tools[{i}].function.parameters",
            )
        tool: Block = {"name": name, "input_schema": schema}
        if isinstance(fn.get("description"), str):
            tool["description"] = fn["description"]
        out.append(_cached(tool, t))
    return out


def _tool_choice(doc: dict[str, Any]) -> Block | None:
    choice = doc.get("tool_choice")
    out: Block | None
    if choice is None or choice == "auto":
        out = {"type": "auto"} if doc.get("parallel_tool_calls") is False else None
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(
                "'tool_choice.function.name' must be a string.", param="tool_choice.function.name"
            )
        out = {"type": "tool", "name": name}
    else:
        raise BadRequest(
            "'tool_choice' must be 'auto', 'required', 'none' or a named function.",
            param="tool_choice",
        )
    if out is not None and doc.get("parallel_tool_calls") is False:
        out["disable_parallel_tool_use"] = True
    return out


def _refuse_unsupported(doc: dict[str, Any]) -> None:
    n = doc.get("n")
    if n is not None and n != 1:
        raise BadRequest("Anthropic models answer with one choice: 'n' must be 1.", param="n")
    if doc.get("logprobs"):
        raise BadRequest("Anthropic models do not return logprobs.", param="logprobs")
    fmt = doc.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        raise BadRequest(
            f"response_format {fmt.get('type')!r} cannot be sent to an Anthropic model.",
            param="response_format",
        )


def openai_to_messages(doc: dict[str, Any]) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat request body."""
    _refuse_unsupported(doc)
    msgs = doc.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("'messages' must be a non-empty array.", param="messages")
    system, turns = _messages(msgs)
    if not turns:
        raise BadRequest(
            "An Anthropic model needs at least one user or assistant message.", param="messages"
        )
    max_tokens = doc.get("max_completion_tokens")
    name = "max_completion_tokens"
    if max_tokens is None:
        max_tokens, name = doc.get("max_tokens"), "max_tokens"
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    elif not _is_int(max_tokens) or max_tokens < 1:
        raise BadRequest(f"'{name}' must be a positive integer for Anthropic models.", param=name)
    out: dict[str, Any] = {"model": doc.get("model"), "max_tokens": max_tokens, "messages": turns}
    if system:
        one = len(system) == 1 and "cache_control" not in system[0]
        out["system"] = system[0]["text"] if one else system
    stop = doc.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = stop
    temperature = doc.get("temperature")
    if temperature is not None:
        out["temperature"] = min(float(temperature), 1.0)
    for field in ("top_p", "top_k"):
        if doc.get(field) is not None:
            out[field] = doc[field]
    tools = _tools(doc)
    if tools:
        out["tools"] = tools
        choice = _tool_choice(doc)
        if choice is not None:
            out["tool_choice"] = choice
    user = doc.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    if doc.get("stream"):
        out["stream"] = True
    return out
