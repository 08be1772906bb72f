"""Renderers of each family's raw model output, used to build realistic test and bench texts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Call = tuple[str, dict[str, Any]]

DS_CALLS_BEGIN = "<\uff5ctool\u2581calls\u2581begin\uff5c>"
DS_CALLS_END = "<\uff5ctool\u2581calls\u2581end\uff5c>"
DS_CALL_BEGIN = "<\uff5ctool\u2581call\u2581begin\uff5c>"
DS_CALL_END = "<\uff5ctool\u2581call\u2581end\uff5c>"
DS_SEP = "<\uff5ctool\u2581sep\uff5c>"


def _j(args: dict[str, Any]) -> str:
    return json.dumps(args, ensure_ascii=False)


def hermes(calls: list[Call]) -> str:
    """Qwen/Hermes blocks, one per call."""
    return "\n".join(
        f'<tool_call>\n{{"name": "{n}", "arguments": {_j(a)}}}\n</tool_call>' for n, a in calls
    )


def qwen3_coder(calls: list[Call]) -> str:
    """Qwen3-Coder XML; non-string values rendered as the chat template does."""
    out = []
    for name, args in calls:
        params = "".join(
            f"<parameter={k}>\n{v if isinstance(v, str) else json.dumps(v)}\n</parameter>\n"
            for k, v in args.items()
        )
        out.append(f"<tool_call>\n<function={name}>\n{params}</function>\n</tool_call>")
    return "\n".join(out)


def llama3_json(calls: list[Call]) -> str:
    """Llama 3 JSON objects joined by '; '."""
    return "; ".join(f'{{"name": "{n}", "parameters": {_j(a)}}}' for n, a in calls)


def mistral(calls: list[Call]) -> str:
    """The newer Mistral form, one [TOOL_CALLS] per call."""
    return "".join(f"[TOOL_CALLS]{n}[ARGS]{_j(a)}" for n, a in calls)


def mistral_legacy(calls: list[Call]) -> str:
    """The JSON-array Mistral form."""
    return "[TOOL_CALLS]" + json.dumps(
        [{"name": n, "arguments": a} for n, a in calls], ensure_ascii=False
    )


def pythonic(calls: list[Call]) -> str:
    """Python list of calls with repr'd literal arguments."""
    items = [f"{n}({', '.join(f'{k}={v!r}' for k, v in a.items())})" for n, a in calls]
    return "[" + ", ".join(items) + "]"


def deepseek_v3(calls: list[Call]) -> str:
    """DeepSeek V3 fenced-JSON layout."""
    body = "\n".join(
        f"{DS_CALL_BEGIN}function{DS_SEP}{n}\n```json\n{_j(a)}\n```{DS_CALL_END}" for n, a in calls
    )
    return DS_CALLS_BEGIN + body + DS_CALLS_END


def deepseek_v31(calls: list[Call]) -> str:
    """DeepSeek V3.1 bare-JSON layout."""
    body = "".join(f"{DS_CALL_BEGIN}{n}{DS_SEP}{_j(a)}{DS_CALL_END}" for n, a in calls)
    return DS_CALLS_BEGIN + body + DS_CALLS_END


def kimi_k2(calls: list[Call]) -> str:
    """Kimi K2 section."""
    body = "".join(
        f"<|tool_call_begin|>functions.{n}:{i}<|tool_call_argument_begin|>{_j(a)}<|tool_call_end|>"
        for i, (n, a) in enumerate(calls)
    )
    return f"<|tool_calls_section_begin|>{body}<|tool_calls_section_end|>"


def glm45(calls: list[Call]) -> str:
    """GLM-4.5 key/value blocks (strings raw, the rest JSON, like the template)."""
    out = []
    for name, args in calls:
        pairs = "".join(
            f"<arg_key>{k}</arg_key>\n<arg_value>"
            f"{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}</arg_value>\n"
            for k, v in args.items()
        )
        out.append(f"<tool_call>{name}\n{pairs}</tool_call>")
    return "\n".join(out)


def harmony_calls(calls: list[Call]) -> str:
    """gpt-oss commentary messages addressed to functions."""
    return "".join(
        f"<|start|>assistant<|channel|>commentary to=functions.{n} <|constrain|>json"
        f"<|message|>{_j(a)}<|call|>"
        for n, a in calls
    )


def granite(calls: list[Call]) -> str:
    """Granite 3 JSON list after <|tool_call|>."""
    return "<|tool_call|>" + json.dumps(
        [{"name": n, "arguments": a} for n, a in calls], ensure_ascii=False
    )


# parser name → (renderer, prose may precede the calls, prose may follow them)
RENDERERS: dict[str, tuple[Callable[[list[Call]], str], bool, bool]] = {
    "hermes": (hermes, True, True),
    "qwen3_coder": (qwen3_coder, True, True),
    "llama3_json": (llama3_json, False, True),
    "mistral": (mistral, True, True),
    "mistral_legacy": (mistral_legacy, True, True),
    "pythonic": (pythonic, False, True),
    "deepseek_v3": (deepseek_v3, True, True),
    "deepseek_v31": (deepseek_v31, True, True),
    "kimi_k2": (kimi_k2, True, True),
    "glm45": (glm45, True, True),
    "harmony": (harmony_calls, True, True),
    "granite": (granite, True, True),
}
PARSER_FOR = {"mistral_legacy": "mistral", "deepseek_v31": "deepseek_v3"}


def harmony_text(prose: str) -> str:
    """Prose as a gpt-oss final-channel message."""
    return f"<|start|>assistant<|channel|>final<|message|>{prose}<|return|>"


def render(family: str, before: str, calls: list[Call], after: str) -> str:
    """A full output: prose, the calls in ``family`` syntax, more prose."""
    fn, pre, post = RENDERERS[family]
    wrap = harmony_text if family == "harmony" else (lambda s: s)
    head = wrap(before) if pre and before else ""
    tail = wrap(after) if post and after else ""
    sep = "\n\n" if head and family != "harmony" else ""
    return head + sep + fn(calls) + ("\n" + tail if tail and family != "harmony" else tail)
