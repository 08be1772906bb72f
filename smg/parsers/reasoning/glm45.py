"""GLM-4.5 / 4.6 and Kimi-K2-Thinking: ``<think>…</think>`` opened by the model itself."""

from __future__ import annotations

from smg.parsers.reasoning.base import ThinkTagReasoningParser


class Glm45ReasoningParser(ThinkTagReasoningParser):
    """Reasoning between ``<think>`` and ``</think>``."""

    start_tag = "<think>"
    end_tag = "</think>"
    starts_in_reasoning = False
