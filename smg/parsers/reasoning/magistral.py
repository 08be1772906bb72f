"""Mistral Magistral: reasoning wrapped in ``[THINK]…[/THINK]``."""

from __future__ import annotations

from smg.parsers.reasoning.base import ThinkTagReasoningParser


class MagistralReasoningParser(ThinkTagReasoningParser):
    """Reasoning between ``[THINK]`` and ``[/THINK]``."""

    start_tag = "[THINK]"
    end_tag = "[/THINK]"
    starts_in_reasoning = False
