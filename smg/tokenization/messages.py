"""Conversion of OpenAI chat-completion messages to the shape HF chat templates expect."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import jinja2
import jinja2.nodes

from smg.tokenization.chat_template import ChatTemplateError, compile_template

ContentFormat = Literal["string", "openai"]


def detect_content_format(source: str) -> ContentFormat:
    """Guess whether a template iterates over content parts ("openai") or expects strings."""
    try:
        ast = compile_template(source).environment.parse(source)
    except (jinja2.TemplateError, ChatTemplateError):
        return "string"
    for loop in ast.find_all(jinja2.nodes.For):
        if _mentions_content(loop.iter):
            return "openai"
    return "string"


def _mentions_content(node: jinja2.nodes.Node) -> bool:
    for sub in (node, *node.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem))):
        if isinstance(sub, jinja2.nodes.Getattr) and sub.attr == "content":
            return True
        if (
            isinstance(sub, jinja2.nodes.Getitem)
            and isinstance(sub.arg, jinja2.nodes.Const)
            and sub.arg.value == "content"
        ):
            return True
    return False


def openai_to_template_messages(
    messages: Sequence[Mapping[str, Any]], content_format: ContentFormat = "string"
) -> list[dict[str, Any]]:
    """Return template-ready copies: tool-call arguments as dicts, content parts normalised."""
    return [_convert_message(m, content_format) for m in messages]


def _convert_message(message: Mapping[str, Any], content_format: ContentFormat) -> dict[str, Any]:
    out = dict(message)
    content = out.get("content")
    if content is None:
        # OpenAI allows null content (assistant tool calls); most templates index it as a string.
        out["content"] = ""
    elif isinstance(content, list):
        out["content"] = _convert_parts(content, content_format)
    calls = out.get("tool_calls")
    if isinstance(calls, list):
        out["tool_calls"] = [_convert_tool_call(c) for c in calls]
    return out


def _convert_parts(parts: list[Any], content_format: ContentFormat) -> str | list[dict[str, Any]]:
    if content_format == "string":
        # Templates that print content as a string get the text parts joined; media is dropped.
        texts = [str(p.get("text", "")) for p in parts if isinstance(p, Mapping) and _is_text(p)]
        return "\n".join(texts)
    converted: list[dict[str, Any]] = []
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if _is_text(part):
            converted.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind in ("image_url", "image", "input_image"):
            # HF multimodal templates only test for {"type": "image"} and emit a placeholder.
            converted.append({"type": "image"})
        elif kind in ("input_audio", "audio"):
            converted.append({"type": "audio"})
        elif kind in ("video_url", "video"):
            converted.append({"type": "video"})
        else:
            converted.append(dict(part))
    return converted


def _is_text(part: Mapping[str, Any]) -> bool:
    return part.get("type") in ("text", "input_text", "output_text")


def _convert_tool_call(call: Any) -> Any:
    if not isinstance(call, Mapping):
        return call
    out = dict(call)
    fn = out.get("function")
    if isinstance(fn, Mapping):
        fn = dict(fn)
        args = fn.get("arguments")
        if isinstance(args, str):
            # OpenAI sends a JSON string; HF templates iterate arguments as a mapping.
            try:
                parsed = json.loads(args) if args.strip() else {}
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                fn["arguments"] = parsed
        out["function"] = fn
    return out
