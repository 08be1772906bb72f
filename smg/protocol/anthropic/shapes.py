"""Constants of the Messages API and the small maps both translation directions share."""

from __future__ import annotations

from typing import Any, Final

API_VERSION: Final = "2023-06-01"
"""The ``anthropic-version`` sent when the cluster's ``provider.api_version`` is unset."""
DEFAULT_MAX_TOKENS: Final = 4096
"""``max_tokens`` sent for an OpenAI request that set none (the Messages API requires it)."""
MESSAGES_PATH: Final = "/v1/messages"
COUNT_TOKENS_PATH: Final = "/v1/messages/count_tokens"

# Anthropic stop_reason → OpenAI finish_reason.
FINISH_REASON: Final[dict[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}
# OpenAI finish_reason → Anthropic stop_reason ("stop" is refined by the matched stop).
STOP_REASON: Final[dict[str, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: str | None) -> str | None:
    """The OpenAI ``finish_reason`` of an Anthropic ``stop_reason``."""
    if stop_reason is None:
        return None
    return FINISH_REASON.get(stop_reason, "stop")


def stop_reason(finish: str | None, matched: Any) -> tuple[str, str | None]:
    """``(stop_reason, stop_sequence)`` of an OpenAI finish reason.

    vLLM and SGLang name the stop string that ended the output in the choice's
    ``stop_reason`` (an int there is a stop token id, not a sequence).
    """
    if finish == "stop" and isinstance(matched, str) and matched:
        return "stop_sequence", matched
    if finish is None:
        return "end_turn", None
    return STOP_REASON.get(finish, "end_turn"), None


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def usage_to_openai(u: Any) -> dict[str, Any]:
    """Anthropic usage → OpenAI usage (prompt tokens include cache reads and writes)."""
    if not isinstance(u, dict):
        u = {}
    read = _int(u.get("cache_read_input_tokens"))
    created = _int(u.get("cache_creation_input_tokens"))
    prompt = _int(u.get("input_tokens")) + read + created
    out = _int(u.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": out,
        "total_tokens": prompt + out,
        "prompt_tokens_details": {"cached_tokens": read},
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": created,
    }


def usage_from_openai(u: Any) -> dict[str, int]:
    """OpenAI usage → Anthropic usage (``input_tokens`` excludes cached tokens, as there)."""
    if not isinstance(u, dict):
        u = {}
    details = u.get("prompt_tokens_details")
    read = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    created = _int(u.get("cache_creation_input_tokens"))
    prompt = _int(u.get("prompt_tokens"))
    return {
        "input_tokens": max(0, prompt - read - created),
        "output_tokens": _int(u.get("completion_tokens")),
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": read,
    }
