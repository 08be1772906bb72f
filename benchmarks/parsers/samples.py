"""Realistic raw model outputs per parser family, for the parser benchmark."""

from __future__ import annotations

import json

PROSE = (
    "I'll check the current conditions for you. Tokyo (東京) is usually mild in spring, "
    "but rain 🌧 is common in June; let me look up the forecast and the air quality so "
    "the answer is accurate. "
)
ARGS = [
    {"city": "東京", "days": 3, "units": "metric"},
    {"query": "air quality index Tokyo today", "max_results": 5, "safe": True},
]
NAMES = ["get_weather", "web_search"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": n,
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "units": {"type": "string"},
                    "query": {"type": "string"},
                    "max_results": {"type": "integer"},
                    "safe": {"type": "boolean"},
                },
            },
        },
    }
    for n in NAMES
]
CALLS = list(zip(NAMES, ARGS, strict=True))
DS = {
    k: f"<\uff5ctool\u2581{k}\uff5c>"
    for k in ("calls▁begin", "calls▁end", "call▁begin", "call▁end", "sep")
}


def _j(a: object) -> str:
    return json.dumps(a, ensure_ascii=False)


def _xml_value(v: object) -> str:
    return v if isinstance(v, str) else json.dumps(v)


TOOL_OUTPUTS: dict[str, str] = {
    "hermes": PROSE
    + "\n"
    + "\n".join(
        f'<tool_call>\n{{"name": "{n}", "arguments": {_j(a)}}}\n</tool_call>' for n, a in CALLS
    ),
    "qwen3_coder": PROSE
    + "\n"
    + "\n".join(
        f"<tool_call>\n<function={n}>\n"
        + "".join(f"<parameter={k}>\n{_xml_value(v)}\n</parameter>\n" for k, v in a.items())
        + "</function>\n</tool_call>"
        for n, a in CALLS
    ),
    "llama3_json": "; ".join(f'{{"name": "{n}", "parameters": {_j(a)}}}' for n, a in CALLS),
    "mistral": PROSE + "".join(f"[TOOL_CALLS]{n}[ARGS]{_j(a)}" for n, a in CALLS),
    "pythonic": "["
    + ", ".join(f"{n}({', '.join(f'{k}={v!r}' for k, v in a.items())})" for n, a in CALLS)
    + "]",
    "deepseek_v3": PROSE
    + DS["calls▁begin"]
    + "\n".join(
        f"{DS['call▁begin']}function{DS['sep']}{n}\n```json\n{_j(a)}\n```{DS['call▁end']}"
        for n, a in CALLS
    )
    + DS["calls▁end"],
    "kimi_k2": PROSE
    + "<|tool_calls_section_begin|>"
    + "".join(
        f"<|tool_call_begin|>functions.{n}:{i}<|tool_call_argument_begin|>{_j(a)}<|tool_call_end|>"
        for i, (n, a) in enumerate(CALLS)
    )
    + "<|tool_calls_section_end|>",
    "glm45": PROSE
    + "\n"
    + "\n".join(
        f"<tool_call>{n}\n"
        + "".join(
            f"<arg_key>{k}</arg_key>\n<arg_value>{_xml_value(v)}</arg_value>\n"
            for k, v in a.items()
        )
        + "</tool_call>"
        for n, a in CALLS
    ),
    "harmony": f"<|channel|>commentary<|message|>{PROSE}<|end|>"
    + "".join(
        f"<|start|>assistant<|channel|>commentary to=functions.{n} <|constrain|>json"
        f"<|message|>{_j(a)}<|call|>"
        for n, a in CALLS
    ),
    "granite": PROSE + "<|tool_call|>" + _j([{"name": n, "arguments": a} for n, a in CALLS]),
}

THOUGHT = (
    "The user asks about the weather in Tokyo. I should consider the season: in June the "
    "rainy season (梅雨) starts, so rain is likely. I'll give a concise answer with a caveat "
    "about checking a live forecast. "
) * 3
ANSWER = "In June, Tokyo is warm (24-28 °C) and often rainy 🌧; pack an umbrella. ☂️ " * 3

REASONING_OUTPUTS: dict[str, str] = {
    "deepseek_r1": f"{THOUGHT}</think>\n\n{ANSWER}",
    "qwen3": f"<think>\n{THOUGHT}\n</think>\n\n{ANSWER}",
    "kimi": f"◁think▷{THOUGHT}◁/think▷{ANSWER}",
    "glm45": f"<think>{THOUGHT}</think>\n{ANSWER}",
    "harmony": f"<|channel|>analysis<|message|>{THOUGHT}<|end|>"
    f"<|start|>assistant<|channel|>final<|message|>{ANSWER}<|return|>",
    "magistral": f"[THINK]{THOUGHT}[/THINK]{ANSWER}",
}
