"""Reasoning parsers by name (lazily imported) and auto-selection from the model name.

===========  =====================================  ===================  =====================
name         format                                 starts in reasoning  auto for model names
===========  =====================================  ===================  =====================
deepseek_r1  ``<think>…</think>``, open tag optional  yes                deepseek-r1*, qwq*
qwen3        ``<think>…</think>``                   no                   qwen3* (not -coder,
                                                                         not -instruct-2507)
kimi         ``◁think▷…◁/think▷``                   no                   kimi-vl*, kimi*
kimi_k2      ``<think>…</think>`` (= glm45)         no                   kimi-k2*
glm45        ``<think>…</think>``                   no                   glm-4.5*, glm-4.6*,
                                                                         glm-4.7*
harmony      gpt-oss ``analysis`` channel           n/a                  gpt-oss*
magistral    ``[THINK]…[/THINK]``                   no                   magistral*
===========  =====================================  ===================  =====================

"Starts in reasoning" is the default of ``in_reasoning``; pass ``in_reasoning=True`` when the
rendered prompt already ends inside the block (e.g. Qwen3-*-Thinking-2507 templates end with
``<think>\\n``). ``enable_thinking=False`` makes every ``<think>``-style parser pass all text
through as content.
"""

from __future__ import annotations

from smg.parsers._select import select
from smg.parsers.reasoning.base import (
    ReasoningDelta,
    ReasoningParser,
    ReasoningResult,
    ThinkTagReasoningParser,
)
from smg.registry import Registry

REASONING_PARSERS: Registry[type[ReasoningParser]] = Registry(
    "reasoning parser", entry_point_group="smg.reasoning_parsers"
)
for _name, _path in {
    "deepseek_r1": "smg.parsers.reasoning.deepseek_r1:DeepSeekR1ReasoningParser",
    "qwen3": "smg.parsers.reasoning.qwen3:Qwen3ReasoningParser",
    "kimi": "smg.parsers.reasoning.kimi:KimiReasoningParser",
    "kimi_k2": "smg.parsers.reasoning.glm45:Glm45ReasoningParser",
    "glm45": "smg.parsers.reasoning.glm45:Glm45ReasoningParser",
    "harmony": "smg.parsers.reasoning.harmony:HarmonyReasoningParser",
    "magistral": "smg.parsers.reasoning.magistral:MagistralReasoningParser",
}.items():
    REASONING_PARSERS.register_lazy(_name, _path)

AUTO: tuple[tuple[str, str | None], ...] = (
    ("deepseek-r1*", "deepseek_r1"),
    ("qwq*", "deepseek_r1"),
    ("qwen3-coder*", None),
    ("qwen3-*instruct-2507*", None),
    ("qwen3*", "qwen3"),
    ("kimi-k2*", "kimi_k2"),
    ("kimi*", "kimi"),
    ("glm-4.5*", "glm45"),
    ("glm-4.6*", "glm45"),
    ("glm-4.7*", "glm45"),
    ("gpt-oss*", "harmony"),
    ("magistral*", "magistral"),
)


def auto_reasoning_parser(model: str) -> str | None:
    """Name of the reasoning parser for ``model``, or None if no pattern matches."""
    return select(model, AUTO)


def create_reasoning_parser(
    name: str | None = None,
    *,
    model: str = "",
    enable_thinking: bool = True,
    in_reasoning: bool | None = None,
) -> ReasoningParser | None:
    """Parser ``name`` (or ``"module:Class"``), else the one for ``model``; None if neither."""
    chosen = name or auto_reasoning_parser(model)
    if chosen is None:
        return None
    factory = REASONING_PARSERS.resolve(chosen)
    return factory(enable_thinking=enable_thinking, in_reasoning=in_reasoning)


__all__ = [
    "AUTO",
    "REASONING_PARSERS",
    "ReasoningDelta",
    "ReasoningParser",
    "ReasoningResult",
    "ThinkTagReasoningParser",
    "auto_reasoning_parser",
    "create_reasoning_parser",
]
