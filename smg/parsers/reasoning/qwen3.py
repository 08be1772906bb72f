"""Qwen3 hybrid and Thinking models; ``enable_thinking=False`` makes everything content."""

from __future__ import annotations

from smg.parsers.reasoning.base import ThinkTagReasoningParser


class Qwen3ReasoningParser(ThinkTagReasoningParser):
    """Reasoning between ``<think>`` and ``</think>``."""

    start_tag = "<think>"
    end_tag = "</think>"
    starts_in_reasoning = False
