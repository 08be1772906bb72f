"""The text a request is routed on: the whole prompt as the engine will see it, in order.

For chat every message counts, role included, rendered the way a chat template lays a
conversation out (``<|role|>\\ncontent\\n`` per message, the shape ``smg sim`` uses), with
the tool definitions first because templates put them in the system preamble. Only
prefix relations matter for routing, so the exact template is not needed: two requests
share a routed prefix exactly when they share the messages (and tools) up to that point.
Completions route on the prompt, SGLang ``/generate`` on ``text``, embeddings on ``input``;
a batch routes on its first prompt. In gRPC mode ``cache_aware`` routes on the prompt's
token ids instead (``PickContext.routed_key``); token-id prompts are not routed on here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

# Estimated characters per token for turning a matched length into a token count
# (the usual rule of thumb for English BPE vocabularies; ``smg sim`` uses exactly 4).
CHARS_PER_TOKEN = 4


def routed_text(kind: str | None, body: Mapping[str, Any] | None) -> str:
    """The prompt text of a request body ("" when it has none to route on)."""
    if not body:
        return ""
    messages = body.get("messages")
    if isinstance(messages, list):
        return render_messages(messages, body.get("tools"))
    for field in ("prompt", "text", "input"):
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and isinstance(value[0], str):
            return value[0]
        return ""
    return ""


def render_messages(messages: list[Any], tools: Any = None) -> str:
    """A conversation as one string, every message in order with its role."""
    parts: list[str] = []
    if tools:
        parts.append("<|tools|>\n")
        parts.append(_json(tools))
        parts.append("\n")
    add = parts.append
    for m in messages:
        # ``type() is`` rather than isinstance against the ABCs: this runs per message
        # on every request (decoded JSON is made of plain dicts, lists and strs).
        if type(m) is not dict and not isinstance(m, Mapping):
            continue
        role = m.get("role")
        add("<|")
        add(role if type(role) is str else "?")
        add("|>\n")
        content = m.get("content")
        if type(content) is str:
            add(content)
        elif isinstance(content, list):
            add(_parts_text(content))
        if "tool_calls" in m:
            calls = m["tool_calls"]
            if calls:
                add(_json(calls))
        add("\n")
    return "".join(parts)


def _parts_text(content: list[Any]) -> str:
    out: list[str] = []
    for p in content:
        if not isinstance(p, Mapping):
            continue
        if p.get("type") == "text":
            text = p.get("text")
            if isinstance(text, str):
                out.append(text)
        else:
            # An image (or audio) changes the prompt; a digest of it keeps prefixes
            # apart without copying a large data URL into the tree.
            out.append(f"<{p.get('type')}:{_digest(p)}>")
    return "".join(out)


def _digest(part: Mapping[str, Any]) -> str:
    return hashlib.blake2b(_json(part).encode(), digest_size=8).hexdigest()


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return repr(value)


def estimated_tokens(matched: int, key_is_text: bool = True) -> int:
    """A matched prefix length in tokens: characters / 4 for text, as is for token ids."""
    return matched // CHARS_PER_TOKEN if key_is_text else matched
