"""What the simulated OpenAI Chat Completions API accepts, with OpenAI's messages.

Unknown arguments, a missing or unknown model (404 ``model_not_found``), ``messages``
missing or empty, invalid roles, tool messages that answer no preceding call, calls left
unanswered, tool-call ids over 40 characters, function names outside
``^[a-zA-Z0-9_-]{1,64}$``, a ``tool_choice`` without tools or naming an undeclared
function, sampling values out of range, ``stream_options`` without ``stream``. Each is
an ``ApiError`` naming ``param`` where OpenAI does.
"""

from __future__ import annotations

import re
from typing import Any, Final

from smg.sim.providers.common import SimState

_KNOWN: Final = frozenset(
    {
        "model",
        "messages",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "presence_penalty",
        "response_format",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "metadata",
        "store",
        "reasoning_effort",
        "service_tier",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
        "functions",
        "function_call",
    }
)

_ROLES: Final = ("system", "assistant", "user", "function", "tool", "developer")

_NAME_RE: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ApiError(Exception):
    """An error answer in OpenAI's shape."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = "invalid_request_error" if status < 500 else "server_error"


def _check_model(state: SimState, model: Any) -> str:
    if not isinstance(model, str) or not model:
        raise ApiError(400, "you must provide a model parameter", param="model")
    if model not in state.models:
        raise ApiError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    return model


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> None:
    v = body.get(name)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ApiError(
            400, f"Invalid type for '{name}': expected a number.", param=name, code="invalid_type"
        )
    if not lo <= v <= hi:
        side = "above maximum" if v > hi else "below minimum"
        raise ApiError(
            400,
            f"Invalid '{name}': decimal {side} value. Expected a value between {lo:g} and "
            f"{hi:g}, but got {v} instead.",
            param=name,
            code=f"decimal_{'above_max' if v > hi else 'below_min'}_value",
        )


def _check_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        if body.get("tool_choice") is not None:
            raise ApiError(
                400,
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                "are specified.",
                param="tool_choice",
            )
        return []
    if not isinstance(tools, list):
        raise ApiError(400, "Invalid type for 'tools': expected an array.", param="tools")
    fns = []
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(fn, dict):
            raise ApiError(400, f"Invalid value for 'tools[{i}].type'.", param=f"tools[{i}].type")
        name = fn.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ApiError(
                400,
                f"Invalid 'tools[{i}].function.name': string does not match pattern. Expected "
                "a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                param=f"tools[{i}].function.name",
                code="invalid_value",
            )
        fns.append(fn)
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name not in [f["name"] for f in fns]:
            raise ApiError(
                400,
                f"Invalid value for 'tool_choice': function '{name}' is not in 'tools'.",
                param="tool_choice",
            )
    elif choice not in (None, "auto", "none", "required"):
        raise ApiError(400, f"Invalid value for 'tool_choice': {choice!r}.", param="tool_choice")
    return fns


def _check_messages(msgs: Any) -> None:
    if msgs is None:
        raise ApiError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(msgs, list) or not msgs:
        raise ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
            "an empty array instead.",
            param="messages",
            code="empty_array",
        )
    pending: list[str] = []
    pending_at = 0
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in _ROLES:
            raise ApiError(
                400,
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        assert isinstance(m, dict)
        if role == "tool":
            cid = m.get("tool_call_id")
            if cid not in pending:
                raise ApiError(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    param=f"messages.[{i}].role",
                )
            pending.remove(cid)
            continue
        if pending:
            raise ApiError(
                400,
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(pending)}",
                param=f"messages.[{pending_at}].role",
            )
        if role == "assistant":
            for j, call in enumerate(m.get("tool_calls") or ()):
                cid = call.get("id") if isinstance(call, dict) else None
                if not isinstance(cid, str) or len(cid) > 40:
                    raise ApiError(
                        400,
                        f"Invalid 'messages[{i}].tool_calls[{j}].id': string too long. "
                        "Expected a string with maximum length 40.",
                        param=f"messages[{i}].tool_calls[{j}].id",
                        code="string_above_max_length",
                    )
                pending.append(cid)
            pending_at = i


def validate(state: SimState, body: Any) -> tuple[str, list[dict[str, Any]]]:
    """Reject what OpenAI rejects; returns (model, declared functions)."""
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request.")
    for k in body:
        if k not in _KNOWN:
            raise ApiError(400, f"Unrecognized request argument supplied: {k}")
    model = _check_model(state, body.get("model"))
    _check_messages(body.get("messages"))
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    for name in ("max_tokens", "max_completion_tokens"):
        v = body.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ApiError(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1.",
                param=name,
                code="integer_below_min_value",
            )
    if body.get("stream_options") is not None and not body.get("stream"):
        raise ApiError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    return model, _check_tools(body)
