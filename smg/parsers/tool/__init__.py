"""Tool-call parsers by name (lazily imported) and auto-selection from the model name.

=============  ==================================================  ======================
name           format                                              auto for model names
=============  ==================================================  ======================
hermes         ``<tool_call>{"name","arguments"}</tool_call>``     qwen*, qwq*, hermes*,
                                                                   granite-4*
qwen3_coder    ``<tool_call><function=F><parameter=P>…``           qwen3-coder*
llama3_json    ``{"name","parameters"}; …`` / ``<|python_tag|>``   llama-3*, meta-llama-3*
mistral        ``[TOOL_CALLS][…]`` / ``[TOOL_CALLS]f[ARGS]{…}``    mistral*, mixtral*,
                                                                   ministral*, devstral*,
                                                                   magistral*
pythonic       ``[f(a=1), g()]``                                   llama-4*
deepseek_v3    ``<|tool_calls_begin|>…`` (V3, V3.1; fullwidth)   deepseek-v3*, deepseek-r1*
kimi_k2        ``<|tool_calls_section_begin|>…``                   kimi-k2*
glm45          ``<tool_call>f<arg_key>k</arg_key><arg_value>…``    glm-4.5*, glm-4.6*, glm-4.7*
harmony        gpt-oss ``commentary to=functions.f`` messages      gpt-oss*
granite        ``<|tool_call|>[…]``                                granite*
=============  ==================================================  ======================

``hermes_2_pro`` is an alias of ``hermes``. Patterns match the last path component of the
model name, lower-cased; the first matching row (top to bottom in ``AUTO``) wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smg.parsers._select import select
from smg.parsers.tool.base import (
    StreamDelta,
    ToolCall,
    ToolCallDelta,
    ToolParser,
    ToolParseResult,
    UnknownTool,
)
from smg.registry import Registry

TOOL_PARSERS: Registry[type[ToolParser]] = Registry(
    "tool-call parser", entry_point_group="smg.tool_parsers"
)
for _name, _path in {
    "hermes": "smg.parsers.tool.hermes:HermesToolParser",
    "hermes_2_pro": "smg.parsers.tool.hermes:HermesToolParser",
    "qwen3_coder": "smg.parsers.tool.qwen3_coder:Qwen3CoderToolParser",
    "llama3_json": "smg.parsers.tool.llama3_json:Llama3JsonToolParser",
    "mistral": "smg.parsers.tool.mistral:MistralToolParser",
    "pythonic": "smg.parsers.tool.pythonic:PythonicToolParser",
    "deepseek_v3": "smg.parsers.tool.deepseek_v3:DeepSeekV3ToolParser",
    "kimi_k2": "smg.parsers.tool.kimi_k2:KimiK2ToolParser",
    "glm45": "smg.parsers.tool.glm45:Glm45ToolParser",
    "harmony": "smg.parsers.tool.harmony:HarmonyToolParser",
    "granite": "smg.parsers.tool.granite:GraniteToolParser",
}.items():
    TOOL_PARSERS.register_lazy(_name, _path)

AUTO: tuple[tuple[str, str | None], ...] = (
    ("qwen3-coder*", "qwen3_coder"),
    ("qwen*", "hermes"),
    ("qwq*", "hermes"),
    ("*hermes*", "hermes"),
    ("llama-4*", "pythonic"),
    ("llama-3*", "llama3_json"),
    ("meta-llama-3*", "llama3_json"),
    ("mistral*", "mistral"),
    ("mixtral*", "mistral"),
    ("ministral*", "mistral"),
    ("devstral*", "mistral"),
    ("magistral*", "mistral"),
    ("deepseek-v3*", "deepseek_v3"),
    ("deepseek-r1*", "deepseek_v3"),
    ("kimi-k2*", "kimi_k2"),
    ("glm-4.5*", "glm45"),
    ("glm-4.6*", "glm45"),
    ("glm-4.7*", "glm45"),
    ("gpt-oss*", "harmony"),
    ("granite-4*", "hermes"),
    ("granite*", "granite"),
)


def auto_tool_parser(model: str) -> str | None:
    """Name of the tool-call parser for ``model``, or None if no pattern matches."""
    return select(model, AUTO)


def create_tool_parser(
    name: str | None = None,
    *,
    model: str = "",
    tools: Sequence[Mapping[str, Any]] | None = None,
    id_seed: str = "",
    unknown_tool: UnknownTool = "content",
) -> ToolParser | None:
    """Parser ``name`` (or ``"module:Class"``), else the one for ``model``; None if neither."""
    chosen = name or auto_tool_parser(model)
    if chosen is None:
        return None
    return TOOL_PARSERS.resolve(chosen)(tools, id_seed=id_seed, unknown_tool=unknown_tool)


__all__ = [
    "AUTO",
    "TOOL_PARSERS",
    "StreamDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolParseResult",
    "ToolParser",
    "auto_tool_parser",
    "create_tool_parser",
]
