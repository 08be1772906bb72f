"""Kimi-VL / K1.5 thinking models, whose reasoning is wrapped in ``◁think▷…◁/think▷``."""

from __future__ import annotations

from smg.parsers.reasoning.base import ThinkTagReasoningParser


class KimiReasoningParser(ThinkTagReasoningParser):
    """Reasoning between ``◁think▷`` and ``◁/think▷``."""

    start_tag = "◁think▷"
    end_tag = "◁/think▷"
    starts_in_reasoning = False
