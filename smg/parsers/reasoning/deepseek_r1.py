"""DeepSeek-R1 and distills: the prompt may hold ``<think>``, so output starts in reasoning."""

from __future__ import annotations

from smg.parsers.reasoning.base import ThinkTagReasoningParser


class DeepSeekR1ReasoningParser(ThinkTagReasoningParser):
    """Reasoning between ``<think>`` and ``</think>``."""

    start_tag = "<think>"
    end_tag = "</think>"
    starts_in_reasoning = True
